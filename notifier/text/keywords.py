"""SMS keywords (CONTRACTS.md): a pure function from what a citizen typed to what they meant.

Citizens type on basic phones: with or without diacritics, in any case, with extra spaces, the
number glued to the keyword (`dat2`), and the odd typo (`DATT 2`, `LIHC`). `parse` never raises,
whatever the text; anything it cannot place is `UNKNOWN`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rapidfuzz.distance import OSA

from notifier.text import sms

__all__ = ["Intent", "IntentKind", "parse"]

# Longer texts are not keywords; cutting them keeps parsing cheap whatever arrives.
MAX_TEXT: Final = 480
MAX_TOPIC: Final = 300
MAX_CODE: Final = 64


class IntentKind(StrEnum):
    LIST = "list"
    BOOK = "book"
    CANCEL = "cancel"
    DOSSIER = "dossier"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Intent:
    """What the citizen asked for. Only the fields of its kind are set."""

    kind: IntentKind
    keyword: str = ""  # the alias matched, folded and upper case
    number: int | None = None  # BOOK, CANCEL: the session's public number
    code: str | None = None  # CANCEL: booking code; DOSSIER: dossier code (upper case)
    topic: str | None = None  # BOOK: what the citizen wants to raise, as typed
    language: str = "vi"  # "en" when the citizen used an English keyword


@dataclass(frozen=True)
class _Alias:
    kind: IntentKind
    language: str = "vi"
    # Typos are forgiven only where a wrong guess costs nothing: never for consent changes.
    fuzzy: bool = True


_VI = "vi"
_EN = "en"
# Folded, upper case, spaces removed: "TU CHOI", "TUCHOI" and "Từ chối" all read "TUCHOI".
_ALIASES: Final[dict[str, _Alias]] = {
    "LICH": _Alias(IntentKind.LIST),
    "XEMLICH": _Alias(IntentKind.LIST),
    "SCHEDULE": _Alias(IntentKind.LIST, _EN),
    "DAT": _Alias(IntentKind.BOOK),
    "DATLICH": _Alias(IntentKind.BOOK),
    "BOOK": _Alias(IntentKind.BOOK, _EN),
    "HUY": _Alias(IntentKind.CANCEL),
    "HUYLICH": _Alias(IntentKind.CANCEL),
    "CANCEL": _Alias(IntentKind.CANCEL, _EN),
    "HS": _Alias(IntentKind.DOSSIER),
    "HOSO": _Alias(IntentKind.DOSSIER),
    "TRA": _Alias(IntentKind.DOSSIER),
    "TRACUU": _Alias(IntentKind.DOSSIER),
    "STATUS": _Alias(IntentKind.DOSSIER, _EN),
    "TC": _Alias(IntentKind.OPT_OUT, fuzzy=False),
    "TUCHOI": _Alias(IntentKind.OPT_OUT, fuzzy=False),
    "STOP": _Alias(IntentKind.OPT_OUT, fuzzy=False),
    "DK": _Alias(IntentKind.OPT_IN, fuzzy=False),
    "DONGY": _Alias(IntentKind.OPT_IN, fuzzy=False),
    "START": _Alias(IntentKind.OPT_IN, fuzzy=False),
    "HD": _Alias(IntentKind.HELP),
    "HUONGDAN": _Alias(IntentKind.HELP),
    "HELP": _Alias(IntentKind.HELP, _EN),
}
# A three-letter keyword one typo away is a common Vietnamese word (DA, DAY, HUE): such a guess
# is trusted only when an argument of the right shape follows ("DATT 2", not "Day la...").
_SHORT_FUZZY: Final = 3
_KEYPAD: Final = {
    letter: key
    for key, letters in enumerate(("ABC", "DEF", "GHI", "JKL", "MNO", "PQRS", "TUV", "WXYZ"))
    for letter in letters
}
_LONG_FUZZY: Final = 4

_LEADING_JUNK: Final = re.compile(r"^[^0-9A-Z?]+")
_LEADING_SEPARATORS: Final = re.compile(r"^[^0-9A-Z#]+")
_ALNUM: Final = re.compile(r"[0-9A-Z]")
_HEAD: Final = re.compile(r"^([A-Z]+)(.*)$")
_NUMBER: Final = re.compile(r"^#?(\d+)")
_MAX_NUMBER_DIGITS: Final = 6
_CODE_EDGE: Final = re.compile(r"^[^0-9A-Z]+|[^0-9A-Z]+$")
_NUMBER_WORDS: Final = frozenset({"SO", "NO", "NUMBER", "#"})
_TOPIC_EDGE: Final = " \t-:;,.#/"


def parse(text: str) -> Intent:
    """The intent of an inbound text. Never raises."""
    if not isinstance(text, str):
        return Intent(IntentKind.UNKNOWN)
    originals, folded = _tokens(text[:MAX_TEXT])
    if not folded:
        return Intent(IntentKind.UNKNOWN)
    if folded[0].startswith("?"):
        return Intent(IntentKind.HELP, keyword="?")
    head = _HEAD.match(folded[0])
    if head is None:
        return Intent(IntentKind.UNKNOWN)
    word, glued = head.groups()
    consumed = 1
    # "TU CHOI", "DAT LICH", "HO SO": a keyword may be two words.
    if not glued and len(folded) > 1:
        second = _letters(folded[1])
        if second and word + second in _ALIASES:
            word, consumed = word + second, 2
            glued = folded[1][len(second) :]
    rest_original, rest_folded = _arguments(originals, folded, consumed, glued)
    alias = _ALIASES.get(word)
    if alias is None:
        alias, word = _forgive(word, rest_folded)
        if alias is None:
            return Intent(IntentKind.UNKNOWN)
    return _with_arguments(alias, word, rest_original, rest_folded)


def _tokens(text: str) -> tuple[list[str], list[str]]:
    """Whitespace tokens as typed (cleaned) and folded to upper-case ASCII-ish, side by side."""
    originals: list[str] = []
    folded: list[str] = []
    for token in sms.clean(text).split():
        plain = sms.fold(token).upper()
        if not originals:
            # Quotes, dashes or bullets before the keyword are noise: "- DAT 2", "'LICH'".
            stripped = _LEADING_JUNK.sub("", plain)
            if not stripped:
                continue
            token = token[len(token) - len(stripped) :] if len(token) == len(plain) else stripped
            plain = stripped
        if plain:
            originals.append(token)
            folded.append(plain)
    return originals, folded


def _letters(token: str) -> str:
    match = _HEAD.match(token)
    return match.group(1) if match else ""


def _arguments(
    originals: list[str], folded: list[str], consumed: int, glued: str
) -> tuple[list[str], list[str]]:
    """The argument tokens, as typed and folded: what was glued to the keyword, then the rest.

    Separators are dropped from the front: "DAT: 2", "DAT - 2" and "DAT.2" all give ["2"].
    """
    rest_original = originals[consumed:]
    rest_folded = folded[consumed:]
    glued = _LEADING_SEPARATORS.sub("", glued)
    if glued:
        # Folding keeps one character for one (NFC), so the same tail of the original is taken.
        original = originals[consumed - 1]
        rest_original = [original[len(original) - len(glued) :], *rest_original]
        rest_folded = [glued, *rest_folded]
    while rest_folded and not _ALNUM.search(rest_folded[0]):
        rest_folded, rest_original = rest_folded[1:], rest_original[1:]
    return rest_original, rest_folded


def _forgive(word: str, rest: list[str]) -> tuple[_Alias | None, str]:
    """The alias one typo away from `word`, when guessing it is safe."""
    best: tuple[int, str] | None = None
    for alias, meaning in _ALIASES.items():
        if not meaning.fuzzy or len(alias) < _SHORT_FUZZY:
            continue
        distance = OSA.distance(word, alias, score_cutoff=1)
        if distance > 1 or not _plausible_slip(word, alias):
            continue
        if len(alias) < _LONG_FUZZY and not _has_argument(meaning.kind, rest):
            continue
        if best is None or (distance, -len(alias)) < (best[0], -len(best[1])):
            best = (distance, alias)
    if best is None:
        return None, word
    return _ALIASES[best[1]], best[1]


def _plausible_slip(typed: str, alias: str) -> bool:
    """A letter doubled, dropped or swapped, or one from the same key of a phone keypad.

    Multi-tap typing makes "LICG" for "LICH" (G and H share a key); "LINH", a common name,
    differs by a letter from another key, so it is not read as "LICH".
    """
    if len(typed) != len(alias):
        return True
    differing = [i for i, (a, b) in enumerate(zip(typed, alias, strict=True)) if a != b]
    if len(differing) != 1:
        return True  # identical, or two neighbours swapped
    index = differing[0]
    return _KEYPAD.get(typed[index], -1) == _KEYPAD.get(alias[index], -2)


def _has_argument(kind: IntentKind, rest: list[str]) -> bool:
    if not rest:
        return False
    if kind is IntentKind.BOOK:
        return _session_number(rest)[0] is not None
    return bool(_code(rest))


def _with_arguments(alias: _Alias, word: str, original: list[str], folded: list[str]) -> Intent:
    kind = alias.kind
    if kind is IntentKind.BOOK:
        number, used = _session_number(folded)
        topic = " ".join(original[used:]).strip(_TOPIC_EDGE)[:MAX_TOPIC] if used else ""
        return Intent(kind, word, number=number, topic=topic or None, language=alias.language)
    if kind is IntentKind.CANCEL:
        code = _code(folded)
        if code and code.isdigit() and len(code) <= 4:
            return Intent(kind, word, number=int(code), language=alias.language)
        return Intent(kind, word, code=code, language=alias.language)
    if kind is IntentKind.DOSSIER:
        return Intent(kind, word, code=_code(folded), language=alias.language)
    return Intent(kind, word, language=alias.language)


def _session_number(folded: list[str]) -> tuple[int | None, int]:
    """The session number at the start of the arguments and how many tokens it took."""
    skip = 0
    # "DAT SO 2", "DAT # 2": the word for "number" may come first.
    if len(folded) > 1 and folded[0].rstrip(".:") in _NUMBER_WORDS:
        skip = 1
    if not folded[skip:]:
        return None, 0
    match = _NUMBER.match(_LEADING_SEPARATORS.sub("", folded[skip]))
    # A long run of digits is a phone number or a code, not a session's short number.
    if match is None or len(match.group(1)) > _MAX_NUMBER_DIGITS:
        return None, 0
    return int(match.group(1)), skip + 1


def _code(folded: list[str]) -> str | None:
    if not folded:
        return None
    code = _CODE_EDGE.sub("", folded[0])[:MAX_CODE]
    return code or None
