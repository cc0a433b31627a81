"""Delivery receipts from providers, mapped onto our status machine (forward only)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import consent, statuses
from notifier.messages import transition
from notifier.models import Message

log = logging.getLogger(__name__)

# Twilio MessageStatus → ours. queued/accepted/sending at Twilio all mean "the provider has it".
TWILIO_STATUSES = {
    "accepted": statuses.SENT,
    "scheduled": statuses.SENT,
    "queued": statuses.SENT,
    "sending": statuses.SENT,
    "sent": statuses.SENT,
    "delivered": statuses.DELIVERED,
    "read": statuses.DELIVERED,
    "undelivered": statuses.FAILED,
    "failed": statuses.FAILED,
    "canceled": statuses.FAILED,
}
# Carrier-side error codes of undelivered messages (Twilio 30xxx) → our reasons.
TWILIO_DELIVERY_ERRORS = {
    "30003": "unreachable",
    "30004": "blocked",
    "30005": "invalid_number",
    "30006": "landline",
    "30007": "carrier_rejected",
    "30008": "undelivered",
    "21610": "opted_out",
}


def apply_provider_status(
    session: Session,
    provider: str,
    provider_message_id: str,
    status: str,
    *,
    reason: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> Message | None:
    """Move the message the provider knows as `provider_message_id` forward to `status`."""
    message = session.scalar(
        select(Message).where(
            Message.provider == provider, Message.provider_message_id == provider_message_id
        )
    )
    if message is None:
        log.info("%s receipt for unknown message %s ignored", provider, provider_message_id)
        return None
    if status == statuses.FAILED:
        reason = reason or "undelivered"
    moved = transition(
        session, message, status, source=f"{provider}-receipt", reason=reason, detail=detail, now=at
    )
    if moved and reason == "opted_out":
        consent.opt_out(session, message.phone, channel=provider)
    return message


def apply_twilio_status(
    session: Session, sid: str, twilio_status: str, error_code: str | None
) -> Message | None:
    status = TWILIO_STATUSES.get(twilio_status.lower())
    if status is None:
        log.info("twilio status %r for %s ignored", twilio_status, sid)
        return None
    reason = TWILIO_DELIVERY_ERRORS.get(error_code or "", "undelivered") if error_code else None
    detail = f"Twilio {twilio_status}" + (f", error {error_code}" if error_code else "")
    return apply_provider_status(session, "twilio", sid, status, reason=reason, detail=detail)


# SMS Gateway for Android webhook events → ours.
ANDROID_EVENTS = {
    "sms:sent": statuses.SENT,
    "sms:delivered": statuses.DELIVERED,
    "sms:failed": statuses.FAILED,
}


def apply_android_status(
    session: Session, event: str, message_id: str, reason: str | None = None
) -> Message | None:
    """Apply an `sms:sent` / `sms:delivered` / `sms:failed` event of SMS Gateway for Android.

    A repeated event (the app retries deliveries) finds the status already reached and changes
    nothing, since statuses only move forward.
    """
    status = ANDROID_EVENTS[event]
    detail = f"gateway {event}" + (f": {reason}" if reason else "")
    return apply_provider_status(
        session, "android_gateway", message_id, status, detail=detail[:500]
    )
