"""Replies and reception notices: dossier statuses in plain words, written with diacritics.

(Every template fitting one GSM segment for typical data is checked by test_templates.py.)
"""

from __future__ import annotations

import pytest

from notifier.core.config import Settings
from notifier.dossiers.lookup import STATUS_WORDS, status_words
from notifier.messaging import outbox
from notifier.text import templating

NAMES = [n for n in templating.template_names() if n.startswith(("reply_", "reception_"))]


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
    text = outbox.render_text(settings, "reply_dossier_status", data, language)
    prepared = outbox.prepare(settings, text)
    assert prepared.analysis.encoding == "GSM-7"
    assert prepared.analysis.segments == 1, prepared.body


def test_the_ussd_variant_of_a_status_is_ascii() -> None:
    for status in STATUS_WORDS:
        assert status_words(status, ascii_only=True).isascii()
    assert status_words("ready", ascii_only=True) == "da co ket qua, moi Ong/Ba den nhan"


def test_vietnamese_templates_are_written_with_diacritics() -> None:
    assert len(NAMES) == 23
    for name in NAMES:
        source = (templating.TEMPLATES_DIR / "vi" / f"{name}.txt").read_text()
        assert not source.isascii(), name
