"""Webhooks of SMS Gateway for Android (`POST /gateways/android/events`).

The app adds fields from version to version, so unknown ones are accepted and ignored. It
retries an event that is not answered 2xx and then drops it, so fields whose length we do
not control are cut (and marked so) rather than refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from notifier.schemas.openapi import DIGITS, Param
from notifier.text.textinput import InputLine, InputText, clipped

Id = Annotated[InputLine, StringConstraints(min_length=1, max_length=128)]
Phone = Annotated[InputLine, StringConstraints(min_length=1, max_length=64)]
# What is kept of the app's failure reason: with our "gateway sms:failed: " before it, it fits
# the 500 characters of a message's failure detail, mark included.
REASON_KEPT = 400

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
    """`sms:received`. `sender` is the number the SMS came from; older app versions sent it
    only as `phoneNumber`, which newer ones mark deprecated, so either is taken.

    `messageId` is a hash of the SMS (sender, its own time, SIM, text): one SMS keeps it
    whichever webhook it arrives through, with `receivedAt` the SMS's time.
    """

    model_config = ConfigDict(extra="allow")

    messageId: Annotated[InputLine, StringConstraints(max_length=128)] | None = None
    # Any length is taken: the inbound record keeps the start of a very long text.
    message: InputText
    sender: Phone
    simNumber: int | None = None
    receivedAt: Annotated[InputLine, StringConstraints(max_length=64)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _sender_from_phone_number(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("sender") is None and "phoneNumber" in data:
            return {**data, "sender": data["phoneNumber"]}
        return data


class SmsStatus(BaseModel):
    """`sms:sent`, `sms:delivered`, `sms:failed`: `messageId` is the id we sent the message with."""

    model_config = ConfigDict(extra="allow")

    messageId: Id
    phoneNumber: str | None = None
    reason: Annotated[InputLine, clipped(REASON_KEPT)] | None = None


class GatewayEventResult(BaseModel):
    """The webhook's answer (the app only needs the 2xx): what became of the event."""

    id: str
    event: str
    duplicate: bool | None = None  # sms:received: this SMS was handled before (retry, 2nd webhook)
    intent: str | None = None
    outcome: str | None = None
    reply_message_id: str | None = None
    message_id: str | None = None  # sms:sent/delivered/failed: our message, when known
    status: str | None = None
    ignored: bool | None = None  # an event this service does not use (ping, MMS...)
