"""Delivery receipts from providers, mapped onto our status machine (forward only)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.messaging import consent, statuses
from notifier.messaging.outbox import transition
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
        select(Message)
        .where(Message.provider == provider, Message.provider_message_id == provider_message_id)
        # Locked, like the worker recording the send, so neither overwrites the other's status.
        .with_for_update()
    )
    return _move(session, message, provider, provider_message_id, status, reason, detail, at)


def _move(
    session: Session,
    message: Message | None,
    provider: str,
    provider_message_id: str,
    status: str,
    reason: str | None,
    detail: str | None,
    at: datetime | None,
) -> Message | None:
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


ANDROID_GATEWAY = "android_gateway"
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

    We send with our own message id as the gateway's, so an event finds its message by id even
    when the phone reports before the worker has recorded the send. A repeated event (the app
    retries deliveries) finds the status already reached and changes nothing.
    """
    status = ANDROID_EVENTS[event]
    detail = (f"gateway {event}" + (f": {reason}" if reason else ""))[:500]
    message = session.get(Message, message_id, with_for_update=True)
    if message is None or message.provider not in (None, ANDROID_GATEWAY):
        return apply_provider_status(session, ANDROID_GATEWAY, message_id, status, detail=detail)
    return _move(session, message, ANDROID_GATEWAY, message_id, status, None, detail, None)
