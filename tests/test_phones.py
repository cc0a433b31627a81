"""Phone numbers: normalisation, reasons for refusal, masking."""

from __future__ import annotations

import pickle
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.text import phones
from notifier.text.phones import InvalidPhoneNumber, mask, mask_text, normalize

# The 2018 conversion, written out as published.
OLD_TO_NEW = {
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",
    "0162": "032",
    "0163": "033",
    "0164": "034",
    "0165": "035",
    "0166": "036",
    "0167": "037",
    "0168": "038",
    "0169": "039",
    "0186": "056",
    "0188": "058",
    "0199": "059",
}
# Prefixes in use today (Viettel, MobiFone, VinaPhone, Vietnamobile, Gmobile, Itelecom).
MOBILE_PREFIXES = [
    *(f"03{d}" for d in "23456789"),
    "070",
    "076",
    "077",
    "078",
    "079",
    *(f"08{d}" for d in "1234568"),
    "090",
    "091",
    "093",
    "094",
    "096",
    "097",
    "098",
    "056",
    "058",
    "059",
    "087",
]
REASONS = {
    "empty",
    "not_a_number",
    "too_short",
    "too_long",
    "landline",
    "service_number",
    "unknown_prefix",
    "international_not_allowed",
    "invalid",
}
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def reason_of(raw: str, **kwargs: bool) -> str:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize(raw, **kwargs)
    return caught.value.reason


def outcome(raw: str, international: bool) -> str:
    """The E.164 number, or the reason code; any other exception fails the test."""
    try:
        return normalize(raw, allow_international=international)
    except InvalidPhoneNumber as exc:
        return exc.reason


def written_forms(national: str) -> list[str]:
    """Ways people write the national number ``national`` (without its leading 0)."""
    a, b, c = national[:2], national[2:-4], national[-4:]
    return [
        f"0{national}",
        f"84{national}",
        f"+84{national}",
        f"+84 {a}{b[:1]} {b[1:]}{c[:1]} {c[1:]}",
        f"0084 {national}",
        f"0{a}.{b}.{c}",
        f"(+84) {a}{b}-{c[:2]}-{c[2:]}",
        f"(84) {national}",
        f"+84 (0) {national}",
        f" 0{a} {b} {c} ",
        unicodedata.normalize("NFKC", f"0{national}").translate(
            {ord(d): chr(0xFF10 + int(d)) for d in "0123456789"}
        ),
        f"0{a}–{b}–{c}",
        f"{national}",
    ]


# --- accepted numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", written_forms("912345678"))
def test_every_common_form(raw):
    assert normalize(raw) == "+84912345678"


def test_written_forms_cover_full_width_digits():
    assert "０９１２３４５６７８" in written_forms("912345678")


@pytest.mark.parametrize("prefix", MOBILE_PREFIXES)
def test_current_mobile_prefixes(prefix):
    assert normalize(f"{prefix} 765 4321") == f"+84{prefix[1:]}7654321"


def test_old_prefix_table_has_21_entries():
    assert len(OLD_TO_NEW) == 21
    assert {f"0{old}": f"0{new}" for old, new in phones.OLD_MOBILE_PREFIXES.items()} == OLD_TO_NEW


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW.items())
def test_old_eleven_digit_numbers(old, new):
    expected = f"+84{new[1:]}1234567"
    for raw in written_forms(f"{old[1:]}1234567"):
        assert normalize(raw) == expected, raw


def test_old_number_examples():
    assert normalize("0168 123 4567") == "+84381234567"
    assert normalize("+84 199 765 4321") == "+84597654321"
    assert normalize("84 120 111 2222") == "+84701112222"


def test_gmobile_099_blocks():
    assert normalize("0995 123 456") == "+84995123456"
    assert reason_of("0992 123 456") == "unknown_prefix"


def test_arabic_indic_digits():
    assert normalize("٠٩١٢٣٤٥٦٧٨") == "+84912345678"


# --- refused numbers --------------------------------------------------------------------------


MALFORMED = [
    ("", "empty"),
    ("   ", "empty"),
    ("\t\n", "empty"),
    ("( )", "empty"),
    ("abc", "not_a_number"),
    ("0912 345 abc", "not_a_number"),
    ("0912345678 ext 12", "not_a_number"),
    ("0912,345,678", "not_a_number"),
    ("+84+912345678", "not_a_number"),
    ("09123456७8x", "not_a_number"),
    ("SĐT: 0912345678", "not_a_number"),
    ("0", "too_short"),
    ("12", "too_short"),
    ("0912", "too_short"),
    ("091234567", "too_short"),
    ("+84 91234567", "too_short"),
    ("+84", "too_short"),
    ("00", "too_short"),
    ("123456", "too_short"),
    ("09123456789", "too_long"),
    ("+84 9123456789", "too_long"),
    ("8491234567890", "too_long"),
    ("0912345678912345678901", "too_long"),
    ("0521234567", "unknown_prefix"),
    ("0111234567", "unknown_prefix"),
    ("0801234567", "unknown_prefix"),
    ("0691234567", "unknown_prefix"),
    ("01301234567", "unknown_prefix"),
    ("+84 130 123 4567", "unknown_prefix"),
    ("+999 123 456 789", "invalid"),
    ("0672012345", "invalid"),
]


@pytest.mark.parametrize(("raw", "reason"), MALFORMED)
def test_malformed_numbers(raw, reason):
    assert reason_of(raw) == reason


def test_malformed_cases_cover_every_syntax_reason():
    assert {reason for _, reason in MALFORMED} == REASONS - {
        "landline",
        "service_number",
        "international_not_allowed",
    }


@pytest.mark.parametrize(
    "raw",
    [
        "024 3825 1234",  # Hà Nội
        "02437654321",
        "+84 24 3765 4321",
        "84 24 3765 4321",
        "028 3829 1234",  # Hồ Chí Minh City
        "(+84) 28-3829-1234",
        "0237 385 1234",  # Thanh Hóa
        "0236 382 1234",  # Đà Nẵng
        "0243765432",  # one digit missing, still a Hà Nội landline
    ],
)
def test_landlines_refused(raw):
    assert reason_of(raw) == "landline"


@pytest.mark.parametrize(
    "raw",
    [
        "1900 1234",
        "1900 123 456",
        "1900123",
        "+84 1900 1234",
        "1800 1234",
        "1800 123 456",
        "1800 56 78 90",
        "113",
        "114",
        "115",
        "1080",
        "9029",
        "19001",
        "1992000",
    ],
)
def test_service_numbers_refused(raw):
    assert reason_of(raw) == "service_number"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 415 555 2671", "+14155552671"),
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
        ("+61 412 345 678", "+61412345678"),
    ],
)
def test_international_only_when_allowed(raw, e164):
    assert reason_of(raw, allow_international=False) == "international_not_allowed"
    assert normalize(raw, allow_international=True) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+44 20 7183 8750", "landline"),
        ("+1 415", "too_short"),
        ("+44 7911 123456 789", "too_long"),
        ("+44 900 123 4567", "service_number"),
        ("+33 800 00 00 00", "service_number"),
        ("+1 200 555 0100", "invalid"),
    ],
)
def test_international_refusals_when_allowed(raw, reason):
    assert reason_of(raw, allow_international=True) == reason


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_environment_allows_international(monkeypatch, value):
    monkeypatch.setenv("ALLOW_INTERNATIONAL_SMS", value)
    assert normalize("+447911123456") == "+447911123456"
    assert reason_of("+447911123456", allow_international=False) == "international_not_allowed"


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "maybe"])
def test_environment_refuses_international(monkeypatch, value):
    monkeypatch.setenv("ALLOW_INTERNATIONAL_SMS", value)
    assert reason_of("+447911123456") == "international_not_allowed"
    assert normalize("+447911123456", allow_international=True) == "+447911123456"


def test_environment_read_at_call_time(monkeypatch):
    monkeypatch.delenv("ALLOW_INTERNATIONAL_SMS", raising=False)
    assert reason_of("+14155552671") == "international_not_allowed"
    monkeypatch.setenv("ALLOW_INTERNATIONAL_SMS", "true")
    assert normalize("+14155552671") == "+14155552671"


# --- the exception ----------------------------------------------------------------------------


def test_reason_text_covers_every_reason():
    assert set(phones.REASON_TEXT) == REASONS
    assert phones.REASON_TEXT["landline"] == (
        "Số máy bàn, không nhận được SMS",
        "Landline number, cannot receive SMS",
    )
    for vi, en in phones.REASON_TEXT.values():
        assert vi != en
        assert en.isascii()
        assert not vi.isascii()


def test_exception_message_is_an_english_sentence_without_the_number():
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize("024 3825 1234")
    exc = caught.value
    assert isinstance(exc, ValueError)
    assert str(exc) == "This is a landline number, which cannot receive SMS."
    assert exc.vi == "Số máy bàn, không nhận được SMS"
    assert "3825" not in str(exc)


def test_every_reason_has_a_sentence():
    sentences = {str(InvalidPhoneNumber(reason)) for reason in REASONS}
    assert len(sentences) == len(REASONS)
    assert all(s.endswith(".") and s[0].isupper() for s in sentences)


def test_exception_pickles_with_its_reason():
    again = pickle.loads(pickle.dumps(InvalidPhoneNumber("too_short")))  # noqa: S301 - our own bytes
    assert (again.reason, str(again)) == ("too_short", str(InvalidPhoneNumber("too_short")))


def test_unknown_reason_code_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown phone number reason"):
        InvalidPhoneNumber("nope")


# --- properties ------------------------------------------------------------------------------

subscriber = st.text(alphabet="0123456789", min_size=7, max_size=7)
vn_national = st.builds(lambda p, s: p[1:] + s, st.sampled_from(MOBILE_PREFIXES), subscriber)
old_national = st.builds(lambda p, s: p[1:] + s, st.sampled_from(list(OLD_TO_NEW)), subscriber)
any_form = st.sampled_from(range(len(written_forms("912345678"))))
phone_ish = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["", "0", "00", "+", "+84", "84", "(+84) ", "+84 0", "0084", "+1", "+44"]),
    st.text(alphabet="0123456789 .-()", max_size=20),
)


@given(vn_national, any_form)
def test_normalize_any_form_of_a_mobile(national, form):
    assert normalize(written_forms(national)[form]) == f"+84{national}"


@given(old_national, any_form)
def test_normalize_any_form_of_an_old_mobile(national, form):
    new = OLD_TO_NEW["0" + national[:3]][1:]
    assert normalize(written_forms(national)[form]) == f"+84{new}{national[3:]}"


@given(st.one_of(phone_ish, st.text(), vn_national, old_national), st.booleans())
def test_normalize_is_idempotent_and_raises_only_invalid_phone_number(raw, international):
    once = outcome(raw, international)
    if once in REASONS:
        return
    assert E164.fullmatch(once)
    assert outcome(once, international) == once


# --- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+84912345678", "+84 91x xxx 678"),
        ("+84321234567", "+84 32x xxx 567"),
        ("+14155552671", "+1 41x xxxx 671"),
        ("+447911123456", "+44 79x xxxx 456"),
        ("0912345678", "xxxxxxx678"),
        ("0912 345 678", "xxxxxxx678"),
        ("Nguyễn Văn An 0912345678", "xxxxxxx678"),
        ("+84113", "xxxxx"),
        ("+841992000", "xxxxxx000"),  # too short to show the network digits as well
        ("113", "xxx"),
        ("", ""),
        ("không có số", ""),
    ],
)
def test_mask(phone, masked):
    assert mask(phone) == masked


def digits_of(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


@given(vn_national)
def test_mask_of_normalized_mobile(national):
    assert mask(normalize(national)) == f"+84 {national[:2]}x xxx {national[-3:]}"


@given(st.one_of(st.text(), phone_ish, vn_national.map(lambda n: "+84" + n)))
def test_mask_reveals_at_most_the_last_three_digits(text):
    out = mask(text)
    assert set(out) <= set("0123456789x+ ")
    shown = digits_of(out)
    digits = digits_of(text)
    if out.startswith("+"):
        # The country code and two network digits are shown, then only the last three.
        country = out[1:].split(" ")[0]
        assert shown == country + digits[len(country) : len(country) + 2] + digits[-3:]
        assert len(digits) - len(shown) >= 3
    else:
        assert shown == (digits[-3:] if len(digits) >= 7 else "")
        assert len(out) == len(digits)


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("sent to 0912345678", "sent to +84 91x xxx 678"),
        ("sent to +84 912 345 678.", "sent to +84 91x xxx 678."),
        ("phone=(+84) 912-345-678;", "phone=+84 91x xxx 678;"),
        ("0084 912.345.678 ok", "+84 91x xxx 678 ok"),
        ("84912345678", "+84 91x xxx 678"),
        ("old 01621234567", "old +84 16x xxxx 567"),
        ("SĐT:0912345678", "SĐT:+84 91x xxx 678"),
        ("bare 912345678", "bare xxxxxx678"),
        ("to +44 7911 123456", "to +44 79x xxxx 456"),
        ("a 0912345678, b 0987654321", "a +84 91x xxx 678, b +84 98x xxx 321"),
        ("０９１２３４５６７８", "+84 91x xxx 678"),
        ("sent to 0912345678abc", "sent to +84 91x xxx 678abc"),
    ],
)
def test_mask_text(line, masked):
    assert mask_text(line) == masked


@pytest.mark.parametrize(
    "line",
    [
        "2025-07-14 08:30:00,123 INFO worker started",
        "Hồ sơ 000.00.31.H26-250714-0001 đã được tiếp nhận",
        "Ngày hẹn trả: 16/07/2025",
        "Lệ phí 1.500.000 đồng, 15.000.000.000 tổng",
        "X-Timestamp 1752456600 too old",
        "job 550e8400-e29b-41d4-a716-446655440000",
        "twilio sid=SM0123456789abcdef0123456789abcdef error 20429",
        "from 192.168.100.200 HTTP 429",
        "session 12345678",
    ],
)
def test_mask_text_leaves_other_numbers(line):
    assert mask_text(line) == line


def test_mask_text_is_stable_on_its_output():
    once = mask_text("to 0912345678 and +84 162 123 4567")
    assert mask_text(once) == once == "to +84 91x xxx 678 and +84 16x xxxx 567"


# Free text around a number: no digits, no plus sign (a "+" right before a space would
# rightly be read as part of the number).
words = st.text(
    alphabet=st.characters(exclude_categories=["Nd", "No", "Cs"], exclude_characters="+＋"),
    max_size=30,
)


@given(
    words.map(lambda w: w + " "),
    vn_national,
    st.sampled_from(range(len(written_forms("912345678")) - 1)),  # all but the bare form
    words,
)
def test_mask_text_hides_the_middle_digits(before, national, form, after):
    phone = written_forms(national)[form].strip()
    out = mask_text(before + phone + " " + after)
    assert out == f"{before}+84 {national[:2]}x xxx {national[-3:]} {after}"
