"""Getting queued messages to the provider: enqueueing, sending once, retrying, sweeping.

The database is the source of truth. A message row is committed before its job is enqueued, a
job carries only the message id and sends only what it can claim, so a lost or repeated job never
loses or doubles an SMS. No database transaction is held open across a provider call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq import Queue
from rq.queue import EnqueueData
from sqlalchemy import select, update

from notifier import consent, statuses
from notifier.db import utcnow
from notifier.messages import claim_for_sending, defer_if_quiet, transition
from notifier.models import Message
from notifier.phones import mask
from notifier.providers import (
    OutboundSms,
    ProviderError,
    ReconcilableProvider,
    SendResult,
    SentRecord,
)
from notifier.quiet_hours import quiet_until
from notifier.runtime import Services

log = logging.getLogger(__name__)

SEND_JOB = "jobs.send.send_message"


@dataclass(frozen=True)
class Queued:
    """What enqueueing needs to know of a message (plain values, safe after the session closes)."""

    id: str
    priority: str
    attempts: int

    @classmethod
    def of(cls, message: Message) -> Queued:
        return cls(message.id, message.priority, message.attempts)

    @property
    def job_id(self) -> str:
        # One job id per attempt: a re-enqueued message never clobbers a job already in flight.
        return f"send-{self.id}-{self.attempts}"


def enqueue(services: Services, items: Sequence[Queued]) -> int:
    """Enqueue send jobs for messages already committed as `queued`. Returns how many went out.

    Redis being down is not an error here: the sweeper re-enqueues what is still queued.
    """
    if not items:
        return 0
    try:
        with services.redis.pipeline() as pipe:
            for priority in {item.priority for item in items}:
                services.queue(priority).enqueue_many(
                    [_job_data(item) for item in items if item.priority == priority],
                    pipeline=pipe,
                )
            pipe.execute()
    except RedisError as exc:
        log.warning("queue unavailable, %d message(s) wait for the sweeper: %s", len(items), exc)
        return 0
    return len(items)


def enqueue_committed(services: Services, messages: Iterable[Message]) -> int:
    """Enqueue the queued ones among freshly committed messages."""
    return enqueue(services, [Queued.of(m) for m in messages if m.status == statuses.QUEUED])


def _job_data(item: Queued) -> EnqueueData:
    return Queue.prepare_data(
        SEND_JOB,
        args=(item.id,),
        job_id=item.job_id,
        result_ttl=600,
        failure_ttl=7 * 86400,
        description=f"send message {item.id}",
    )


def send_message(services: Services, message_id: str) -> str:
    """Send one message if it is still queued. Returns the message's status afterwards."""
    with services.db.transaction() as session:
        if defer_if_quiet(session, services.settings, message_id):
            return statuses.DEFERRED
        message = claim_for_sending(session, message_id)
        if message is None:
            current = session.get(Message, message_id)
            return current.status if current else "missing"
        outbound = OutboundSms(message.id, message.phone, message.body or "", message.segments)
        attempt = message.attempts
        # A message may be bound to a provider when created (a reply goes back through the
        # channel it came in on); otherwise the configured one sends it.
        provider_name = message.provider

    provider = services.provider(provider_name)
    try:
        result = provider.send(outbound)
    except ProviderError as exc:
        if exc.ambiguous:
            # It may have been accepted: never resend blindly. The message stays `sending` and
            # the sweep settles it against the provider's own record (`reconcile_stuck`).
            log.warning("message %s outcome unknown via %s: %s", message_id, provider.name, exc)
            return statuses.SENDING
        return _record_failure(services, message_id, provider.name, attempt, exc)
    return _record_sent(services, message_id, provider.name, result)


def _record_sent(services: Services, message_id: str, provider: str, result: SendResult) -> str:
    # The row is locked: a delivery receipt may be arriving for it at this very moment.
    with services.db.transaction() as session:
        message = session.get_one(Message, message_id, with_for_update=True)
        message.provider = provider
        message.provider_message_id = result.provider_message_id
        transition(session, message, statuses.SENT, source=provider)
        if result.status == statuses.DELIVERED:
            transition(session, message, statuses.DELIVERED, source=provider)
        log.info(
            "message %s %s via %s to %s", message_id, message.status, provider, mask(message.phone)
        )
        return message.status


def _record_failure(
    services: Services, message_id: str, provider: str, attempt: int, exc: ProviderError
) -> str:
    settings = services.settings
    retry = exc.retryable and attempt < settings.SEND_MAX_ATTEMPTS
    now = utcnow()
    with services.db.transaction() as session:
        message = session.get_one(Message, message_id, with_for_update=True)
        message.provider = provider
        if retry:
            delay = retry_delay(attempt, settings.SEND_RETRY_BASE_SECONDS, exc.retry_after)
            message.next_attempt_at = now + delay
            transition(
                session, message, statuses.QUEUED, source=provider, detail=exc.detail or exc.reason
            )
        else:
            reason = "provider_unavailable" if exc.retryable else exc.reason
            transition(
                session, message, statuses.FAILED, source=provider, reason=reason, detail=exc.detail
            )
            if exc.reason == "opted_out":
                consent.opt_out(session, message.phone, channel=provider, now=now)
        queued = Queued.of(message)
        status = message.status
    log.warning(
        "message %s attempt %d via %s failed (%s): %s",
        message_id,
        attempt,
        provider,
        "retry" if retry else "final",
        exc,
    )
    if retry:
        schedule_retry(services, queued, delay)
    return status


def retry_delay(attempt: int, base_seconds: float, retry_after: float | None = None) -> timedelta:
    """Exponential backoff (base, 3×base, 9×base…), never sooner than the provider asked."""
    seconds = base_seconds * (3 ** (attempt - 1))
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=min(seconds, 3600))


def schedule_retry(services: Services, item: Queued, delay: timedelta) -> None:
    if delay <= timedelta(0):
        enqueue(services, [item])
        return
    try:
        services.queue(item.priority).enqueue_in(
            delay, SEND_JOB, item.id, job_id=item.job_id, result_ttl=600, failure_ttl=7 * 86400
        )
    except RedisError as exc:
        log.warning("could not schedule retry of %s, the sweeper will: %s", item.id, exc)


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
    lost = _without_live_jobs(services, stale)
    requeued = enqueue(services, lost)
    if released or requeued:
        log.info("sweep: %d released from quiet hours, %d re-enqueued", released, requeued)
    return SweepResult(released, requeued, adopted, retried)


# A provider's clock and ours may differ a little; a record this much older than the claim
# may still be the message.
CLOCK_SKEW = timedelta(minutes=2)


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


def _release_deferred(services: Services, now: datetime, limit: int) -> int:
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


def _without_live_jobs(services: Services, items: Sequence[Queued]) -> list[Queued]:
    live = services.live_jobs([item.job_id for item in items])
    if live is None:
        return []
    return [item for item in items if item.job_id not in live]
