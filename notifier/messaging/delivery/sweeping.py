"""The scheduler's sweep: what no job will send by itself is found here and set going again.

Deferred messages whose quiet hours are over are released; messages stuck in `sending` (a worker
killed mid-send, or no answer) are settled against the provider's own record; queued messages
whose job was lost (Redis down at enqueue, a worker gone) are enqueued again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import statuses
from notifier.messaging.delivery.enqueueing import Queued, enqueue, without_live_jobs
from notifier.messaging.outbox import transition
from notifier.models import Message
from notifier.providers import ProviderError, ReconcilableProvider, SentRecord
from notifier.text.quiet_hours import quiet_until

log = logging.getLogger(__name__)

# A provider's clock and ours may differ a little; a record this much older than the claim
# may still be the message.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class SweepResult:
    released: int  # deferred messages whose quiet hours ended
    requeued: int  # queued messages whose job was lost
    adopted: int = 0  # stuck in `sending`, found at the provider: recorded as sent
    retried: int = 0  # stuck in `sending`, unknown to the provider: queued again


def sweep(services: Services, now: datetime | None = None, limit: int = 5000) -> SweepResult:
    """Release deferred messages that are due, settle messages stuck in `sending`, and
    re-enqueue queued ones whose job went missing."""
    now = now or utcnow()
    released = _release_deferred(services, now, limit)
    adopted, retried = reconcile_stuck(services, now)
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)
    with services.db.session() as session:
        rows = session.execute(
            select(Message.id, Message.priority, Message.attempts)
            .where(Message.status == statuses.QUEUED, Message.next_attempt_at <= now - grace)
            .order_by(Message.next_attempt_at)
            .limit(limit)
        ).all()
    stale = [Queued(*row) for row in rows]
    lost = without_live_jobs(services, stale, now)
    requeued = enqueue(services, lost)
    if released or requeued:
        log.info("sweep: %d released from quiet hours, %d re-enqueued", released, requeued)
    return SweepResult(released, requeued, adopted, retried)


def _release_deferred(services: Services, now: datetime, limit: int) -> int:
    """Queue the deferred messages that are due, unless `now` is itself in quiet hours."""
    settings = services.settings
    resume_at = quiet_until(now, settings.quiet_hours, settings.tz)
    if resume_at is not None:
        # Due, but the sweep runs inside the next window (it slept through the end of the last
        # one, or the clock jumped): they wait for this window to end too.
        with services.db.transaction() as session:
            session.execute(
                update(Message)
                .where(Message.status == statuses.DEFERRED, Message.next_attempt_at <= now)
                .values(next_attempt_at=resume_at)
                .execution_options(synchronize_session=False)
            )
        return 0
    with services.db.transaction() as session:
        messages = session.scalars(
            select(Message)
            .where(Message.status == statuses.DEFERRED, Message.next_attempt_at <= now)
            .order_by(Message.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in messages:
            message.next_attempt_at = now
            transition(session, message, statuses.QUEUED, source="scheduler", now=now)
        items = [Queued.of(m) for m in messages]
    enqueue(services, items)
    return len(items)


def reconcile_stuck(services: Services, now: datetime, limit: int = 500) -> tuple[int, int]:
    """Settle messages a worker claimed but never finished (killed mid-send, or no answer).

    The provider may have accepted such a message before the worker died, so it is looked up in
    the provider's own record first: found, it is recorded as sent (never sent twice); not
    found, it is queued again. Returns (adopted, queued again). `SENDING_STALE_SECONDS` must be
    well above the provider timeout, so a worker still waiting for an answer is left alone.
    """
    stale_before = now - timedelta(seconds=services.settings.SENDING_STALE_SECONDS)
    with services.db.session() as session:
        stuck = session.execute(
            select(Message.id, Message.phone, Message.body, Message.provider, Message.updated_at)
            .where(Message.status == statuses.SENDING, Message.updated_at <= stale_before)
            .order_by(Message.updated_at)
            .limit(limit)
        ).all()
    adopted = retried = 0
    for message_id, phone, body, provider_name, claimed_at in stuck:
        provider = services.provider(provider_name)
        found: SentRecord | None = None
        if isinstance(provider, ReconcilableProvider):
            try:
                records = provider.sent_to(phone, claimed_at - CLOCK_SKEW)
            except ProviderError as exc:
                log.warning("cannot reconcile %s with %s yet: %s", message_id, provider.name, exc)
                continue
            found = _unclaimed_match(services, provider.name, records, body or "")
        outcome = _settle_stuck(services, message_id, claimed_at, provider.name, found, now)
        adopted += outcome == statuses.SENT
        retried += outcome == statuses.QUEUED
    if adopted or retried:
        log.info("stuck sends: %d found at the provider, %d queued again", adopted, retried)
    return adopted, retried


def _unclaimed_match(
    services: Services, provider: str, records: Sequence[SentRecord], body: str
) -> SentRecord | None:
    """The provider's record of this text not already tied to another of our messages."""
    candidates = [r for r in records if r.body == body]
    if not candidates:
        return None
    with services.db.session() as session:
        known = set(
            session.scalars(
                select(Message.provider_message_id).where(
                    Message.provider == provider,
                    Message.provider_message_id.in_([r.provider_message_id for r in candidates]),
                )
            )
        )
    # Oldest first: of two identical texts, the earlier claim takes the earlier record.
    for record in reversed(candidates):
        if record.provider_message_id not in known:
            return record
    return None


def _settle_stuck(
    services: Services,
    message_id: str,
    claimed_at: datetime,
    provider: str,
    found: SentRecord | None,
    now: datetime,
) -> str | None:
    with services.db.transaction() as session:
        # Only the sweeper that moves the row first settles it (two schedulers, a late worker).
        taken = session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.status == statuses.SENDING,
                Message.updated_at == claimed_at,
            )
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        message = session.get_one(Message, message_id, populate_existing=True)
        if found is not None:
            message.provider = provider
            message.provider_message_id = found.provider_message_id
            transition(
                session,
                message,
                statuses.SENT,
                source="reconciled",
                detail="send cut short; the provider had accepted it",
                now=now,
            )
            return statuses.SENT
        if message.attempts >= services.settings.SEND_MAX_ATTEMPTS:
            transition(
                session,
                message,
                statuses.FAILED,
                source="reconciled",
                reason="provider_unavailable",
                detail="no answer from the provider after several attempts",
                now=now,
            )
            return statuses.FAILED
        message.next_attempt_at = now
        transition(
            session,
            message,
            statuses.QUEUED,
            source="reconciled",
            detail="send cut short; the provider has no record of it",
            now=now,
        )
        item = Queued.of(message)
    enqueue(services, [item])
    return statuses.QUEUED
