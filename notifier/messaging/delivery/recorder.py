"""Writing a batch's provider answers to the database, in a thread of its own.

The batch tells its recorder three things, each a typed note: `Answered` (provider answers to
write), `Skipped` (ids there was nothing to send for) and `Stop`. The recorder writes as many
answers per transaction as have piled up, so a slow commit never stalls sending: a plain
acceptance in one UPDATE for all, anything else (a failure, a retry, an at-once delivery) row by
row under a lock. Then it enqueues the retries and drops settled ids from the job index.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from typing import assert_never

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import consent, statuses
from notifier.messaging.delivery.enqueueing import Queued, enqueue, forget_jobs
from notifier.messaging.delivery.pool import Outcome
from notifier.messaging.failover import Failover
from notifier.messaging.outbox import record_sent_batch, transition
from notifier.models import Message
from notifier.providers import RateLimitedProviderError
from notifier.text.phones import mask

log = logging.getLogger(__name__)

NOTES_PER_ROUND = 64  # most notes taken from the inbox before writing
FORGET_EVERY = 500  # settled ids gathered before the job index is trimmed


@dataclass(frozen=True)
class Answered:
    """Provider answers to write."""

    outcomes: list[Outcome]


@dataclass(frozen=True)
class Skipped:
    """Ids that needed nothing (already sent, or gone): only their job-index entries go."""

    ids: list[str]


@dataclass(frozen=True)
class Stop:
    """Nothing more will come: write what is left, then end."""


Note = Answered | Skipped | Stop


@dataclass
class _Round:
    """What one round of notes adds up to."""

    outcomes: list[Outcome] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    stop: bool = False

    def take(self, note: Note) -> None:
        match note:
            case Answered(outcomes):
                self.outcomes += outcomes
            case Skipped(ids):
                self.settled += ids
            case Stop():
                self.stop = True
            case _:
                assert_never(note)


class Recorder(threading.Thread):
    """Writes a batch's outcomes to the database; `final` holds each written message's status."""

    def __init__(self, services: Services, failover: Failover) -> None:
        super().__init__(name="notifier-record", daemon=True)
        self.services = services
        self.failover = failover
        self.final: dict[str, str] = {}
        self.inbox: SimpleQueue[Note] = SimpleQueue()
        self.settled: list[str] = []
        self.error: BaseException | None = None

    def record(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            self.inbox.put(Answered(outcomes))

    def skip(self, ids: list[str]) -> None:
        if ids:
            self.inbox.put(Skipped(ids))

    def close(self) -> None:
        """Wait until everything told has been written; raise the first error met."""
        self.inbox.put(Stop())
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        stop = False
        while not stop:
            notes = _Round()
            notes.take(self.inbox.get())
            with contextlib.suppress(Empty):
                for _ in range(NOTES_PER_ROUND - 1):
                    notes.take(self.inbox.get_nowait())
            stop = notes.stop
            self.settled += notes.settled
            if self.error is not None:
                continue  # keep draining so close() returns; the first error is raised there
            try:
                if notes.outcomes:
                    self._write(notes.outcomes)
                if stop or len(self.settled) >= FORGET_EVERY:
                    settled, self.settled = self.settled, []
                    forget_jobs(self.services, settled)
            except BaseException as exc:
                log.exception("could not record %d outcome(s)", len(notes.outcomes))
                self.error = exc

    def _write(self, outcomes: list[Outcome]) -> None:
        """One transaction for all of `outcomes`, then the retries they call for."""
        reroute = self.failover.reroutes()
        now = utcnow()
        accepted = [o for o in outcomes if _accepted(o)]
        others = [o for o in outcomes if not _accepted(o)]
        with self.services.db.transaction() as session:
            self._write_accepted(session, accepted, now)
            retries = self._write_others(session, others, reroute, now)
        for (_, seconds), items in retries.items():
            enqueue(self.services, items, delay=timedelta(seconds=seconds))
        self.settled += [
            o.claimed.id for o in outcomes if self.final.get(o.claimed.id) != statuses.QUEUED
        ]

    def _write_accepted(self, session: Session, accepted: list[Outcome], now: datetime) -> None:
        """Plain acceptances, all in one statement."""
        moved = record_sent_batch(
            session,
            [
                (o.claimed.id, o.route.provider, o.result.provider_message_id)
                for o in accepted
                if o.result
            ],
            now,
        )
        self.final.update((o.claimed.id, statuses.SENT) for o in accepted if o.claimed.id in moved)

    def _write_others(
        self, session: Session, others: Sequence[Outcome], reroute: bool, now: datetime
    ) -> dict[tuple[str, float], list[Queued]]:
        """Failures and at-once deliveries, row by row; the retries, by queue and delay."""
        retries: dict[tuple[str, float], list[Queued]] = defaultdict(list)
        if not others:
            return retries
        rows = session.scalars(
            # Locked: a delivery receipt may be arriving for one of them right now.
            select(Message).where(Message.id.in_([o.claimed.id for o in others])).with_for_update()
        ).all()
        by_id = {m.id: m for m in rows}
        settings = self.services.settings
        for outcome in others:
            message = by_id[outcome.claimed.id]
            if outcome.error is None:
                _record_sent(session, message, outcome)
            else:
                delay = _record_failure(session, message, outcome, settings, reroute, now)
                if delay is not None:
                    retries[(message.priority, delay.total_seconds())].append(Queued.of(message))
            self.final[message.id] = message.status
        return retries


def _accepted(outcome: Outcome) -> bool:
    """The provider took it and says no more yet: the common case, written in bulk."""
    return outcome.result is not None and outcome.result.status == statuses.SENT


def _record_sent(session: Session, message: Message, outcome: Outcome) -> None:
    assert outcome.result is not None
    provider = outcome.route.provider
    message.provider = provider
    message.provider_message_id = outcome.result.provider_message_id
    transition(session, message, statuses.SENT, source=provider)
    if outcome.result.status == statuses.DELIVERED:
        transition(session, message, statuses.DELIVERED, source=provider)
    log.debug(
        "message %s %s via %s to %s", message.id, message.status, provider, mask(message.phone)
    )


def _record_failure(
    session: Session,
    message: Message,
    outcome: Outcome,
    settings: Settings,
    reroute: bool,
    now: datetime,
) -> timedelta | None:
    """Put the message back in the queue (returns the delay) or fail it (returns None)."""
    exc = outcome.error
    assert exc is not None
    provider = outcome.route.provider
    attempt = outcome.claimed.attempt
    if exc.ambiguous:
        # It may have been accepted: never resend blindly. The message stays `sending` and the
        # sweep settles it against the provider's own record (`sweeping.reconcile_stuck`).
        log.warning("message %s outcome unknown via %s: %s", message.id, provider, exc)
        message.provider = provider
        return None
    retry = exc.retryable and attempt < settings.SEND_MAX_ATTEMPTS
    log.warning(
        "message %s attempt %d via %s failed (%s): %s",
        message.id,
        attempt,
        provider,
        "retry" if retry else "final",
        exc,
    )
    if not retry:
        message.provider = provider
        reason = "provider_unavailable" if exc.retryable else exc.reason
        transition(
            session, message, statuses.FAILED, source=provider, reason=reason, detail=exc.detail
        )
        if exc.reason == "opted_out":
            consent.opt_out(session, message.phone, channel=provider, now=now)
        return None
    if reroute and not outcome.claimed.bound and not isinstance(exc, RateLimitedProviderError):
        delay = timedelta(0)  # the fallback provider takes it at once
    else:
        delay = retry_delay(attempt, settings.SEND_RETRY_BASE_SECONDS, exc.retry_after)
    message.next_attempt_at = now + delay
    transition(session, message, statuses.QUEUED, source=provider, detail=exc.detail or exc.reason)
    return delay


def retry_delay(attempt: int, base_seconds: float, retry_after: float | None = None) -> timedelta:
    """Exponential backoff (base, 3×base, 9×base…), never sooner than the provider asked."""
    seconds = base_seconds * (3 ** (attempt - 1))
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=min(seconds, 3600))
