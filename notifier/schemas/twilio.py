"""Twilio's webhooks (`POST /twilio/status`, `POST /twilio/inbound`): the form fields it posts
and the TwiML it is answered with, as JSON Schema (the forms are read field by field)."""

from __future__ import annotations

from typing import Any

from notifier.schemas.openapi import Param


def _form(required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """A form of string fields, the `required` ones first."""
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in (*required, *optional)},
        "required": list(required),
    }


STATUS_FORM = _form(("MessageSid", "MessageStatus"), ("ErrorCode", "AccountSid"))
INBOUND_FORM = _form(("MessageSid", "From"), ("To", "Body", "AccountSid"))
TWIML = {"type": "string", "description": "<Response><Message>…</Message></Response>"}

# Checked against PUBLIC_BASE_URL + path (+ query) with TWILIO_AUTH_TOKEN.
SIGNATURE_HEADER = Param("X-Twilio-Signature", "header", {"type": "string"})
