"""SMS text: clean-up, Vietnamese diacritics folding, encoding, segments and length limits.

Pure functions, no Flask and no database. ``prepare`` is the one call the sending code
makes: it applies the diacritics policy (``SMS_DIACRITICS``) and the hard length limit.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import regex

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "POLICIES",
    "MessageTooLong",
    "PreparedSms",
    "SmsAnalysis",
    "analyze",
    "apply_policy",
    "check_limit",
    "clean",
    "fold",
    "is_gsm7",
    "prepare",
    "split",
]

Encoding = Literal["GSM-7", "UCS-2"]

# 3GPP TS 23.038 default alphabet; the index of a character is its 7-bit code.
# Code 0x1B is the escape to the extension table, not a character.
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_ESCAPE: Final = "\x1b"
# The default extension table: each is sent as ESC + code, so it costs two septets.
# Form feed (page break) is in the table too.
GSM7_EXTENSION: Final = "\f^{}\\[~]|€"
_GSM7_CHARS: Final = frozenset(GSM7_BASIC.replace(_ESCAPE, "") + GSM7_EXTENSION)
_GSM7_EXTENSION_RE: Final = re.compile("[" + re.escape(GSM7_EXTENSION) + "]")

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153  # 7 septets go to the concatenation header
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67

DEFAULT_MAX_SEGMENTS: Final = 6
DEFAULT_MAX_CHARS: Final = 918  # 6 GSM-7 parts, GOV.UK Notify's cap

POLICIES: Final = ("strip", "keep", "auto")

# --- clean ------------------------------------------------------------------------------------

_DASHES: Final = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SINGLE_QUOTES: Final = "\u2018\u2019\u201a\u201b"
_DOUBLE_QUOTES: Final = "\u201c\u201d\u201e\u201f"
# NBSP, narrow NBSP, tab and the typographic spaces.
_SPACES: Final = (
    "\u00a0\u202f\t\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u205f\u3000"
)
# ZWSP, ZWNJ, ZWJ, word joiner, BOM / ZWNBSP, soft hyphen, Mongolian vowel separator.
_INVISIBLE: Final = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
_LINE_SEPARATORS: Final = "\u0085\u2028\u2029"

_CLEAN_TABLE: Final[dict[int, str | None]] = {
    **dict.fromkeys(map(ord, _DASHES), "-"),
    **dict.fromkeys(map(ord, _SINGLE_QUOTES), "'"),
    **dict.fromkeys(map(ord, _DOUBLE_QUOTES), '"'),
    **dict.fromkeys(map(ord, _SPACES), " "),
    **dict.fromkeys(map(ord, _INVISIBLE), None),
    **dict.fromkeys(map(ord, _LINE_SEPARATORS), "\n"),
    ord("\u2026"): "...",
}
_CRLF_RE: Final = re.compile(r"\r\n?")


def _nfc(text: str) -> str:
    # is_normalized is a quick check, so already-NFC text (nearly all) is not copied.
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """NFC, smart punctuation downgraded, invisible characters removed, ``\\n`` line ends."""
    text = _nfc(text).translate(_CLEAN_TABLE)
    # Removing a zero-width character can leave a letter next to a combining mark.
    text = _nfc(text)
    return _CRLF_RE.sub("\n", text).strip()


# --- fold -------------------------------------------------------------------------------------

_VI_VOWELS: Final = "aăâeêioôơuưy"
# Tone marks: grave (huyền), acute (sắc), hook above (hỏi), tilde (ngã), dot below (nặng).
_VI_TONES: Final = "\u0300\u0301\u0309\u0303\u0323"
# Vowel marks: circumflex, breve, horn.
_VI_VOWEL_MARKS: Final = "\u0302\u0306\u031b"


def _vietnamese_fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for vowel in _VI_VOWELS + _VI_VOWELS.upper():
        base = unicodedata.normalize("NFD", vowel)[0]
        for tone in ("", *_VI_TONES):
            letter = unicodedata.normalize("NFC", vowel + tone)
            if letter != base:
                table[ord(letter)] = base
    table[ord("đ")] = "d"
    table[ord("Đ")] = "D"
    # Eth looks exactly like Đ and is what many keyboards and fonts give for it ("Ðại Thanh").
    table[ord("Ð")] = "D"
    table[ord("ð")] = "d"
    # The đồng sign: "50.000₫" is written "50.000d" without diacritics.
    table[ord("₫")] = "d"
    # Marks left over when text was typed as base letter + combining marks in an order
    # NFC cannot compose.
    for mark in _VI_TONES + _VI_VOWEL_MARKS:
        table[ord(mark)] = None
    return table


_FOLD_TABLE: Final = _vietnamese_fold_table()


_NOT_PRINTABLE_ASCII: Final = re.compile(r"[^\x20-\x7e\n]")


def fold(text: str, *, ascii_only: bool = False) -> str:
    """``clean``, then Vietnamese without diacritics (đ -> d); other characters are kept.

    ``ascii_only`` (USSD screens): other letters lose their marks too (é -> e), and whatever has
    no ASCII form, control characters included, is dropped; line breaks stay.
    """
    # Removing a stray mark can make a new NFC pair or expose leading whitespace.
    folded = _nfc(clean(text).translate(_FOLD_TABLE)).strip()
    if not ascii_only:
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return _NOT_PRINTABLE_ASCII.sub("", decomposed).strip()


# --- analysis ---------------------------------------------------------------------------------


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default alphabet or its extension."""
    return _GSM7_CHARS.issuperset(text)


@dataclass(frozen=True, slots=True)
class SmsAnalysis:
    """Encoding and size of a text as it would be sent.

    ``length`` is in septets for GSM-7 (extension characters count 2) and in UTF-16 code
    units for UCS-2 (an emoji counts 2). An empty text has 0 segments. ``segments`` counts
    the parts as phones cut them: never inside an escape pair, or in UCS-2 inside a grapheme.
    """

    encoding: Encoding
    length: int
    segments: int
    characters: int

    def to_dict(self) -> dict[str, str | int]:
        return {
            "encoding": self.encoding,
            "length": self.length,
            "segments": self.segments,
            "characters": self.characters,
        }


def _gsm7_cost(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _utf16_length(text: str) -> int:
    # surrogatepass: a lone surrogate (possible in decoded JSON) counts as one unit.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _utf16_cost(piece: str) -> int:
    if len(piece) == 1:  # most pieces: compared, not encoded
        return 2 if piece > "\uffff" else 1
    return _utf16_length(piece)


# One user-perceived character: a letter with its combining marks, a flag (two regional
# indicators), an emoji with its skin tone or keycap, a ZWJ sequence.
_GRAPHEME_RE: Final = regex.compile(r"\X")
# A character that may join its neighbour into one grapheme (a mark, a joiner, a regional
# indicator, a Hangul jamo...). Without one, every code point is a grapheme of its own:
# Vietnamese in NFC, for one, is found so in a few microseconds.
_JOINING_RE: Final = regex.compile(r"[^\p{GCB=Other}\p{GCB=Control}\p{GCB=LF}]")


def _pieces(text: str, encoding: Encoding, part_size: int) -> list[str]:
    """The smallest pieces a part boundary may fall between.

    GSM-7 has one character per grapheme, so its pieces are characters (an escape pair is one
    character). In UCS-2 a phone cuts only between graphemes, as Android's splitter does and
    Twilio's segment calculator counts; a grapheme too long for any part (dozens of stacked
    marks) is cut between its code points instead.
    """
    if encoding == "GSM-7" or not _JOINING_RE.search(text):
        return list(text)
    pieces: list[str] = []
    for grapheme in _GRAPHEME_RE.findall(text):
        if _utf16_cost(grapheme) <= part_size:
            pieces.append(grapheme)
        else:
            pieces.extend(grapheme)
    return pieces


def _split_parts(pieces: list[str], cost: Callable[[str], int], part_size: int) -> list[str]:
    # Carriers never split an escape pair, a surrogate pair or a grapheme across parts, so
    # such a piece moves whole to the next part.
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for piece in pieces:
        size = cost(piece)
        if current and used + size > part_size:
            parts.append("".join(current))
            current, used = [], 0
        current.append(piece)
        used += size
    parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class _Measured:
    analysis: SmsAnalysis
    parts: list[str] | None  # None unless cut into several parts


def _measure(text: str, *, cut: bool = False) -> _Measured:
    """Analyse text that is already clean; ``cut``: also return its parts when there are several."""
    cost: Callable[[str], int]
    if is_gsm7(text):
        encoding: Encoding = "GSM-7"
        length = len(text) + len(_GSM7_EXTENSION_RE.findall(text))
        cost, single, part = _gsm7_cost, GSM7_SINGLE, GSM7_PART
    else:
        encoding = "UCS-2"
        length = _utf16_length(text)
        cost, single, part = _utf16_cost, UCS2_SINGLE, UCS2_PART
    parts = None
    if not text:
        segments = 0
    elif length <= single:
        segments = 1
    elif not cut and length == len(text) and (encoding == "GSM-7" or not _JOINING_RE.search(text)):
        # Every character one unit and its own grapheme: none can straddle a boundary.
        segments = math.ceil(length / part)
    else:
        parts = _split_parts(_pieces(text, encoding, part), cost, part)
        segments = len(parts)
    return _Measured(SmsAnalysis(encoding, length, segments, len(text)), parts)


def analyze(text: str) -> SmsAnalysis:
    """Encoding, length and segment count of ``text`` after ``clean``."""
    return _measure(clean(text)).analysis


def split(text: str) -> list[str]:
    """The parts carriers would send for ``clean(text)``: [] for an empty text."""
    text = clean(text)
    if not text:
        return []
    return _measure(text, cut=True).parts or [text]


# --- policy and limits ------------------------------------------------------------------------


def apply_policy(text: str, policy: str) -> str:
    """Apply the ``SMS_DIACRITICS`` policy: ``strip`` (fold), ``keep`` (clean) or ``auto``.

    ``auto`` keeps the diacritics only when that costs no more segments than folding.
    """
    if policy == "strip":
        return fold(text)
    if policy == "keep":
        return clean(text)
    if policy == "auto":
        kept = clean(text)
        folded = fold(kept)
        if _measure(kept).analysis.segments <= _measure(folded).analysis.segments:
            return kept
        return folded
    raise ValueError(f"unknown diacritics policy {policy!r}: use one of {', '.join(POLICIES)}")


class MessageTooLong(ValueError):
    """The text, as it would be sent, is over the segment or character limit."""

    def __init__(self, analysis: SmsAnalysis, limit: int, max_chars: int) -> None:
        self.analysis = analysis
        self.segments = analysis.segments
        self.limit = limit
        self.characters = analysis.characters
        self.max_chars = max_chars
        over_en: list[str] = []
        over_vi: list[str] = []
        if self.segments > limit:
            over_en.append(f"{self.segments} segments, the limit is {limit}")
            over_vi.append(f"{self.segments} phần, tối đa {limit} phần")
        if self.characters > max_chars:
            over_en.append(f"{self.characters} characters, the limit is {max_chars}")
            over_vi.append(f"{self.characters} ký tự, tối đa {max_chars} ký tự")
        self.vi = f"Tin nhắn quá dài: {'; '.join(over_vi)}."
        super().__init__(f"Message too long: {'; '.join(over_en)}.")

    def __reduce__(self) -> tuple[type[MessageTooLong], tuple[SmsAnalysis, int, int]]:
        return (type(self), (self.analysis, self.limit, self.max_chars))


def check_limit(
    text: str, *, max_segments: int = DEFAULT_MAX_SEGMENTS, max_chars: int = DEFAULT_MAX_CHARS
) -> SmsAnalysis:
    """Analyse ``text`` and raise ``MessageTooLong`` when it is over either limit."""
    analysis = analyze(text)
    if analysis.segments > max_segments or analysis.characters > max_chars:
        raise MessageTooLong(analysis, max_segments, max_chars)
    return analysis


@dataclass(frozen=True, slots=True)
class PreparedSms:
    """A body ready to send and its analysis."""

    body: str
    analysis: SmsAnalysis


def prepare(
    text: str,
    *,
    policy: str = "strip",
    max_segments: int = DEFAULT_MAX_SEGMENTS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> PreparedSms:
    """Apply the diacritics policy, then the length limit (raises ``MessageTooLong``)."""
    body = apply_policy(text, policy)
    return PreparedSms(body, check_limit(body, max_segments=max_segments, max_chars=max_chars))
