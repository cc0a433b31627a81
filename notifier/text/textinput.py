"""Text that comes from outside (webhook fields, inbound SMS, USSD input) made safe to store.

`clean_input` gives one canonical form: NFC (so "Nguyễn" typed as base letters plus combining
marks equals the precomposed one and costs no more in an SMS), no NUL or other control
characters (PostgreSQL refuses NUL in text), no lone surrogates (they cannot be encoded),
invisible characters removed, whitespace runs on one line collapsed, ends trimmed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator

# C0 and C1 controls but tab and newline, then zero-width and bidirectional formatting marks.
_DROP_RE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_SPACES_RE: Final = re.compile(r"[^\S\n]+")
_NEWLINES_RE: Final = re.compile(r"\s*\n\s*")


def clean_input(text: str, *, multiline: bool = True) -> str:
    """The canonical stored form of text received from outside."""
    text = _SURROGATE_RE.sub("\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROP_RE.sub("", unicodedata.normalize("NFC", text))
    if not multiline:
        text = text.replace("\n", " ")
    text = _SPACES_RE.sub(" ", text)
    text = _NEWLINES_RE.sub("\n", text)
    # Dropping a character can leave a letter next to a combining mark: compose again.
    return unicodedata.normalize("NFC", text).strip()


CLIP_MARK: Final = " […]"


def clip(text: str, limit: int) -> str:
    """`text` if it has at most `limit` characters, else its start and CLIP_MARK, `limit` in all.

    For fields kept from outside whose length we do not control: better cut and marked as cut
    than refused, when the sender would only retry and then drop it.
    """
    if len(text) <= limit:
        return text
    return text[: limit - len(CLIP_MARK)].rstrip() + CLIP_MARK


def clipped(limit: int) -> AfterValidator:
    """A pydantic validator: `clip` to `limit` (after cleaning)."""
    return AfterValidator(lambda text: clip(text, limit))


def _cleaned(multiline: bool) -> BeforeValidator:
    def clean(value: object) -> object:
        # Anything but a string goes on unchanged, for the type check to refuse it.
        return clean_input(value, multiline=multiline) if isinstance(value, str) else value

    return BeforeValidator(clean)


# Pydantic field types cleaned before the other constraints (length, pattern) apply.
InputText = Annotated[str, _cleaned(multiline=True)]
InputLine = Annotated[str, _cleaned(multiline=False)]
