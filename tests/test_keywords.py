"""The keyword parser: what citizens type on basic phones, and anything else."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.text import sms
from notifier.text.keywords import Intent, IntentKind, parse

BOOK, LIST, CANCEL, DOSSIER = (
    IntentKind.BOOK,
    IntentKind.LIST,
    IntentKind.CANCEL,
    IntentKind.DOSSIER,
)
OPT_OUT, OPT_IN, HELP, UNKNOWN = (
    IntentKind.OPT_OUT,
    IntentKind.OPT_IN,
    IntentKind.HELP,
    IntentKind.UNKNOWN,
)


@pytest.mark.parametrize(
    ("text", "kind", "number", "topic"),
    [
        ("DAT 2", BOOK, 2, None),
        ("dat2", BOOK, 2, None),
        ("Đặt 2", BOOK, 2, None),
        ("ĐẶT 2", BOOK, 2, None),
        ("DAT  2 dat dai", BOOK, 2, "dat dai"),
        ("Đặt 2 đất đai, tranh chấp", BOOK, 2, "đất đai, tranh chấp"),
        ("DAT: 2", BOOK, 2, None),
        ("DAT - 2", BOOK, 2, None),
        ("dat.2", BOOK, 2, None),
        ("dat #3", BOOK, 3, None),
        ("dat so 4 xay dung", BOOK, 4, "xay dung"),
        ("Đặt lịch 5", BOOK, 5, None),
        ("BOOK 4 land", BOOK, 4, "land"),
        ("datt 2", BOOK, 2, None),  # a doubled letter
        ("dta 2", BOOK, 2, None),  # two letters swapped
        ("ddat 2", BOOK, 2, None),  # Telex's "dd" for đ
        ("dav 2", BOOK, 2, None),  # V and T share a key of the keypad
        ("\u00a0DAT\u00a02\u200b", BOOK, 2, None),
        ("\u0110a\u0323\u0306t 2", BOOK, 2, None),  # Đặt typed as base letter + marks
        ("DAT", BOOK, None, None),
        ("DAT abc", BOOK, None, None),
        ("DAT 0912345678", BOOK, None, None),  # a phone number is not a session number
    ],
)
def test_booking(text: str, kind: IntentKind, number: int | None, topic: str | None) -> None:
    intent = parse(text)
    assert intent.kind is kind
    assert intent.number == number
    assert intent.topic == topic


@pytest.mark.parametrize(
    ("text", "kind", "code", "number"),
    [
        ("huy", CANCEL, None, None),
        ("HUY ABC123", CANCEL, "ABC123", None),
        ("HỦY abc123", CANCEL, "ABC123", None),
        ("Hủy lịch K7M4PX", CANCEL, "K7M4PX", None),
        ("HUY: K7M4PX.", CANCEL, "K7M4PX", None),
        ("huy 2", CANCEL, None, 2),
        ("CANCEL K7M4PX", CANCEL, "K7M4PX", None),
        ("HS 000.00.31.h26-250714-0001", DOSSIER, "000.00.31.H26-250714-0001", None),
        ("hs000.00.31.H26-250714-0001.", DOSSIER, "000.00.31.H26-250714-0001", None),
        ("Tra cứu 000.00.31.H26-250714-0001", DOSSIER, "000.00.31.H26-250714-0001", None),
        ("TRA 000.00.31.H26-250714-0001", DOSSIER, "000.00.31.H26-250714-0001", None),
        ("STATUS 000.00.31.H26-250714-0001", DOSSIER, "000.00.31.H26-250714-0001", None),
        ("HS", DOSSIER, None, None),
    ],
)
def test_codes(text: str, kind: IntentKind, code: str | None, number: int | None) -> None:
    intent = parse(text)
    assert (intent.kind, intent.code, intent.number) == (kind, code, number)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("LICH", LIST),
        ("lịch", LIST),
        ("Lịch?", LIST),
        ("xem lich", LIST),
        ("SCHEDULE", LIST),
        ("lihc", LIST),
        ("licg", LIST),  # G and H share a key
        ("TC", OPT_OUT),
        ("tc", OPT_OUT),
        ("Từ chối", OPT_OUT),
        ("TUCHOI", OPT_OUT),
        ("STOP", OPT_OUT),
        ("DK", OPT_IN),
        ("Đồng ý", OPT_IN),
        ("START", OPT_IN),
        ("HD", HELP),
        ("?", HELP),
        ("help", HELP),
        ("huong dan", HELP),
        ("'LICH'", LIST),
        ("- DAT 1", BOOK),
    ],
)
def test_keywords(text: str, kind: IntentKind) -> None:
    assert parse(text).kind is kind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "xin chao",
        "Day la tin nhan tu dong",  # DAY is one typo from DAT, but no session number follows
        "Linh oi",  # LINH is one typo from LICH, on another key
        "TCC",  # consent keywords are never guessed
        "STPO",
        "DKK",
        "Tai khoan cua quy khach con 5.000d",
        "12345",
        "😀",
    ],
)
def test_not_keywords(text: str) -> None:
    assert parse(text).kind is UNKNOWN


def test_english_keywords_ask_for_an_english_answer() -> None:
    assert parse("BOOK 2").language == "en"
    assert parse("DAT 2").language == "vi"
    assert parse("STOP").language == "vi"  # used by everyone; says nothing of the language


# -- properties --------------------------------------------------------------------------------

KEYWORD_TEXTS = st.sampled_from(
    [
        "DAT 2",
        "dat2",
        "Đặt 2 đất đai",
        "LICH",
        "HUY ABC123",
        "HS 000.00.31.H26-250714-0001",
        "TC",
        "DK",
        "HD",
        "?",
        "Từ chối",
        "xin chao",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.text())
@example("\ud800")  # a lone surrogate, as decoded JSON may hold
@example("\x00" * 1000)
@example("Đ" * 100_000)
@example("DAT " + "9" * 5000)
def test_parse_never_raises(text: str) -> None:
    intent = parse(text)
    assert isinstance(intent, Intent)
    assert intent.topic is None or len(intent.topic) <= 300
    assert intent.code is None or len(intent.code) <= 64


@settings(max_examples=200, deadline=None)
@given(
    KEYWORD_TEXTS, st.lists(st.sampled_from([" ", "  ", "\t", "\u00a0"]), min_size=1, max_size=3)
)
def test_spacing_does_not_matter(text: str, spaces: list[str]) -> None:
    spaced = "".join(spaces) + text.replace(" ", "".join(spaces)) + "".join(spaces)
    assert parse(spaced) == parse(text)


@settings(max_examples=200, deadline=None)
@given(KEYWORD_TEXTS, st.booleans())
def test_case_and_diacritics_do_not_change_the_meaning(text: str, upper: bool) -> None:
    variant = sms.fold(text)
    variant = variant.upper() if upper else variant.lower()
    original, changed = parse(text), parse(variant)
    assert (changed.kind, changed.number, changed.code) == (
        original.kind,
        original.number,
        original.code,
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=999_999), st.text(max_size=40))
def test_any_session_number_is_read_back(number: int, topic: str) -> None:
    intent = parse(f"DAT {number} {topic}")
    assert intent.kind is BOOK
    assert intent.number == number
