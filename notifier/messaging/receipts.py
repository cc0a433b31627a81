"""Delivery receipts applied to our status machine (forward only).

Each provider adapter reads its own receipts into a `Receipt`: the status and failure reason
in our words. This module knows no provider's codes: it finds the message and moves it.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.messaging import consent, statuses
from notifier.messaging.outbox import transition
from notifier.models import Message
from notifier.providers import Receipt

log = logging.getLogger(__name__)


def apply(session: Session, receipt: Receipt) -> Message | None:
    """Move the message `receipt` is about forward to its status; None if it is not ours."""
    message = _find(session, receipt)
    if message is None:
        log.info(
            "%s receipt for unknown message %s ignored",
            receipt.provider,
            receipt.provider_message_id,
        )
        return None
    reason = receipt.reason
    if receipt.status == statuses.FAILED:
        reason = reason or "undelivered"
    moved = transition(
        session,
        message,
        receipt.status,
        source=f"{receipt.provider}-receipt",
        reason=reason,
        detail=receipt.detail,
    )
    if moved and reason == "opted_out":
        consent.opt_out(session, message.phone, channel=receipt.provider)
    return message


def _find(session: Session, receipt: Receipt) -> Message | None:
    """The message, locked like the worker recording the send, so neither overwrites the other."""
    if receipt.by_our_id:
        message = session.get(Message, receipt.provider_message_id, with_for_update=True)
        if message is not None and message.provider in (None, receipt.provider):
            return message
    return session.scalar(
        select(Message)
        .where(
            Message.provider == receipt.provider,
            Message.provider_message_id == receipt.provider_message_id,
        )
        .with_for_update()
    )
