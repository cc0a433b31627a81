"""Webhooks of SMS Gateway for Android (`POST /gateways/android/events`).

The app adds fields from version to version, so unknown ones are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from notifier.db import storable

# Values reach database queries: cleaned of what no backend can hold (NUL, lone surrogates).
Stored = AfterValidator(storable)
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), Stored]


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
    message: Annotated[str, StringConstraints(max_length=10_000), Stored]
    phoneNumber: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), Stored
    ]
    simNumber: int | None = None
    receivedAt: str | None = None


class SmsStatus(BaseModel):
    """`sms:sent`, `sms:delivered`, `sms:failed`: `messageId` is the id we sent the message with."""

    model_config = ConfigDict(extra="allow")

    messageId: Id
    phoneNumber: str | None = None
    reason: Annotated[str, StringConstraints(max_length=500), Stored] | None = None
