"""Webhooks of SMS Gateway for Android (`POST /gateways/android/events`).

The app adds fields from version to version, so unknown ones are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from notifier.schemas.openapi import DIGITS, Param
from notifier.text.textinput import InputLine, InputText

Id = Annotated[InputLine, StringConstraints(min_length=1, max_length=128)]

# How the app signs its webhooks (`core.signing.ANDROID_GATEWAY`).
SIGNATURE_HEADERS = (
    Param(
        "X-Timestamp",
        "header",
        DIGITS,
        description="Unix time in seconds; refused if more than 300 s from the server clock.",
    ),
    Param(
        "X-Signature",
        "header",
        {"type": "string"},
        description="hex HMAC-SHA256(key, raw body followed by the X-Timestamp string).",
    ),
)


class GatewayEvent(BaseModel):
    """The envelope of every event; `id` is unique per event and repeated on retries."""

    model_config = ConfigDict(extra="allow")

    id: Id
    event: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    deviceId: str | None = None
    webhookId: str | None = None
    payload: dict[str, Any]


class SmsReceived(BaseModel):
    """`sms:received`: `messageId` is derived from the content, so it is not unique."""

    model_config = ConfigDict(extra="allow")

    messageId: str | None = None
    message: Annotated[InputText, StringConstraints(max_length=10_000)]
    phoneNumber: Annotated[InputLine, StringConstraints(min_length=1, max_length=64)]
    simNumber: int | None = None
    receivedAt: str | None = None


class SmsStatus(BaseModel):
    """`sms:sent`, `sms:delivered`, `sms:failed`: `messageId` is the id we sent the message with."""

    model_config = ConfigDict(extra="allow")

    messageId: Id
    phoneNumber: str | None = None
    reason: Annotated[InputLine, StringConstraints(max_length=500)] | None = None


class GatewayEventResult(BaseModel):
    """The webhook's answer (the app only needs the 2xx): what became of the event."""

    id: str
    event: str
    duplicate: bool | None = None  # sms:received: this event id was handled before
    intent: str | None = None
    outcome: str | None = None
    reply_message_id: str | None = None
    message_id: str | None = None  # sms:sent/delivered/failed: our message, when known
    status: str | None = None
    ignored: bool | None = None  # an event this service does not use (ping, MMS...)
