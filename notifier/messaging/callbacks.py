"""Delivery callbacks: each final status of an API key's message is POSTed to the key's URL.

The database is the source of truth. `on_final_status` adds a pending `Callback` row in the same
transaction that gives the message its final status (delivered, failed, rejected), and asks for
a job once that transaction commits. The job claims the row with a lease, POSTs outside any
transaction, records the attempt, and retries with backoff on connection errors, 5xx and 429
for up to CALLBACK_RETRY_HOURS; any other answer ends it. The scheduler's sweep re-enqueues
pending callbacks whose job was lost.

The request is signed like the dossier webhook (`notifier.signing`): `X-Notifier-Timestamp`
and `X-Notifier-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.core import signing
from notifier.core.db import new_id, utcnow
from notifier.core.runtime import BULK_QUEUE, Services, after_commit
from notifier.messaging import statuses
from notifier.models import ApiKey, Callback, CallbackAttempt, Message
from notifier.schemas.callbacks import CallbackPayload

log = logging.getLogger(__name__)

JOB = "jobs.callbacks.deliver_callback"
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
USER_AGENT = "notifier-callbacks/1"
RESULT_TTL = 600
FAILURE_TTL = 7 * 86400  # a week to look at a job that crashed
# Longest wait between two attempts, whatever the backoff or the receiver's Retry-After says.
MAX_DELAY = timedelta(hours=1)


def on_final_status(session: Session, message: Message, now: datetime | None = None) -> None:
    """Called inside the transaction that makes `message` final: queue its callback, if any."""
    if message.api_key_id is None or message.status not in statuses.FINAL:
        return
    api_key = session.get(ApiKey, message.api_key_id)
    if api_key is None or not api_key.callback_url:
        return
    now = now or utcnow()
    if message.id is None:  # a message created in this transaction, not flushed yet
        message.id = new_id()
    callback = Callback(
        message_id=message.id,
        api_key_id=api_key.id,
        status=message.status,
        state=PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(callback)
    after_commit(session, lambda services: enqueue(services, [(callback.id, 0)]))


def job_id(callback_id: int, attempts: int) -> str:
    # One id per attempt: a retry never collides with the job that scheduled it.
    return f"callback-{callback_id}-{attempts}"


def _queue(services: Services) -> Queue:
    # Callbacks never go before an SMS: they wait behind urgent messages on the bulk queue.
    return services.queue(BULK_QUEUE)


def enqueue(services: Services, items: Sequence[tuple[int, int]]) -> int:
    """Enqueue delivery jobs for committed callbacks, given as (id, attempts so far)."""
    if not items:
        return 0
    try:
        _queue(services).enqueue_many(
            [
                Queue.prepare_data(
                    JOB,
                    args=(callback_id,),
                    job_id=job_id(callback_id, attempts),
                    description=f"deliver callback {callback_id}",
                    result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL,
                )
                for callback_id, attempts in items
            ]
        )
    except RedisError as exc:
        log.warning("queue unavailable, %d callback(s) wait for the sweeper: %s", len(items), exc)
        return 0
    return len(items)


@dataclass(frozen=True)
class _Claimed:
    callback_id: int
    message_id: str
    api_key_id: int
    status: str
    attempt: int
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class _Answer:
    code: int | None
    error: str | None
    retry_after: timedelta | None


def deliver(services: Services, callback_id: int, now: datetime | None = None) -> str:
    """POST one pending callback if it is due. Returns the callback's state afterwards."""
    now = now or utcnow()
    claimed = _claim(services, callback_id, now)
    if isinstance(claimed, str):
        return claimed
    answer = _post(services, claimed)
    return _record(services, claimed, answer)


def _claim(services: Services, callback_id: int, now: datetime) -> _Claimed | str:
    # The lease keeps the sweeper away while the POST is in flight; if this worker dies, the
    # callback is due again once the lease runs out.
    lease = timedelta(seconds=services.settings.CALLBACK_TIMEOUT_SECONDS + 60)
    with services.db.transaction() as session:
        result = session.execute(
            update(Callback)
            .where(
                Callback.id == callback_id,
                Callback.state == PENDING,
                Callback.next_attempt_at <= now,
            )
            .values(attempts=Callback.attempts + 1, next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        callback = session.get(Callback, callback_id, populate_existing=True)
        if callback is None:
            return "missing"
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return callback.state
        api_key = session.get_one(ApiKey, callback.api_key_id)
        message = session.get_one(Message, callback.message_id)
        if not api_key.callback_url or not api_key.callback_secret:
            callback.state = FAILED
            callback.completed_at = now
            callback.last_error = "the API key no longer has a callback URL"
            return FAILED
        body = CallbackPayload.of(message).model_dump_json().encode()
        return _Claimed(
            callback_id=callback.id,
            message_id=message.id,
            api_key_id=api_key.id,
            status=callback.status,
            attempt=callback.attempts,
            url=api_key.callback_url,
            secret=api_key.callback_secret,
            body=body,
        )


def _post(services: Services, claimed: _Claimed) -> _Answer:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.signed_headers(claimed.secret, claimed.body),
    }
    try:
        response = services.http.post(
            claimed.url,
            data=claimed.body,
            headers=headers,
            timeout=services.settings.CALLBACK_TIMEOUT_SECONDS,
            # A redirect is an answer like any other 3xx: not followed, not retried.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return _Answer(None, f"{type(exc).__name__}: {exc}"[:500], None)
    with response:
        return _Answer(response.status_code, None, _retry_after(response))


def _retry_after(response: requests.Response) -> timedelta | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        return parsedate_to_datetime(value) - utcnow()
    except (TypeError, ValueError):
        return None


def is_retryable(code: int | None) -> bool:
    """Connection errors (no code), 5xx and 429 are worth another try; nothing else is."""
    return code is None or code == 429 or code >= 500


def backoff(attempt: int, base_seconds: float, retry_after: timedelta | None = None) -> timedelta:
    """base, 2×base, 4×base… capped at an hour, never sooner than the receiver asked."""
    delay = timedelta(seconds=base_seconds * 2 ** (attempt - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


def _record(services: Services, claimed: _Claimed, answer: _Answer) -> str:
    settings = services.settings
    now = utcnow()
    retry_in: timedelta | None = None
    with services.db.transaction() as session:
        callback = session.get_one(Callback, claimed.callback_id)
        if answer.code is not None and 200 <= answer.code < 300:
            outcome = DELIVERED
        elif is_retryable(answer.code):
            retry_in = backoff(
                claimed.attempt, settings.CALLBACK_RETRY_BASE_SECONDS, answer.retry_after
            )
            give_up_at = callback.created_at + timedelta(hours=settings.CALLBACK_RETRY_HOURS)
            outcome = "retry" if now + retry_in <= give_up_at else FAILED
        else:
            outcome = FAILED
        session.add(
            CallbackAttempt(
                message_id=claimed.message_id,
                api_key_id=claimed.api_key_id,
                callback_id=claimed.callback_id,
                status=claimed.status,
                attempt=claimed.attempt,
                at=now,
                response_code=answer.code,
                error=answer.error,
                outcome=outcome,
            )
        )
        callback.last_error = answer.error or (
            None if outcome == DELIVERED else f"HTTP {answer.code}"
        )
        if outcome == "retry":
            assert retry_in is not None
            callback.next_attempt_at = now + retry_in
        else:
            callback.state = outcome
            callback.completed_at = now
            retry_in = None
        state = callback.state
    log.log(
        logging.INFO if outcome == DELIVERED else logging.WARNING,
        "callback %s for message %s attempt %d: %s (%s)",
        claimed.callback_id,
        claimed.message_id,
        claimed.attempt,
        outcome,
        answer.error or answer.code,
    )
    if retry_in is not None:
        _schedule(services, claimed.callback_id, claimed.attempt, retry_in)
    return state


def _schedule(services: Services, callback_id: int, attempts: int, delay: timedelta) -> None:
    if delay <= timedelta(0):
        enqueue(services, [(callback_id, attempts)])
        return
    try:
        _queue(services).enqueue_in(
            delay,
            JOB,
            callback_id,
            job_id=job_id(callback_id, attempts),
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
    except RedisError as exc:
        log.warning("could not schedule callback %s, the sweeper will: %s", callback_id, exc)


def sweep(services: Services, now: datetime | None = None, limit: int = 1000) -> int:
    """Re-enqueue due pending callbacks whose job is not in Redis. Returns how many."""
    now = now or utcnow()
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)
    with services.db.session() as session:
        rows = session.execute(
            select(Callback.id, Callback.attempts)
            .where(Callback.state == PENDING, Callback.next_attempt_at <= now - grace)
            .order_by(Callback.next_attempt_at)
            .limit(limit)
        ).all()
    items = [(row.id, row.attempts) for row in rows]
    live = services.live_jobs([job_id(*item) for item in items])
    if live is None:
        return 0
    lost = [item for item in items if job_id(*item) not in live]
    requeued = enqueue(services, lost)
    if requeued:
        log.info("sweep: %d callback(s) re-enqueued", requeued)
    return requeued
