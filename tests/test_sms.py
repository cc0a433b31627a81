"""SMS text layer: clean-up, folding, GSM-7/UCS-2 counting, splitting, policy, limits."""

from __future__ import annotations

import pickle
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.text import sms
from tests.support import segment_calculator

NOTICE = "Hồ sơ 000.00.31.H26-250714-0001 đã được tiếp nhận. Ngày hẹn trả: 16/07/2025."
NOTICE_FOLDED = "Ho so 000.00.31.H26-250714-0001 da duoc tiep nhan. Ngay hen tra: 16/07/2025."

# Every Vietnamese letter, typed out by hand rather than generated.
VI_LOWER = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
VI_UPPER = (
    "AÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬBCDĐEÈÉẺẼẸÊỀẾỂỄỆGHIÌÍỈĨỊKLMNOÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢPQRSTUÙÚỦŨỤƯỪỨỬỮỰVXYỲÝỶỸỴ"
)
VI_PUNCTUATION = ".,;:!?-()\"'/%&*+=<>@#_–—‘’“”…"
VI_SPACES = " \n\t\u00a0"

# --- the reference: Twilio's segment calculator, ported (tests/support/segment_calculator.py) --

REF_GSM_ROWS = segment_calculator.GSM_ROWS
REF_GSM_CODES = segment_calculator.GSM_BASIC_CODES
REF_GSM_EXTENSION_CODES = segment_calculator.GSM_EXTENSION_CODES


def ref_analysis(text: str) -> tuple[str, int, int]:
    segmented = segment_calculator.segment(sms.clean(text))
    return segmented.encoding, segmented.length, len(segmented.segments)


# Graphemes of several code points: a flag, a skin tone, a keycap, a combining mark, a
# variation selector, Hangul jamo.
MULTI_CODE_POINT = ["🇻🇳", "👍🏽", "1️⃣", "q\u0301", "👁️", "\u1100\u1176"]
sms_text = st.lists(
    st.one_of(
        st.sampled_from("".join(REF_GSM_ROWS).replace("\x1b", "")),
        st.sampled_from("".join(REF_GSM_EXTENSION_CODES)),
        st.sampled_from(VI_LOWER + VI_UPPER),
        st.sampled_from(["😀", "𝐀", *MULTI_CODE_POINT]),
        st.characters(),
    ),
    max_size=1100,
).map("".join)
gsm_heavy_text = st.text(
    alphabet=st.sampled_from("abc €{}[]"),
    min_size=140,
    max_size=1000,
)
ucs_heavy_text = st.lists(
    st.sampled_from(["ấ", "😀", "b", " ", *MULTI_CODE_POINT]), min_size=60, max_size=500
).map("".join)

vietnamese_text = st.text(
    alphabet=st.sampled_from(VI_LOWER + VI_UPPER + "0123456789" + VI_PUNCTUATION + VI_SPACES)
)


# --- the alphabet --------------------------------------------------------------------------


def test_gsm7_basic_table_positions():
    assert len(sms.GSM7_BASIC) == 128
    assert sms.GSM7_BASIC[0x00] == "@"
    assert sms.GSM7_BASIC[0x02] == "$"
    assert sms.GSM7_BASIC[0x1B] == "\x1b"
    assert sms.GSM7_BASIC[0x24] == "¤"
    assert sms.GSM7_BASIC[0x40] == "¡"
    assert sms.GSM7_BASIC[0x60] == "¿"
    assert sms.GSM7_BASIC[0x7F] == "à"
    assert {ch: sms.GSM7_BASIC.index(ch) for ch in REF_GSM_CODES} == REF_GSM_CODES


def test_gsm7_extension_table():
    assert set(sms.GSM7_EXTENSION) == set(REF_GSM_EXTENSION_CODES)
    assert len(sms.GSM7_EXTENSION) == 10


@pytest.mark.parametrize("letter", list("àèéìòùÉ"))
def test_vietnamese_letters_inside_gsm7(letter):
    assert sms.is_gsm7(letter)
    assert sms.analyze(f"Ph{letter}").encoding == "GSM-7"


@pytest.mark.parametrize("letter", list("áảãạăâđêơưôíúýÀÈĐ"))
def test_other_vietnamese_letters_force_ucs2(letter):
    assert not sms.is_gsm7(letter)
    assert sms.analyze(f"Ph{letter}").encoding == "UCS-2"


@pytest.mark.parametrize("char", ["`", "ç", "°", "•", "₫", "\x1b", "😀"])
def test_not_gsm7(char):
    assert not sms.is_gsm7(f"abc{char}")


# --- clean ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("a‑b", "a-b"),  # non-breaking hyphen
        ("a–b", "a-b"),
        ("a—b", "a-b"),
        ("a−b", "a-b"),  # minus sign
        ("Chờ…", "Chờ..."),
        ("‘Hồ sơ’", "'Hồ sơ'"),
        ("“Hồ sơ”", '"Hồ sơ"'),
        ("16\u00a0giờ", "16 giờ"),
        ("16\u202fgiờ", "16 giờ"),
        ("a\tb", "a b"),
        ("Hồ\u200b sơ", "Hồ sơ"),
        ("a\u200cb\u200dc\ufeffd\u00ade", "abcde"),
        ("dòng 1\r\ndòng 2\rdòng 3", "dòng 1\ndòng 2\ndòng 3"),
        ("dòng 1\u2028dòng 2", "dòng 1\ndòng 2"),
        ("  \n Xin chào \t\n", "Xin chào"),
        ("\ufeffXin chào", "Xin chào"),
    ],
)
def test_clean_downgrades(raw, cleaned):
    assert sms.clean(raw) == cleaned


def test_clean_composes_nfd_to_nfc():
    nfd = unicodedata.normalize("NFD", "Hồ sơ đã được tiếp nhận")
    assert len(nfd) == 34
    assert sms.clean(nfd) == "Hồ sơ đã được tiếp nhận"
    assert len(sms.clean(nfd)) == 23


def test_clean_composes_across_a_removed_zero_width_character():
    assert sms.clean("e\u200b\u0301") == "é"


@given(st.text())
def test_clean_is_idempotent(text):
    once = sms.clean(text)
    assert sms.clean(once) == once


# --- fold ----------------------------------------------------------------------------------


def test_fold_notice():
    assert sms.fold(NOTICE) == NOTICE_FOLDED


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Đặng Đình Đức", "Dang Dinh Duc"),
        ("Ðại Thanh", "Dai Thanh"),  # Ð (eth), the usual look-alike of Đ
        ("ÐẶT 2", "DAT 2"),
        ("ðặt 2", "dat 2"),
        ("đường", "duong"),
        ("Người ở Thanh Hóa", "Nguoi o Thanh Hoa"),
        ("HỦY", "HUY"),
        ("LỊCH", "LICH"),
        ("Lệ phí: 50.000₫", "Le phi: 50.000d"),
        ("Ăn ở Ấp Ơn Ưng Ỵ", "An o Ap On Ung Y"),
        ("Xin chào — hẹn gặp “sáng mai”…", 'Xin chao - hen gap "sang mai"...'),
        ("Café ñandú 😀 Ç ç", "Cafe ñandu 😀 Ç ç"),  # ñ and ç are not Vietnamese
    ],
)
def test_fold_examples(raw, folded):
    assert sms.fold(raw) == folded


def test_eth_is_folded_like_d_with_stroke():
    # Ð (U+00D0) looks exactly like Đ: left alone it made the text UCS-2, and the USSD
    # screens' ASCII folding dropped the letter ("ai Thanh").
    assert sms.analyze(sms.fold("Ðại Thanh")).encoding == "GSM-7"
    assert sms.fold("Ðại Thanh", ascii_only=True) == "Dai Thanh"


def test_fold_all_vietnamese_letters():
    # a ă â, e ê, o ô ơ, u ư each with no tone and the five tones.
    vowels = "a" * 18 + "bcdd" + "e" * 12 + "gh" + "i" * 6 + "klmn" + "o" * 18 + "pqrst"
    expected = vowels + "u" * 12 + "vx" + "y" * 6
    assert sms.fold(VI_LOWER) == expected
    assert sms.fold(VI_UPPER) == sms.fold(VI_LOWER).upper()


def test_fold_nfd_and_decomposed_tones():
    assert sms.fold(unicodedata.normalize("NFD", NOTICE)) == NOTICE_FOLDED
    # Tone typed after the vowel mark in an order NFC cannot compose.
    assert sms.fold("e\u0309\u0302") == "e"
    assert sms.fold("u\u031b\u0323") == "u"


@given(vietnamese_text)
def test_fold_of_vietnamese_is_always_gsm7(text):
    folded = sms.fold(text)
    assert sms.is_gsm7(folded), folded
    assert sms.analyze(folded).encoding == "GSM-7"


@given(vietnamese_text.map(lambda t: unicodedata.normalize("NFD", t)))
def test_fold_of_nfd_vietnamese_is_always_gsm7(text):
    assert sms.is_gsm7(sms.fold(text))


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("\u0301 abc", "abc"),  # a stray tone mark before a space
        ("a\u0303\u0308", "ä"),  # the tilde goes, the diaeresis then composes
        ("đ\u200b\u0301", "d"),
    ],
)
def test_fold_stray_marks(raw, folded):
    assert sms.fold(raw) == folded
    assert sms.fold(folded) == folded


marks_and_spaces = st.text(
    alphabet=st.one_of(
        st.sampled_from(VI_LOWER + VI_SPACES + "\u200b\u00ad"),
        st.characters(min_codepoint=0x300, max_codepoint=0x36F),
    )
)


@given(st.one_of(st.text(), vietnamese_text, marks_and_spaces))
def test_fold_is_idempotent(text):
    once = sms.fold(text)
    assert sms.fold(once) == once


# --- analyze: boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (918, 6), (919, 7)],
)
def test_gsm7_segment_boundaries(length, segments):
    analysis = sms.analyze("a" * length)
    assert analysis == sms.SmsAnalysis("GSM-7", length, segments, length)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_segment_boundaries(length, segments):
    analysis = sms.analyze("ấ" * length)
    assert analysis == sms.SmsAnalysis("UCS-2", length, segments, length)


def test_extension_character_at_the_boundary():
    assert sms.analyze("a" * 158 + "€") == sms.SmsAnalysis("GSM-7", 160, 1, 159)
    assert sms.analyze("a" * 159 + "€") == sms.SmsAnalysis("GSM-7", 161, 2, 160)
    assert sms.analyze("{}" * 80) == sms.SmsAnalysis("GSM-7", 320, 3, 160)


def test_emoji_at_the_boundary():
    assert sms.analyze("a" * 68 + "😀") == sms.SmsAnalysis("UCS-2", 70, 1, 69)
    assert sms.analyze("a" * 69 + "😀") == sms.SmsAnalysis("UCS-2", 71, 2, 70)


def test_pair_straddling_a_part_boundary_costs_one_more_part():
    # 306 septets fit two parts only if the euro could be cut in half.
    text = "a" * 152 + "€" + "a" * 152
    assert sms.analyze(text) == sms.SmsAnalysis("GSM-7", 306, 3, 305)
    assert [len(part) for part in sms.split(text)] == [152, 152, 1]
    emoji = "ấ" * 66 + "😀" + "ấ" * 66
    assert sms.analyze(emoji) == sms.SmsAnalysis("UCS-2", 134, 3, 133)
    assert [len(part) for part in sms.split(emoji)] == [66, 66, 1]


def test_nfd_counted_as_nfc():
    nfd = unicodedata.normalize("NFD", NOTICE)
    assert len(nfd) > len(NOTICE)
    assert sms.analyze(nfd) == sms.analyze(NOTICE) == sms.SmsAnalysis("UCS-2", 76, 2, 76)


def test_notice_folded_fits_one_segment():
    assert sms.analyze(NOTICE_FOLDED) == sms.SmsAnalysis("GSM-7", 76, 1, 76)


def test_empty_text_has_no_segment():
    assert sms.analyze("") == sms.SmsAnalysis("GSM-7", 0, 0, 0)
    assert sms.analyze(" \u200b\n\t") == sms.SmsAnalysis("GSM-7", 0, 0, 0)
    assert sms.split("") == []


def test_analyze_counts_after_cleaning():
    assert sms.analyze("  Chờ… “xong”  ") == sms.SmsAnalysis("UCS-2", 13, 1, 13)
    assert sms.analyze("Cho… “xong”") == sms.SmsAnalysis("GSM-7", 13, 1, 13)


def test_to_dict():
    assert sms.analyze("a" * 161).to_dict() == {
        "encoding": "GSM-7",
        "length": 161,
        "segments": 2,
        "characters": 161,
    }


@given(sms_text)
def test_analyze_agrees_with_reference(text):
    analysis = sms.analyze(text)
    assert (analysis.encoding, analysis.length, analysis.segments) == ref_analysis(text)
    assert analysis.characters == len(sms.clean(text))


@given(st.one_of(gsm_heavy_text, ucs_heavy_text))
def test_analyze_agrees_with_reference_near_part_boundaries(text):
    analysis = sms.analyze(text)
    assert (analysis.encoding, analysis.length, analysis.segments) == ref_analysis(text)


# --- split ---------------------------------------------------------------------------------


def test_split_single_segment_is_the_clean_text():
    assert sms.split("  Xin chào  ") == ["Xin chào"]


def test_split_gsm7_parts():
    parts = sms.split("a" * 400)
    assert [len(p) for p in parts] == [153, 153, 94]


def test_split_keeps_escape_pair_together():
    parts = sms.split("a" * 152 + "€" + "b" * 20)
    assert parts == ["a" * 152, "€" + "b" * 20]


def test_split_keeps_emoji_together():
    parts = sms.split("ấ" * 66 + "😀" + "b" * 20)
    assert parts == ["ấ" * 66, "😀" + "b" * 20]


@given(st.one_of(sms_text, gsm_heavy_text, ucs_heavy_text))
def test_split_matches_reference(text):
    parts = sms.split(text)
    assert "".join(parts) == sms.clean(text)
    assert len(parts) == sms.analyze(text).segments
    assert parts == segment_calculator.segment(sms.clean(text)).parts


# --- policy --------------------------------------------------------------------------------


def test_policy_strip_folds():
    assert sms.apply_policy(NOTICE, "strip") == NOTICE_FOLDED


def test_policy_keep_only_cleans():
    assert sms.apply_policy(f" {NOTICE}\u200b ", "keep") == NOTICE


def test_policy_auto_keeps_diacritics_when_free():
    short = "Lịch tiếp dân: thứ Năm 17/07, 8h00."
    assert sms.analyze(short).segments == sms.analyze(sms.fold(short)).segments == 1
    assert sms.apply_policy(short, "auto") == short


def test_policy_auto_folds_when_diacritics_cost_more():
    assert sms.apply_policy(NOTICE, "auto") == NOTICE_FOLDED


def test_policy_auto_keeps_text_without_diacritics():
    assert sms.apply_policy("Ho so  da xong", "auto") == "Ho so  da xong"


@pytest.mark.parametrize("policy", ["", "STRIP", "none", "fold"])
def test_unknown_policy(policy):
    with pytest.raises(ValueError, match="strip, keep, auto"):
        sms.apply_policy("abc", policy)


# --- limits --------------------------------------------------------------------------------


def test_check_limit_at_918_and_919():
    assert sms.check_limit("a" * 918).segments == 6
    with pytest.raises(sms.MessageTooLong) as caught:
        sms.check_limit("a" * 919)
    assert caught.value.segments == 7
    assert caught.value.limit == 6
    assert "7 segments, the limit is 6" in str(caught.value)
    assert str(caught.value) == (
        "Message too long: 7 segments, the limit is 6; 919 characters, the limit is 918."
    )
    assert (
        caught.value.vi == "Tin nhắn quá dài: 7 phần, tối đa 6 phần; 919 ký tự, tối đa 918 ký tự."
    )


def test_check_limit_ucs2():
    assert sms.check_limit("ấ" * 402).segments == 6
    with pytest.raises(sms.MessageTooLong, match="7 segments, the limit is 6"):
        sms.check_limit("ấ" * 403)


def test_check_limit_on_characters():
    with pytest.raises(sms.MessageTooLong) as caught:
        sms.check_limit("a" * 100, max_segments=6, max_chars=50)
    assert str(caught.value) == "Message too long: 100 characters, the limit is 50."
    assert caught.value.characters == 100


def test_check_limit_counts_the_clean_text():
    assert sms.check_limit("  " + "a" * 918 + "\u200b\n").characters == 918


def test_check_limit_custom_segment_limit():
    with pytest.raises(sms.MessageTooLong, match="2 segments, the limit is 1"):
        sms.check_limit("a" * 161, max_segments=1)


def test_message_too_long_is_a_value_error_and_pickles():
    with pytest.raises(ValueError, match="segments") as caught:
        sms.check_limit("a" * 2000)
    again = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (again.segments, again.limit, str(again)) == (14, 6, str(caught.value))


def test_prepare_default_strips():
    prepared = sms.prepare(NOTICE)
    assert prepared == sms.PreparedSms(NOTICE_FOLDED, sms.SmsAnalysis("GSM-7", 76, 1, 76))


def test_prepare_keep():
    prepared = sms.prepare(NOTICE, policy="keep")
    assert prepared.body == NOTICE
    assert prepared.analysis.segments == 2


def test_prepare_long_vietnamese_fits_only_when_folded():
    text = (NOTICE + " ") * 7  # 538 characters
    assert sms.prepare(text).analysis.segments == 4
    with pytest.raises(sms.MessageTooLong, match="9 segments, the limit is 6"):
        sms.prepare(text, policy="keep")
