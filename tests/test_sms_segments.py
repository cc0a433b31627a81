"""Segment counts and cuts against Twilio's segment calculator (tests/support/segment_calculator.py).

The table cuts texts at every boundary that matters: GSM-7 parts with extension characters
astride them, and UCS-2 parts with a grapheme of several code points astride them (flags,
skin tones, keycaps, combining marks, tag sequences, Hangul syllables in jamo, Indic
conjuncts), where the old cut between code points gave one part too few.
"""

from __future__ import annotations

import pytest

from notifier.text import sms
from tests.support import segment_calculator

FLAG_VN = "\U0001f1fb\U0001f1f3"  # 🇻🇳: two regional indicators
THUMBS_UP_DARK = "\U0001f44d\U0001f3fd"  # 👍🏽: emoji + skin tone
KEYCAP_ONE = "1\ufe0f\u20e3"  # 1️⃣
Q_ACUTE = "q\u0301"  # no precomposed form: stays two code points after NFC
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # 14 units
HANGUL_JAMO = "\u1100\u1176"  # archaic Hangul syllable in jamo: no precomposed form
DEVANAGARI = "\u0915\u094d\u0937\u093f"  # क्षि: one conjunct cluster
EYE_IN_BUBBLE = "\U0001f441\ufe0f"  # emoji + variation selector
GRAPHEMES = (
    FLAG_VN,
    THUMBS_UP_DARK,
    KEYCAP_ONE,
    Q_ACUTE,
    SCOTLAND,
    HANGUL_JAMO,
    DEVANAGARI,
    EYE_IN_BUBBLE,
    "😀",
    "ấ",
)
EXTENSION = "€{}[]~^|\\"


def _gsm7_texts() -> list[str]:
    texts = []
    # One part: 160 septets, several: 153 each; an extension character costs two.
    for total in (159, 160, 161, 305, 306, 307, 458, 459, 460, 918):
        texts.append("a" * total)
    for char in EXTENSION:
        for before in (151, 152, 153, 158, 159, 304, 305):
            texts.append("a" * before + char + "b" * 10)
    texts.append("{}" * 80)
    texts.append("{}" * 81)
    texts.append(("Ho so 000.00.31.H26 [da tiep nhan] ~ phi 50.000€ " * 7).strip())
    return texts


def _ucs2_texts() -> list[str]:
    texts = []
    for grapheme in GRAPHEMES:
        size = len(segment_calculator.utf16_units(grapheme))
        # Astride the end of the only part (70 units) and of the first, second and third
        # parts of a longer text (67 units each).
        befores = {
            before for end in (67, 70, 134, 201) for before in range(end - size - 1, end + 1)
        }
        texts.extend("ấ" * before + grapheme + "b" * 80 for before in sorted(befores))
        texts.append(grapheme * 40)
    texts.append(FLAG_VN * 17 + "a")  # 69 units: one part
    texts.append(FLAG_VN * 18)  # 72 units, cut between flags only
    texts.append("Chúc mừng năm mới " + "🎉" * 30 + THUMBS_UP_DARK * 10)
    return texts


TEXTS = list(dict.fromkeys(_gsm7_texts() + _ucs2_texts()))


def test_the_table_is_large_and_every_text_is_sent_as_written() -> None:
    assert len(TEXTS) >= 200
    # clean() changes none of them, so both sides count the same characters.
    assert all(sms.clean(text) == text for text in TEXTS)


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_segments_and_cuts_agree_with_twilios_calculator(text: str) -> None:
    expected = segment_calculator.segment(text)
    analysis = sms.analyze(text)
    assert (analysis.encoding, analysis.length, analysis.segments) == (
        expected.encoding,
        expected.length,
        len(expected.segments),
    )
    assert sms.split(text) == expected.parts


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        # 66 units + a flag (4) would be 70: one unit over the 67 of a part, so the flag moves.
        ("ấ" * 65 + FLAG_VN + "b" * 10, ["ấ" * 65, FLAG_VN + "b" * 10]),
        ("ấ" * 64 + THUMBS_UP_DARK + "b" * 10, ["ấ" * 64, THUMBS_UP_DARK + "b" * 10]),
        ("ấ" * 66 + Q_ACUTE + "b" * 10, ["ấ" * 66, Q_ACUTE + "b" * 10]),
        ("ấ" * 65 + KEYCAP_ONE + "b" * 10, ["ấ" * 65, KEYCAP_ONE + "b" * 10]),
    ],
    ids=["flag", "skin-tone", "combining-mark", "keycap"],
)
def test_a_grapheme_astride_a_boundary_moves_whole(text: str, parts: list[str]) -> None:
    # Cut between code points these were one part fewer than the phone sends.
    assert sms.split(text) == parts
    assert sms.analyze(text).segments == 2


def test_a_grapheme_longer_than_a_part_is_cut_between_code_points() -> None:
    zalgo = "q" + "\u0301" * 100  # 101 units, one grapheme
    parts = sms.split(zalgo)
    assert "".join(parts) == zalgo
    assert [len(part) for part in parts] == [67, 34]
