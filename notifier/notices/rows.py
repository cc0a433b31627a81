"""One pipeline for rows of recipients: the console's notices (a CSV file, a session's bookers,
one phone) and the API's bulk sends.

Every row is checked the same way (`check`): a phone that can receive SMS, a text that renders
and fits the length limit (`make_sms`), and, when asked, no repeat of an earlier kept row's
phone or reference. What is wrong is kept as typed problems, and each problem words itself for
both audiences: `api()` gives the API's JSON error members (`schemas.notifications.RowError`),
`report()` the console's report line in Vietnamese and English. A caller picks one of the two
reports (`api_errors`, `console_report`). No Flask here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import jinja2

from notifier.core.config import Settings
from notifier.messaging import outbox
from notifier.text import phones, sms, templating

Unique = Literal["phone", "reference"]


@dataclass(frozen=True)
class Content:
    """What every row's SMS is made from: a template, or a body, in a language.

    A body staff type has ``{{ name }}`` placeholders filled from each row (`fill_body`); the
    API sends its `body` as it is.
    """

    template: str | None = None
    body: str | None = None
    language: str = templating.DEFAULT_LANGUAGE
    fill_body: bool = True

    @property
    def source(self) -> str:
        """The request field the text comes from."""
        return "template" if self.template else "body"

    @property
    def fixed(self) -> bool:
        """The same text for every row."""
        return not self.template and not self.fill_body


# --- what can be wrong with a row ---------------------------------------------------------------

Wording = tuple[str, str, str]  # (field, English, Vietnamese)


class Problem(ABC):
    """Why a row cannot be sent, worded for the API and for the console."""

    @abstractmethod
    def api(self) -> list[dict[str, Any]]:
        """Members of the API's JSON errors: `field`, `message`, sometimes more."""

    @abstractmethod
    def report(self) -> list[Wording]:
        """The console report's lines."""


@dataclass(frozen=True)
class BadPhone(Problem):
    error: phones.InvalidPhoneNumber

    def api(self) -> list[dict[str, Any]]:
        return [{"field": "phone", "message": str(self.error), "reason": self.error.reason}]

    def report(self) -> list[Wording]:
        return [("phone", str(self.error), self.error.vi)]


@dataclass(frozen=True)
class MissingValues(Problem):
    template: str  # the template's name, or "body"
    names: tuple[str, ...]

    def api(self) -> list[dict[str, Any]]:
        return [
            {
                "field": f"personalisation.{name}",
                "message": f"Template {self.template!r} needs {name!r}.",
            }
            for name in self.names
        ]

    def report(self) -> list[Wording]:
        names = ", ".join(self.names)
        return [(self.names[0], f"Missing value for {names}", f"Thiếu giá trị cho {names}")]


@dataclass(frozen=True)
class TemplateFault(Problem):
    """A template that cannot be used; the console shows the template engine's own words."""

    error: Exception

    def report(self) -> list[Wording]:
        return [("template", str(self.error), str(self.error))]


@dataclass(frozen=True)
class NoSuchTemplate(TemplateFault):
    error: templating.UnknownTemplate

    def api(self) -> list[dict[str, Any]]:
        known = ", ".join(templating.template_names())
        message = f"Unknown template {self.error.name!r}. Known: {known}."
        return [{"field": "template", "message": message}]


@dataclass(frozen=True)
class CannotRender(TemplateFault):
    """A text that is not a valid template, or a value a template cannot use."""

    template: str | None

    def api(self) -> list[dict[str, Any]]:
        message = f"Cannot render {self.template!r}: {self.error}"
        return [{"field": "personalisation", "message": message}]


@dataclass(frozen=True)
class TooLong(Problem):
    source: str
    error: sms.MessageTooLong

    def api(self) -> list[dict[str, Any]]:
        error = self.error
        return [
            {
                "field": self.source,
                "message": str(error),
                "reason": "message_too_long",
                "segments": error.segments,
                "limit": error.limit,
                "characters": error.characters,
                "max_characters": error.max_chars,
            }
        ]

    def report(self) -> list[Wording]:
        return [("body", str(self.error), self.error.vi)]


@dataclass(frozen=True)
class EmptyText(Problem):
    source: str

    def api(self) -> list[dict[str, Any]]:
        return [{"field": self.source, "message": "The message is empty."}]

    def report(self) -> list[Wording]:
        return [(self.source, "The message is empty.", "Tin nhắn trống.")]


@dataclass(frozen=True)
class Repeated(Problem):
    """The same phone or reference as an earlier row that is kept."""

    key: Unique
    first: int

    def api(self) -> list[dict[str, Any]]:
        return [{"field": self.key, "message": f"Same {self.key} as row {self.first}."}]

    def report(self) -> list[Wording]:
        if self.key == "phone":
            en, vi = "Same phone number as line", "Trùng số điện thoại với dòng"
        else:
            en, vi = "Same reference as line", "Trùng mã tham chiếu với dòng"
        return [(self.key, f"{en} {self.first}", f"{vi} {self.first}")]


@dataclass(frozen=True)
class WrongCells(Problem):
    """A CSV line whose number of cells is not the header's."""

    cells: int
    columns: int

    def api(self) -> list[dict[str, Any]]:
        return [{"field": "row", "message": self.report()[0][1]}]

    def report(self) -> list[Wording]:
        return [
            (
                "row",
                f"{self.cells} cells, the header has {self.columns}",
                f"Có {self.cells} ô, dòng tiêu đề có {self.columns} cột",
            )
        ]


class Unsendable(ValueError):
    """A phone or a text that cannot be sent; `problem` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__("; ".join(message for _, message, _ in problem.report()))
        self.problem = problem


# --- one phone, one text ----------------------------------------------------------------------


def check_phone(settings: Settings, raw: str) -> str:
    """E.164 of a number that can receive SMS. Raises Unsendable (BadPhone)."""
    try:
        return phones.normalize(raw, allow_international=settings.ALLOW_INTERNATIONAL_SMS)
    except phones.InvalidPhoneNumber as exc:
        raise Unsendable(BadPhone(exc)) from None


def compose(settings: Settings, content: Content, personalisation: Mapping[str, Any]) -> str:
    """The text before the diacritics policy. Raises `templating.TemplateError`, or what a
    template filter raises for a value it cannot use (ValueError, TypeError)."""
    if content.template:
        return outbox.render_text(settings, content.template, personalisation, content.language)
    if not content.fill_body:
        return content.body or ""
    values = {**outbox.office_personalisation(settings), **personalisation}
    return templating.render_string(content.body or "", values)


def make_sms(
    settings: Settings, content: Content, personalisation: Mapping[str, Any]
) -> sms.PreparedSms:
    """The SMS as it will be sent. Raises Unsendable naming what to fix."""
    try:
        text = compose(settings, content, personalisation)
    except templating.MissingPersonalisation as exc:
        raise Unsendable(MissingValues(exc.template, tuple(exc.missing))) from None
    except templating.UnknownTemplate as exc:
        raise Unsendable(NoSuchTemplate(exc)) from None
    except (ValueError, TypeError, jinja2.TemplateError) as exc:
        # A value the template cannot use, e.g. a date filter given "next week".
        raise Unsendable(CannotRender(exc, content.template)) from None
    try:
        prepared = outbox.prepare(settings, text)
    except sms.MessageTooLong as exc:
        raise Unsendable(TooLong(content.source, exc)) from None
    if not prepared.body:
        raise Unsendable(EmptyText(content.source))
    return prepared


def check_content(settings: Settings, content: Content) -> None:
    """Raise Unsendable when the content is wrong whatever the row: a template that does not
    exist, or a fixed text that cannot be sent."""
    if content.template:
        try:
            templating.required_variables(content.template, content.language)
        except templating.UnknownTemplate as exc:
            raise Unsendable(NoSuchTemplate(exc)) from None
    elif content.fixed:
        make_sms(settings, content, {})


# --- the rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One recipient as given. `number` is 1 for the first row, or a CSV file's line number."""

    number: int
    phone: str
    personalisation: dict[str, Any] | None = None
    reference: str | None = None
    links: dict[str, Any] = field(default_factory=dict)  # e.g. the booking a notice is about
    refused: Problem | None = None  # known before any check, e.g. a CSV line's missing cells


@dataclass(frozen=True)
class Recipient:
    """A row that can be sent: its phone in E.164, its SMS ready."""

    row: int
    phone: str
    personalisation: dict[str, Any] | None
    prepared: sms.PreparedSms
    reference: str | None = None
    links: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """What a stored batch keeps of the row until its message exists."""
        return {
            name: getattr(self, name) for name in ("row", "phone", "personalisation", "reference")
        }


@dataclass(frozen=True)
class Refused:
    """A row that cannot be sent. `phone` is in E.164 when it was valid, else as typed."""

    row: Row
    phone: str
    problems: list[Problem]


Error = TypeVar("Error")
Report = Callable[[Refused], Iterable[Error]]


@dataclass
class Checked(Generic[Error]):
    """Every row checked: the ones to send and, for the others, the report's errors."""

    total: int = 0
    valid: list[Recipient] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)

    @property
    def segments(self) -> int:
        return sum(recipient.prepared.analysis.segments for recipient in self.valid)


def check(
    settings: Settings,
    content: Content,
    rows: Iterable[Row],
    report: Report[Error],
    *,
    unique: Unique | None = None,
) -> Checked[Error]:
    """Check every row; a row whose `unique` (phone or reference) repeats that of an earlier
    kept row is refused too. Nothing is created here."""
    checked: Checked[Error] = Checked()
    seen: dict[str, int] = {}
    text = _text_maker(settings, content)
    for row in rows:
        checked.total += 1
        problems, phone, prepared = _check_row(settings, row, text)
        key = phone if unique == "phone" else row.reference if unique == "reference" else None
        if unique is not None and key and key in seen:
            problems.append(Repeated(unique, seen[key]))
        if problems or prepared is None:
            checked.errors.extend(report(Refused(row, phone or row.phone.strip(), problems)))
            continue
        if key:
            seen[key] = row.number
        checked.valid.append(
            Recipient(row.number, phone, row.personalisation, prepared, row.reference, row.links)
        )
    return checked


TextMaker = Callable[[Mapping[str, Any]], sms.PreparedSms]


def _text_maker(settings: Settings, content: Content) -> TextMaker:
    """`make_sms` for this content; a fixed text is made once, not once a row."""
    if not content.fixed:
        return lambda personalisation: make_sms(settings, content, personalisation)
    try:
        shared = make_sms(settings, content, {})
    except Unsendable as exc:
        problem = exc.problem

        def refuse(_: Mapping[str, Any]) -> sms.PreparedSms:
            raise Unsendable(problem)

        return refuse
    return lambda _: shared


def _check_row(
    settings: Settings, row: Row, text: TextMaker
) -> tuple[list[Problem], str, sms.PreparedSms | None]:
    if row.refused is not None:
        return [row.refused], "", None
    problems: list[Problem] = []
    phone = ""
    prepared = None
    try:
        phone = check_phone(settings, row.phone)
    except Unsendable as exc:
        problems.append(exc.problem)
    try:
        prepared = text(row.personalisation or {})
    except Unsendable as exc:
        problems.append(exc.problem)
    return problems, phone, prepared


# --- the two reports --------------------------------------------------------------------------


def api_errors(refused: Refused) -> list[dict[str, Any]]:
    """The API's errors of a refused row: one JSON object per bad field, with its row number."""
    return [
        {"row": refused.row.number, **error}
        for problem in refused.problems
        for error in problem.api()
    ]


@dataclass(frozen=True)
class ReportLine:
    """One line of the console's report on refused rows, in Vietnamese (`vi`) and English."""

    line: int
    field: str
    message: str
    vi: str
    phone: str = ""


def console_report(refused: Refused) -> list[ReportLine]:
    """The console's report of a refused row: one line per problem, with the phone shown."""
    return [
        ReportLine(refused.row.number, name, message, vi, refused.phone)
        for problem in refused.problems
        for name, message, vi in problem.report()
    ]
