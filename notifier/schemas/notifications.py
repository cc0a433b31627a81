"""The notifications API's contracts (`/api/v1/notifications…`): request bodies, the query
string, and responses of single sends, listings and bulk sends."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from notifier.models import Message
from notifier.schemas.base import forbid_extra, from_row
from notifier.text.textinput import InputLine, InputText

MAX_BULK_ROWS = 10_000

# --- request schemas ---------------------------------------------------------------------------

TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
# Text from outside is cleaned first (NFC, no control or invisible characters: textinput).
Reference = Annotated[InputLine, StringConstraints(min_length=1, max_length=200)]
Phone = Annotated[InputLine, StringConstraints(min_length=1, max_length=64)]
Body = Annotated[InputText, StringConstraints(min_length=1, max_length=5000)]
Value = Annotated[InputLine, StringConstraints(max_length=1000)] | int | float | bool | None
Personalisation = Annotated[
    dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], Value],
    Field(max_length=50, json_schema_extra={"additionalProperties": False}),
]
Language = Literal["vi", "en"]
Priority = Literal["urgent", "bulk"]
Status = Literal["queued", "deferred", "sending", "sent", "delivered", "failed", "rejected"]

# Exactly one of `template` and `body` (absent and null are the same); personalisation only
# with a template. The validators below enforce it; this says it in the JSON Schema.
_STRING = {"type": "string"}
_NULL = {"type": "null"}
_ONE_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"required": ["template"], "properties": {"template": _STRING, "body": _NULL}},
        {
            "required": ["body"],
            "properties": {"body": _STRING, "template": _NULL, "personalisation": _NULL},
        },
    ]
}
_ONE_BULK_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"required": ["template"], "properties": {"template": _STRING, "body": _NULL}},
        {"required": ["body"], "properties": {"body": _STRING, "template": _NULL}},
    ]
}


# The documented example of a single send.
EXAMPLE = {
    "phone": "0912 345 678",
    "template": "dossier_received",
    "personalisation": {
        "code": "000.00.31.H26-250714-0001",
        "procedure": "Chứng thực bản sao từ bản chính",
        "due_date": "2025-07-16",
    },
    "reference": "onestop-2025-07-14-000123",
}


def _content_rule(template: str | None, body: str | None, personalisation: Any) -> None:
    if template is None and body is None:
        raise ValueError("give either `template` (with `personalisation`) or `body`")
    if template is not None and body is not None:
        raise ValueError("give either `template` or `body`, not both")
    if body is not None and personalisation is not None:
        raise ValueError("`personalisation` goes with `template`, not with `body`")


class NotificationIn(BaseModel):
    """POST /api/v1/notifications: one SMS from a template or from free text."""

    model_config = forbid_extra(
        EXAMPLE,
        {"phone": "+84 912 345 678", "body": "Kính mời Ông/Bà đến nhận kết quả."},
        **_ONE_CONTENT,
    )

    phone: Phone = Field(
        description="The recipient; any common Vietnamese way of writing it.",
        examples=["0912 345 678", "+84 912 345 678"],
    )
    template: TemplateName | None = Field(None, description="A template name (templates_sms/).")
    personalisation: Personalisation | None = Field(None, description="The template's values.")
    body: Body | None = Field(None, description="Free text, instead of a template.")
    reference: Reference | None = Field(
        None, description="Your id for this message; sending it again returns the first message."
    )
    language: Language = "vi"
    priority: Priority = Field(
        "urgent", description="`bulk` messages wait for the end of quiet hours."
    )
    essential: bool = Field(
        True, description="Essential messages still reach numbers that opted out of the rest."
    )

    @model_validator(mode="after")
    def _one_content(self) -> NotificationIn:
        _content_rule(self.template, self.body, self.personalisation)
        return self


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    personalisation: Personalisation | None = None
    reference: Reference | None = None


class BulkIn(BaseModel):
    """POST /api/v1/notifications/bulk: one template or text, up to 10,000 recipients."""

    model_config = forbid_extra(
        {
            "body": "UBND xã thông báo: lịch tiếp công dân chuyển sang thứ Năm.",
            "reference": "broadcast-2025-07",
            "recipients": [{"phone": "0912 345 678"}, {"phone": "0987 654 321"}],
        },
        **_ONE_BULK_CONTENT,
    )

    template: TemplateName | None = None
    body: Body | None = None
    language: Language = "vi"
    reference: Reference | None = Field(
        None, description="Your id for this batch; sending it again returns the first batch."
    )
    priority: Priority = "bulk"
    essential: bool = False
    recipients: list[RecipientIn] = Field(min_length=1, max_length=MAX_BULK_ROWS)

    @model_validator(mode="after")
    def _one_content(self) -> BulkIn:
        _content_rule(self.template, self.body, None)
        return self


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: Any) -> Any:
    # pydantic also reads "1700000000" or "2025-07-14 08:30" as times; a query string must not.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time such as 2025-07-14T08:30:00+07:00")
    return value


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected a whole number written with digits only")
    return value


class NotificationQuery(BaseModel):
    """GET /api/v1/notifications query string (validate with `model_validate_strings`)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    reference: Reference | None = None
    since: Annotated[AwareDatetime, BeforeValidator(_rfc3339)] | None = Field(
        None, description="Only messages created at or after this time (ISO 8601 with offset)."
    )
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="`next_cursor` of the previous page."
    )
    limit: Annotated[int, BeforeValidator(_digits)] = Field(50, ge=1, le=250)


# --- response schemas --------------------------------------------------------------------------


class StatusChange(BaseModel):
    status: Status
    at: AwareDatetime


class NotificationCreated(BaseModel):
    """201 (or 200 for a repeated `reference`) of POST /api/v1/notifications."""

    id: str
    status: Status
    segments: int
    encoding: str
    body: str | None
    reference: str | None
    phone: str = Field(description="Masked: +84 91x xxx 678.")
    template: str | None
    language: str
    failure_reason: str | None
    created_at: AwareDatetime
    duplicate: bool = Field(description="True when `reference` matched an earlier message.")

    @classmethod
    def of(cls, message: Message, duplicate: bool = False) -> NotificationCreated:
        return from_row(cls, message, duplicate=duplicate)


class Notification(BaseModel):
    """GET /api/v1/notifications/{id}."""

    id: str
    phone: str = Field(description="Masked: +84 91x xxx 678.")
    status: Status
    status_history: list[StatusChange]
    provider: str | None
    provider_message_id: str | None
    segments: int
    encoding: str
    created_at: AwareDatetime
    sent_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    failure_reason: str | None
    failure_detail: str | None
    completed_at: AwareDatetime | None
    reference: str | None
    template: str | None
    language: str
    body: str | None
    batch_id: str | None

    @classmethod
    def of(cls, message: Message) -> Notification:
        history = [StatusChange(status=event.status, at=event.at) for event in message.history]
        return from_row(cls, message, status_history=history)


class NotificationPage(BaseModel):
    notifications: list[Notification]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class RowError(BaseModel):
    """What is wrong with one recipient; too-long texts also carry `segments` and `limit`."""

    model_config = ConfigDict(extra="allow")

    row: int = Field(description="1 for the first recipient.")
    field: str
    message: str
    reason: str | None = None


class BatchOut(BaseModel):
    """A bulk send: 202 of POST /api/v1/notifications/bulk, and GET of its progress."""

    id: str
    reference: str | None
    state: Literal["pending", "done"] = Field(description="`done` once every message exists.")
    total_rows: int
    valid_rows: int
    invalid_rows: int
    created: int = Field(description="Messages created so far.")
    statuses: dict[str, int] = Field(description="Messages created so far, by status.")
    errors: list[RowError]
    created_at: AwareDatetime
    completed_at: AwareDatetime | None
    duplicate: bool = False
