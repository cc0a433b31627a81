"""Notices staff send by hand: composing, previewing, reading CSV files, creating the messages.

No Flask here. A notice is a template (or a body typed by staff with ``{{ name }}``
placeholders) plus personalisation, sent to one phone, to everyone booked on a reception
session, or to the rows of a CSV file. Every row is checked before anything is created, by the
row pipeline the API's bulk sends share (`notices.rows`), reported in Vietnamese and English.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import reception
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.messaging import outbox, statuses
from notifier.models import Message
from notifier.notices import rows
from notifier.text import sms, templating

NOTICE_KIND = "notice"
# What a notice to a session's bookers may use, besides the office's details.
SESSION_FIELDS = ("name", "code", "session_number", "date", "weekday", "time", "location", "host")
PHONE_COLUMNS = frozenset({"phone", "so_dien_thoai", "sdt", "dien_thoai", "mobile", "phone_number"})


class NoticeError(ValueError):
    """A notice cannot be composed; ``vi`` is the same in Vietnamese for the console."""

    def __init__(self, message: str, vi: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.vi = vi or message
        self.field = field


@dataclass(frozen=True)
class Content(rows.Content):
    """What to send: a template name or a body typed by staff, in a language."""

    def __post_init__(self) -> None:
        if bool(self.template) == bool(self.body and self.body.strip()):
            raise NoticeError(
                "Give either a template or a body, not both and not neither.",
                "Chọn một mẫu tin hoặc nhập nội dung (chỉ một trong hai).",
                field="template",
            )

    def variables(self) -> list[str]:
        """The personalisation the content needs (the office's details are filled in)."""
        if self.template:
            try:
                names = templating.required_variables(self.template, self.language)
            except templating.UnknownTemplate:
                return []
        else:
            names = set(templating.placeholders(self.body or ""))
        return sorted(names - set(outbox.office_personalisation(Settings())))


# --- preview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A text as staff typed it and as a basic phone would receive it, with its cost."""

    text: str
    body: str
    folded: str
    policy: str
    analysis: sms.SmsAnalysis
    parts: list[str]
    cost_vnd: int
    within_limit: bool
    limit_error: str | None
    limit_error_vi: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "body": self.body,
            "folded": self.folded,
            "policy": self.policy,
            **self.analysis.to_dict(),
            "parts": self.parts,
            "cost_vnd": self.cost_vnd,
            "within_limit": self.within_limit,
            "limit_error": self.limit_error,
            "limit_error_vi": self.limit_error_vi,
        }


def preview(settings: Settings, content: Content, personalisation: Mapping[str, Any]) -> Preview:
    """Render and measure; a text over the limit is still previewed, with the reason."""
    text = rows.compose(settings, content, personalisation)
    body = sms.apply_policy(text, settings.SMS_DIACRITICS)
    error: sms.MessageTooLong | None = None
    try:
        analysis = sms.check_limit(
            body, max_segments=settings.SMS_MAX_SEGMENTS, max_chars=settings.SMS_MAX_CHARACTERS
        )
    except sms.MessageTooLong as exc:
        analysis, error = exc.analysis, exc
    return Preview(
        text=sms.clean(text),
        body=body,
        folded=sms.fold(text),
        policy=settings.SMS_DIACRITICS,
        analysis=analysis,
        parts=sms.split(body),
        cost_vnd=analysis.segments * settings.SMS_COST_PER_SEGMENT_VND,
        within_limit=error is None,
        limit_error=str(error) if error else None,
        limit_error_vi=error.vi if error else None,
    )


# --- recipients and rows ----------------------------------------------------------------------

Validation = rows.Checked[rows.ReportLine]


def _row(number: int, raw_phone: str, personalisation: Mapping[str, Any], **links: Any) -> rows.Row:
    # An empty cell is a missing value, not an empty string in the middle of a sentence.
    values = {key: value for key, value in personalisation.items() if str(value).strip()}
    return rows.Row(number, raw_phone, values, links=links)


def check_recipient(
    settings: Settings,
    content: Content,
    raw_phone: str,
    personalisation: Mapping[str, str],
    line: int = 0,
) -> tuple[rows.Recipient | None, list[rows.ReportLine]]:
    """Validate one recipient: a phone that can receive SMS and a text within the limit."""
    checked = rows.check(
        settings, content, [_row(line, raw_phone, personalisation)], rows.console_report
    )
    return (checked.valid[0] if checked.valid else None), checked.errors


def header_key(name: str) -> str:
    """A CSV column title as a placeholder name: ``Họ tên`` -> ``ho_ten``."""
    folded = sms.fold(name).lower()
    ascii_only = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_only).strip("_")


def read_csv(data: bytes, max_rows: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Decode a CSV upload: (column keys, [(line number, cells)]). Raises NoticeError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NoticeError(
            "The file is not UTF-8 text: save it as 'CSV UTF-8'.",
            "Tệp không phải văn bản UTF-8: hãy lưu dưới dạng 'CSV UTF-8'.",
            field="file",
        ) from None
    if not text.strip():
        raise NoticeError("The file is empty.", "Tệp trống.", field="file")
    # Spreadsheets in Vietnamese locales often save with ";": the header line tells.
    first_line = text.lstrip().split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
        lines: list[tuple[int, list[str]]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(lines) >= max_rows:
                raise NoticeError(
                    f"The file has more than {max_rows} rows.",
                    f"Tệp có hơn {max_rows} dòng.",
                    field="file",
                )
            lines.append((reader.line_num, cells))
    except csv.Error as exc:
        raise NoticeError(
            f"The file is not valid CSV: {exc}", f"Tệp CSV không hợp lệ: {exc}", field="file"
        ) from None
    keys = [header_key(name) for name in header]
    phone_columns = [i for i, key in enumerate(keys) if key in PHONE_COLUMNS]
    if len(phone_columns) != 1:
        raise NoticeError(
            "The first row must name exactly one phone column (phone or so_dien_thoai).",
            "Dòng đầu phải có đúng một cột số điện thoại (phone hoặc so_dien_thoai).",
            field="file",
        )
    duplicates = sorted({key for key in keys if keys.count(key) > 1 and key})
    if duplicates:
        raise NoticeError(
            f"Columns appear twice: {', '.join(duplicates)}",
            f"Cột bị trùng: {', '.join(duplicates)}",
            field="file",
        )
    keys[phone_columns[0]] = "phone"
    return keys, lines


def validate_csv(settings: Settings, content: Content, data: bytes) -> Validation:
    """Check every row of a CSV upload, repeated phones included; nothing is created here.

    Raises NoticeError for the file as a whole.
    """
    keys, lines = read_csv(data, settings.NOTICE_CSV_MAX_ROWS)
    return rows.check(
        settings, content, _csv_rows(keys, lines), rows.console_report, unique="phone"
    )


def _csv_rows(
    keys: Sequence[str], lines: Iterable[tuple[int, Sequence[str]]]
) -> Iterator[rows.Row]:
    """Rows of cells under column ``keys`` (one of them ``phone``)."""
    for line, cells in lines:
        if len(cells) != len(keys):
            yield rows.Row(line, "", refused=rows.WrongCells(len(cells), len(keys)))
            continue
        values = {key: cell.strip() for key, cell in zip(keys, cells, strict=True) if key}
        raw_phone = values.pop("phone", "")
        yield _row(line, raw_phone, values)


def session_recipients(
    session: Session, settings: Settings, content: Content, session_id: int
) -> Validation:
    """Everyone still booked on a reception session, with their booking details to fill in."""
    try:
        row = reception.get_session(session, session_id)
        booked = reception.session_bookings(session, session_id, states=(reception.BOOKED,))
    except reception.ReceptionError:
        raise NoticeError(
            "Unknown reception session.", "Không có buổi tiếp này.", "session_id"
        ) from None
    given = []
    for index, booking in enumerate(booked, start=1):
        fields = reception.booking_fields(settings, booking, row, content.language)
        values = {
            **{key: str(value) for key, value in fields.items()},
            "name": booking.name or "",
            "code": booking.code,
            "session_number": str(row.number),
        }
        given.append(_row(index, booking.phone, values, booking_id=booking.id))
    return rows.check(settings, content, given, rows.console_report)


# --- creating ---------------------------------------------------------------------------------


def create(
    session: Session,
    settings: Settings,
    content: Content,
    recipients: Iterable[rows.Recipient],
    *,
    urgent: bool,
    essential: bool,
    staff_user_id: int | None = None,
    batch_id: str | None = None,
    now: datetime | None = None,
) -> list[Message]:
    """Add one message per recipient. The caller commits, then enqueues (delivery.enqueue_committed).

    A bulk notice (``essential=False``) respects opt-outs and, unless urgent, quiet hours.
    """
    now = now or utcnow()
    recipients = list(recipients)
    opted_out = (
        set() if essential else outbox.opted_out_among(session, {r.phone for r in recipients})
    )
    made = [
        outbox.new_message(
            session,
            settings,
            phone=recipient.phone,
            prepared=recipient.prepared,
            urgent=urgent,
            essential=essential,
            kind=NOTICE_KIND,
            template=content.template,
            personalisation=recipient.personalisation or None,
            language=content.language,
            now=now,
            staff_user_id=staff_user_id,
            batch_id=batch_id,
            opted_out=recipient.phone in opted_out,
            **recipient.links,
        )
        for recipient in recipients
    ]
    # Written with two multi-row INSERTs: 10,000 rows through the ORM's unit of work took the
    # console's request five seconds.
    outbox.insert_new(session, made)
    return made


def batch_exists(session: Session, batch_id: str) -> bool:
    return (
        session.scalar(select(Message.id).where(Message.batch_id == batch_id).limit(1)) is not None
    )


RESENDABLE = frozenset({statuses.FAILED})


def resend(
    session: Session,
    settings: Settings,
    message_id: str,
    *,
    staff_user_id: int | None = None,
    now: datetime | None = None,
) -> Message:
    """A new message with the same text to the same phone as a failed one. Raises NoticeError."""
    original = session.get(Message, message_id)
    if original is None:
        raise NoticeError("Unknown message.", "Không có tin nhắn này.")
    if original.status not in RESENDABLE:
        raise NoticeError(
            f"Only failed messages can be sent again (this one is {original.status}).",
            f"Chỉ gửi lại được tin nhắn bị lỗi (tin này đang ở trạng thái {original.status}).",
        )
    try:
        if original.body:
            prepared = outbox.prepare(settings, original.body)
        elif original.template:
            text = outbox.render_text(
                settings, original.template, original.personalisation or {}, original.language
            )
            prepared = outbox.prepare(settings, text)
        else:
            raise NoticeError(
                "The text of this message was already deleted.",
                "Nội dung tin nhắn này đã bị xoá theo thời hạn lưu trữ.",
            )
    except (templating.TemplateError, sms.MessageTooLong) as exc:
        raise NoticeError(str(exc), getattr(exc, "vi", str(exc))) from None
    return outbox.create_message(
        session,
        settings,
        phone=original.phone,
        prepared=prepared,
        urgent=original.priority == "urgent",
        essential=original.essential,
        kind=original.kind,
        template=original.template,
        personalisation=original.personalisation,
        language=original.language,
        now=now,
        dossier_id=original.dossier_id,
        booking_id=original.booking_id,
        staff_user_id=staff_user_id,
        reference=None,
    )
