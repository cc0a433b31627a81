"""Phone numbers: normalise to E.164, refuse numbers that cannot receive SMS, mask for logs.

Pure functions, no Flask and no database. Vietnamese mobile numbers are the normal case:
every common way of writing one is accepted, old 11-digit numbers (before the 2018 change)
are converted, landlines and service numbers are refused with a reason staff can act on.
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

__all__ = [
    "OLD_MOBILE_PREFIXES",
    "REASON_TEXT",
    "InvalidPhoneNumber",
    "mask",
    "mask_text",
    "normalize",
]

VN_COUNTRY_CODE: Final = "84"
# A Vietnamese mobile number has 9 digits after the country code (10 with the leading 0).
VN_MOBILE_LENGTH: Final = 9

REASON_TEXT: Final[dict[str, tuple[str, str]]] = {
    "empty": ("Chưa nhập số điện thoại", "No phone number given"),
    "not_a_number": (
        "Không phải số điện thoại (có chữ hoặc ký tự lạ)",
        "Not a phone number (contains letters or other characters)",
    ),
    "too_short": ("Số điện thoại thiếu chữ số", "Phone number too short"),
    "too_long": ("Số điện thoại thừa chữ số", "Phone number too long"),
    "landline": ("Số máy bàn, không nhận được SMS", "Landline number, cannot receive SMS"),
    "service_number": (
        "Số dịch vụ hoặc tổng đài, không nhận được SMS",
        "Service or short number, cannot receive SMS",
    ),
    "unknown_prefix": (
        "Đầu số không thuộc mạng di động nào",
        "Prefix not used by any mobile network",
    ),
    "international_not_allowed": (
        "Số nước ngoài, chưa cho phép gửi SMS ra nước ngoài",
        "Foreign number, sending SMS abroad is not enabled",
    ),
    "invalid": ("Số điện thoại không hợp lệ", "Invalid phone number"),
}

# str(InvalidPhoneNumber): a full English sentence. It never repeats the number itself,
# because exception texts end up in logs and in the message history.
_SENTENCES: Final[dict[str, str]] = {
    "empty": "No phone number was given.",
    "not_a_number": (
        "This is not a phone number: only digits, spaces, dots, dashes, parentheses "
        "and a leading + are allowed."
    ),
    "too_short": (
        "The phone number is too short: a Vietnamese mobile number has 10 digits "
        "(0 followed by 9 digits)."
    ),
    "too_long": (
        "The phone number is too long: a Vietnamese mobile number has 10 digits "
        "(0 followed by 9 digits)."
    ),
    "landline": "This is a landline number, which cannot receive SMS.",
    "service_number": (
        "This is a service or short number (such as 1900, 1800 or 113), which cannot receive SMS."
    ),
    "unknown_prefix": "No mobile network uses this prefix, so the number cannot be reached.",
    "international_not_allowed": (
        "This is not a Vietnamese number, and sending SMS abroad is not enabled "
        "(ALLOW_INTERNATIONAL_SMS)."
    ),
    "invalid": "This is not a valid mobile phone number.",
}


class InvalidPhoneNumber(ValueError):
    """A number that cannot receive SMS; ``reason`` is a stable code from ``REASON_TEXT``."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in REASON_TEXT:
            raise ValueError(f"unknown phone number reason code {reason!r}")
        self.reason = reason
        self.message = message or _SENTENCES[reason]
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[InvalidPhoneNumber], tuple[str, str]]:
        # Keeps the reason when pickled (RQ stores failed jobs' exceptions).
        return (type(self), (self.reason, self.message))

    @property
    def vi(self) -> str:
        """The reason in plain Vietnamese for staff."""
        return REASON_TEXT[self.reason][0]


# The 2018 change from 11 to 10 digits: old national prefix (without the trunk 0) -> new one.
# The last 7 digits stay the same.
OLD_MOBILE_PREFIXES: Final[dict[str, str]] = {
    # MobiFone
    "120": "70",
    "121": "79",
    "122": "77",
    "126": "76",
    "128": "78",
    # VinaPhone
    "123": "83",
    "124": "84",
    "125": "85",
    "127": "81",
    "129": "82",
    # Viettel: 0162..0169 -> 032..039, one for one
    **{f"16{d}": f"3{d}" for d in "23456789"},
    # Vietnamobile
    "186": "56",
    "188": "58",
    # Gmobile
    "199": "59",
}
_OLD_NATIONAL_LENGTH: Final = 3 + 7

_SMS_CAPABLE: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_SERVICE_TYPES: Final = frozenset(
    {
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
    }
)
# Vietnamese service prefixes, also when the number has the wrong length for them.
_VN_SERVICE_PREFIXES: Final = ("1800", "1900")

# Separators people put inside numbers: whitespace, dots, slashes, parentheses and any dash.
_SEPARATORS_RE: Final = re.compile(r"[\s.()/\[\]\-\u2010-\u2015\u2212]+")
_DIGITS_RE: Final = re.compile(r"(\+?)([0-9]+)")
_NON_ASCII_DIGIT_RE: Final = re.compile(r"[^\x00-\x7f]")
# E.164 allows 15 digits; anything much longer is not worth parsing.
_MAX_DIGITS: Final = 17

_TRUTHY: Final = frozenset({"1", "true", "yes", "on"})


def _international_allowed(allow_international: bool | None) -> bool:
    if allow_international is not None:
        return allow_international
    return os.environ.get("ALLOW_INTERNATIONAL_SMS", "").strip().lower() in _TRUTHY


def _ascii_digit(match: re.Match[str]) -> str:
    ch = match.group()
    return str(unicodedata.decimal(ch)) if ch.isdecimal() else ch


def _compact(raw: str) -> tuple[str, str]:
    """Return (plus, digits) from a written number, or raise empty / not_a_number."""
    if not raw or raw.isspace():
        raise InvalidPhoneNumber("empty")
    # NFKC turns full-width digits, plus signs and parentheses into ASCII ones.
    text = unicodedata.normalize("NFKC", raw)
    text = _NON_ASCII_DIGIT_RE.sub(_ascii_digit, text)
    text = _SEPARATORS_RE.sub("", text)
    match = _DIGITS_RE.fullmatch(text)
    if match is None:
        raise InvalidPhoneNumber("empty" if not text else "not_a_number")
    return match.group(1), match.group(2)


def _international_part(plus: str, digits: str) -> str | None:
    """The digits after ``+`` or ``00`` (country code first), None for a national form."""
    if plus:
        return digits
    if digits.startswith("00"):
        return digits[2:]
    # 84 + 9 (mobile) or 84 + 10 (old mobile, landline): no national number is that long.
    if digits.startswith(VN_COUNTRY_CODE) and len(digits) - len(VN_COUNTRY_CODE) in (
        VN_MOBILE_LENGTH,
        _OLD_NATIONAL_LENGTH,
    ):
        return digits
    return None


def _convert_old_prefix(national: str) -> str:
    if len(national) == _OLD_NATIONAL_LENGTH:
        new = OLD_MOBILE_PREFIXES.get(national[:3])
        if new is not None:
            return new + national[3:]
    return national


def _classify_valid(number: phonenumbers.PhoneNumber) -> str | None:
    """Reason code for a valid number that cannot receive SMS, None if it can."""
    kind = phonenumbers.number_type(number)
    if kind in _SMS_CAPABLE:
        return None
    if kind == PhoneNumberType.FIXED_LINE:
        return "landline"
    if kind in _SERVICE_TYPES:
        return "service_number"
    return "invalid"  # VoIP, pager, personal numbers: not reliably reachable by SMS


def _vn_reason(national: str) -> str:
    """Why a Vietnamese national number that phonenumbers calls invalid is wrong."""
    if national.startswith(_VN_SERVICE_PREFIXES):
        return "service_number"
    length = len(national)
    if length < VN_MOBILE_LENGTH:
        return "too_short"
    # Every number beginning 02 is a fixed line (area codes since 2017).
    if national.startswith("2") and length <= _OLD_NATIONAL_LENGTH + 1:
        return "landline"
    if length == VN_MOBILE_LENGTH:
        return "unknown_prefix"
    # Ten digits beginning with 1 look like an old 11-digit number with an unknown prefix.
    if length == _OLD_NATIONAL_LENGTH and national.startswith("1"):
        return "unknown_prefix"
    return "too_long"


def _parse(e164_digits: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse("+" + e164_digits, None)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.TOO_LONG:
            raise InvalidPhoneNumber("too_long") from None
        if exc.error_type in (
            NumberParseException.TOO_SHORT_NSN,
            NumberParseException.TOO_SHORT_AFTER_IDD,
        ):
            raise InvalidPhoneNumber("too_short") from None
        raise InvalidPhoneNumber("invalid") from None


def _normalize_vn(national: str, *, bare: bool) -> str:
    if not national:
        raise InvalidPhoneNumber("too_short")
    if len(national) > _MAX_DIGITS:
        raise InvalidPhoneNumber("too_long")
    national = _convert_old_prefix(national)
    if len(national) < 3:
        raise InvalidPhoneNumber("too_short")
    # 113, 1080, 9029...: short codes are written as bare digits, never with 0 or +84.
    if len(national) <= 5:
        raise InvalidPhoneNumber("service_number" if bare else "too_short")
    number = _parse(VN_COUNTRY_CODE + national)
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(_vn_reason(national))
    reason = _classify_valid(number)
    if reason is not None:
        raise InvalidPhoneNumber(reason)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_POSSIBLE_REASONS: Final = {
    ValidationResult.TOO_SHORT: "too_short",
    ValidationResult.TOO_LONG: "too_long",
}


def _normalize_international(digits: str, allowed: bool) -> str:
    if not digits:
        raise InvalidPhoneNumber("too_short")
    if len(digits) > _MAX_DIGITS:
        raise InvalidPhoneNumber("too_long")
    number = _parse(digits)
    if not allowed:
        raise InvalidPhoneNumber("international_not_allowed")
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        raise InvalidPhoneNumber(_POSSIBLE_REASONS.get(possible, "invalid"))
    reason = _classify_valid(number)
    if reason is not None:
        raise InvalidPhoneNumber(reason)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(raw: str, *, allow_international: bool | None = None) -> str:
    """Return the E.164 form (``+84…``) of a number that can receive SMS.

    Raises ``InvalidPhoneNumber`` (with a ``reason`` code) otherwise. Numbers outside
    Vietnam are accepted only when ``allow_international`` is true; None means: read
    ``ALLOW_INTERNATIONAL_SMS`` from the environment now.
    """
    plus, digits = _compact(raw)
    international = _international_part(plus, digits)
    if international is None:
        # 0912 345 678, or without the trunk 0: 912 345 678, and short codes such as 113.
        return _normalize_vn(digits.removeprefix("0"), bare=not digits.startswith("0"))
    if international.startswith(VN_COUNTRY_CODE):
        # "+84 (0) 912 ...": the trunk 0 is sometimes written after the country code.
        return _normalize_vn(international[len(VN_COUNTRY_CODE) :].removeprefix("0"), bare=False)
    return _normalize_international(international, _international_allowed(allow_international))


# --- masking -------------------------------------------------------------------------------

_E164_RE: Final = re.compile(r"\+([0-9]{8,15})")
_COUNTRY_CODES: Final = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# Below this many national digits, showing two leading and three trailing ones is too much.
_MIN_NATIONAL_TO_SHOW_PREFIX: Final = 8
_MIN_DIGITS_TO_SHOW_TAIL: Final = 7
_SHOWN_TAIL: Final = 3


def _country_code(digits: str) -> str | None:
    for size in (1, 2, 3):
        if digits[:size] in _COUNTRY_CODES:
            return digits[:size]
    return None


def _mask_digits(digits: str) -> str:
    if len(digits) < _MIN_DIGITS_TO_SHOW_TAIL:
        return "x" * len(digits)
    return "x" * (len(digits) - _SHOWN_TAIL) + digits[-_SHOWN_TAIL:]


def mask(phone: str) -> str:
    """Mask a number for logs and screens: ``+84912345678`` -> ``+84 91x xxx 678``.

    E.164 numbers keep the country code, two national digits and the last three. Anything
    else keeps at most its last three digits (none when it has fewer than 7) and drops
    every other character.
    """
    match = _E164_RE.fullmatch(phone.strip())
    if match is not None:
        digits = match.group(1)
        country = _country_code(digits)
        if country is not None:
            national = digits[len(country) :]
            if len(national) >= _MIN_NATIONAL_TO_SHOW_PREFIX:
                hidden = "x" * (len(national) - 2 - _SHOWN_TAIL - 1)
                return f"+{country} {national[:2]}x {hidden} {national[-_SHOWN_TAIL:]}"
    digits = "".join(str(unicodedata.decimal(ch)) for ch in phone if ch.isdecimal())
    return _mask_digits(digits)


# A phone number inside free text. The start must look like a number a person wrote:
# +…, (+84)…, +84 (0)…, 0…, 84… (9+ digits, single separators allowed), or a bare 9-digit
# national mobile. Dates, times, amounts, Unix timestamps and dossier codes
# (000.00.31.H26-250714-0001) do not match. Phone keyboards may type full-width digits
# and plus signs, so the literal ones also have their full-width twin.
# Between digits: a single space, dot or dash of any kind.
_PHONE_IN_TEXT_RE: Final = re.compile(
    r"""
    (?<![\w+＋])           # not inside a word, a longer number or after a plus sign
    (?<!\w[-./])          # not the tail of a code such as H26-250714-0001
    (?:
        (?:{plus}\s?\d{{1,3}}\s?\(\s?{zero}\s?\)|\(\s?(?:{plus}|00)?\d{{1,3}}\s?\)|{plus})
        \s?\d(?:{sep}?\d){{6,}}
      | (?:{zero}\d|{eight}{four}{sep}?\d)(?:{sep}?\d){{7,}}
      | [35789３５７８９]\d{{8}}(?!\d)
    )
    """.format(
        plus="[+＋]",
        zero="[0０]",
        eight="[8８]",
        four="[4４]",
        sep=r"[ \u00a0.\-\u2010-\u2015\u2212]",  # one space, dot or dash of any kind
    ),
    re.VERBOSE,
)
_TRUNK_AFTER_COUNTRY_RE: Final = re.compile(r"\(\s?[0０]\s?\)")
_MIN_VN_NATIONAL_WITH_TRUNK: Final = 1 + VN_MOBILE_LENGTH


def _mask_found(match: re.Match[str]) -> str:
    token = _TRUNK_AFTER_COUNTRY_RE.sub("", match.group())
    digits = "".join(str(unicodedata.decimal(ch)) for ch in token if ch.isdecimal())
    if token.lstrip("( ").startswith(("+", "＋")):
        return mask("+" + digits)
    if digits.startswith("00"):
        return mask("+" + digits[2:])
    if digits.startswith(VN_COUNTRY_CODE) and len(digits) >= len(VN_COUNTRY_CODE) + 9:
        return mask("+" + digits)
    if digits.startswith("0") and len(digits) in (
        _MIN_VN_NATIONAL_WITH_TRUNK,
        _MIN_VN_NATIONAL_WITH_TRUNK + 1,
    ):
        return mask("+" + VN_COUNTRY_CODE + digits[1:])
    return _mask_digits(digits)


def mask_text(text: str) -> str:
    """Mask every phone number in free text (for the logging filter)."""
    return _PHONE_IN_TEXT_RE.sub(_mask_found, text)
