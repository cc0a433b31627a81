"""Twilio's message segment calculator, ported to Python as the oracle for SMS segment counts.

Source: TwilioDevEd/message-segment-calculator 1.2.0, `src/libs/SegmentedMessage.ts`
(`_buildSegments`, `_hasAnyUCSCharacters`), `Segment.ts` (1120-bit segments, `addHeader`),
`EncodedChar.ts` (bits per character), `UserDataHeader.ts` (6 octets per concatenated part)
and `UnicodeToGSM.ts` (the GSM 03.38 table below). Smart encoding is not ported: the
service does its own clean-up before counting.

The calculator splits a message into graphemes with `grapheme-splitter`; here `regex`'s `\\X`
does it (UAX #29 of a current Unicode, as Android's BreakIterator). Written as plainly as the
original, on purpose: it packs bits, where `notifier.text.sms` counts units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import regex

# 3GPP TS 23.038 default alphabet, row by row (code = 16 * row + column); 0x1B is the escape.
GSM_ROWS: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
)
ESC: Final = 0x1B
GSM_EXTENSION_CODES: Final = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
GSM_BASIC_CODES: Final = {
    char: 16 * row + column
    for row, line in enumerate(GSM_ROWS)
    for column, char in enumerate(line)
    if char != "\x1b"
}
# UnicodeToGSM.ts: a character's GSM code units (two for the extension table).
UNICODE_TO_GSM: Final[dict[str, tuple[int, ...]]] = {
    **{char: (code,) for char, code in GSM_BASIC_CODES.items()},
    **{char: (ESC, code) for char, code in GSM_EXTENSION_CODES.items()},
}

SEGMENT_BITS: Final = 1120  # 140 octets
USER_DATA_HEADER_OCTETS: Final = 6


def utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


@dataclass(frozen=True)
class EncodedChar:
    raw: str  # one grapheme
    encoding: str

    @property
    def is_gsm7(self) -> bool:
        return len(utf16_units(self.raw)) == 1 and self.raw in UNICODE_TO_GSM

    @property
    def code_units(self) -> list[int]:
        return list(UNICODE_TO_GSM[self.raw]) if self.is_gsm7 else utf16_units(self.raw)

    def size_in_bits(self) -> int:
        if self.encoding == "UCS-2" and self.is_gsm7:
            return 16  # GSM characters always take 16 bits in UCS-2
        return (7 if self.encoding == "GSM-7" else 16) * len(self.code_units)


@dataclass
class Segment:
    header_octets: int = 0
    chars: list[EncodedChar] = field(default_factory=list)

    def size_in_bits(self) -> int:
        return 8 * self.header_octets + sum(char.size_in_bits() for char in self.chars)

    def free_size_in_bits(self) -> int:
        return SEGMENT_BITS - self.size_in_bits()

    def add_header(self) -> list[EncodedChar]:
        """Make room for the header at the front; return the characters pushed out."""
        if self.header_octets:
            return []
        self.header_octets = USER_DATA_HEADER_OCTETS
        left_over: list[EncodedChar] = []
        while self.free_size_in_bits() < 0:
            left_over.insert(0, self.chars.pop())
        return left_over


def graphemes(message: str) -> list[str]:
    found = regex.findall(r"\X", message)
    return [
        piece for cluster in found for piece in (list(cluster) if cluster == "\r\n" else [cluster])
    ]


def has_any_ucs_characters(clusters: list[str]) -> bool:
    return any(len(utf16_units(c)) >= 2 or c not in UNICODE_TO_GSM for c in clusters)


@dataclass(frozen=True)
class SegmentedMessage:
    encoding: str
    segments: list[list[str]]  # the graphemes of each segment
    length: int  # septets (GSM-7) or UTF-16 units (UCS-2), headers excluded

    @property
    def parts(self) -> list[str]:
        return ["".join(segment) for segment in self.segments]


def segment(message: str) -> SegmentedMessage:
    """`new SegmentedMessage(message)`: encoding 'auto', no smart encoding."""
    if not message:
        # The calculator shows one empty segment; there is nothing to send.
        return SegmentedMessage("GSM-7", [], 0)
    clusters = graphemes(message)
    encoding = "UCS-2" if has_any_ucs_characters(clusters) else "GSM-7"
    encoded = [EncodedChar(cluster, encoding) for cluster in clusters]
    segments = [Segment()]
    current = segments[0]
    for char in encoded:
        if current.free_size_in_bits() < char.size_in_bits():
            segments.append(Segment(USER_DATA_HEADER_OCTETS))
            current = segments[-1]
            previous = segments[-2]
            if not previous.header_octets:
                current.chars.extend(previous.add_header())
        current.chars.append(char)
    unit_bits = 7 if encoding == "GSM-7" else 16
    length = sum(char.size_in_bits() for char in encoded) // unit_bits
    return SegmentedMessage(encoding, [[c.raw for c in s.chars] for s in segments], length)
