"""Replies and reception notices fit one SMS segment once folded, in both languages."""

from __future__ import annotations

from typing import Any

import pytest

from notifier import messages as msgs
from notifier import templating
from notifier.config import Settings
from notifier.dossier_lookup import STATUS_WORDS, status_words

NAMES = [n for n in templating.template_names() if n.startswith(("reply_", "reception_"))]
SESSION = {"number": 2, "weekday": "Thứ 4", "date": "16/07/2025", "day": "16/07", "start": "08:00"}
TYPICAL: dict[str, Any] = {
    **SESSION,
    "time": "08:15",
    "host": "Chủ tịch UBND xã",
    "location": "Phòng tiếp công dân UBND xã",
    "code": "K7M4PX",
    "reason": "Chủ tịch đi họp tại tỉnh",
    "sessions": [
        {**SESSION, "remaining": 4},
        {**SESSION, "number": 3, "day": "23/07", "remaining": 0},
        {**SESSION, "number": 4, "day": "30/07", "remaining": 10},
    ],
    "bookings": [
        {"code": "K7M4PX", "day": "16/07", "time": "08:15"},
        {"code": "Q2W9ZD", "day": "23/07", "time": "09:30"},
    ],
    "due_date": "2025-07-16",
    "overdue": False,
}


def test_every_reply_exists_in_both_languages() -> None:
    assert len(NAMES) == 23
    for name in NAMES:
        for language in ("vi", "en"):
            assert (templating.TEMPLATES_DIR / language / f"{name}.txt").is_file()


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("name", NAMES)
def test_one_gsm_segment_for_typical_data(name: str, language: str) -> None:
    settings = Settings.from_env({}, environ={})
    data = {**TYPICAL, "status_text": status_words("supplement_requested", language)}
    prepared = msgs.prepare(settings, msgs.render_text(settings, name, data, language))
    assert prepared.analysis.encoding == "GSM-7"
    assert prepared.analysis.segments == 1, prepared.body


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("status", sorted(STATUS_WORDS))
def test_every_dossier_status_fits_one_segment(status: str, language: str) -> None:
    settings = Settings.from_env({}, environ={})
    data = {
        "code": "000.00.31.H26-250714-0001",
        "status_text": status_words(status, language),
        "due_date": "2025-07-16",
        "overdue": True,
    }
    prepared = msgs.prepare(
        settings, msgs.render_text(settings, "reply_dossier_status", data, language)
    )
    assert prepared.analysis.segments == 1, prepared.body


def test_the_ussd_variant_of_a_status_is_ascii() -> None:
    for status in STATUS_WORDS:
        assert status_words(status, ascii_only=True).isascii()
    assert status_words("ready", ascii_only=True) == "da co ket qua, moi Ong/Ba den nhan"


def test_vietnamese_templates_are_written_with_diacritics() -> None:
    for name in NAMES:
        source = (templating.TEMPLATES_DIR / "vi" / f"{name}.txt").read_text()
        assert not source.isascii(), name
