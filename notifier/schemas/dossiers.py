"""The dossier webhook's contract (`POST /api/v1/dossier-events`): the event the one-stop-shop
system sends, its status vocabulary, and the answer it gets."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from notifier.models import Message
from notifier.schemas.base import forbid_extra, from_row
from notifier.schemas.notifications import Status
from notifier.schemas.openapi import DIGITS, Param
from notifier.text.textinput import InputLine, InputText

StatusKey = Literal[
    "registered",
    "received",
    "not_accepted",
    "processing",
    "supplement_requested",
    "fee_required",
    "withdrawn",
    "stopped",
    "ready",
    "returned",
    "rescheduled",
]

# DOMAIN.md status table: code → key.
STATUS_CODES: dict[int, StatusKey] = {
    1: "registered",
    2: "received",
    3: "not_accepted",
    4: "processing",
    5: "supplement_requested",
    6: "fee_required",
    7: "withdrawn",
    8: "stopped",
    9: "ready",
    10: "returned",
}
RESCHEDULED = "rescheduled"

# How the webhook is signed (`core.signing.NOTIFIER`); the delivery callbacks are signed alike.
SIGNATURE_HEADERS = (
    Param(
        "X-Notifier-Timestamp",
        "header",
        DIGITS,
        description="Unix time in seconds; refused if more than 300 s from the server clock.",
    ),
    Param(
        "X-Notifier-Signature",
        "header",
        {"type": "string"},
        description='"v1=" + hex HMAC-SHA256(secret, "<timestamp>.<raw body>").',
    ),
)

Text = Annotated[InputLine, StringConstraints(min_length=1)]


class DossierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, to_upper=True, pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-_/]{2,63}$"
        ),
    ]
    procedure: Annotated[Text, StringConstraints(max_length=300)]
    status: StatusKey | None = None
    status_code: Annotated[int, Field(ge=1, le=10)] | None = None
    due_date: date | None = None
    new_due_date: date | None = None
    note: Annotated[InputText, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _status_rules(self) -> DossierIn:
        if self.status is None and self.status_code is None:
            raise ValueError("either status or status_code is required")
        if self.status_code is not None:
            by_code = STATUS_CODES[self.status_code]
            if self.status is not None and self.status != by_code:
                raise ValueError(
                    f"status {self.status!r} contradicts status_code {self.status_code} ({by_code})"
                )
            self.status = by_code
        if self.status == RESCHEDULED and self.new_due_date is None:
            raise ValueError("new_due_date is required when status is 'rescheduled'")
        if self.status == "received" and self.due_date is None:
            raise ValueError("due_date is required when status is 'received'")
        return self

    @property
    def status_key(self) -> str:
        assert self.status is not None
        return self.status


class CitizenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[InputLine, StringConstraints(max_length=200)] | None = None
    # Checked for SMS later: an unusable number is recorded, not refused (CONTRACTS.md).
    phone: Annotated[Text, StringConstraints(max_length=64)]
    language: Literal["vi", "en"] = "vi"


# The documented example: a dossier received today, to be returned in two days.
EXAMPLE = {
    "event_id": "onestop-2025-07-14-000123",
    "occurred_at": "2025-07-14T08:30:00+07:00",
    "dossier": {
        "code": "000.00.31.H26-250714-0001",
        "procedure": "Chứng thực bản sao từ bản chính",
        "status": "received",
        "due_date": "2025-07-16",
    },
    "citizen": {"name": "Nguyễn Văn An", "phone": "0912 345 678", "language": "vi"},
}


class DossierEventIn(BaseModel):
    """The body of POST /api/v1/dossier-events."""

    model_config = forbid_extra(EXAMPLE)

    event_id: Annotated[Text, StringConstraints(max_length=200)]
    occurred_at: AwareDatetime
    dossier: DossierIn
    citizen: CitizenIn


class DossierMessageSummary(BaseModel):
    id: str
    status: Status
    template: str | None
    segments: int
    encoding: str
    failure_reason: str | None

    @classmethod
    def of(cls, message: Message) -> DossierMessageSummary:
        return from_row(cls, message)


class DossierEventAccepted(BaseModel):
    event_id: str
    duplicate: bool
    messages: list[DossierMessageSummary]
