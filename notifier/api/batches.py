"""Bulk sends of the notifications API: validated up front, stored as one batch, created by a job.

No Flask here. Every row is checked first by the row pipeline (`notices.rows`, the same one the
console's CSV notices use) and reported as the API's JSON row errors (`validate_rows`); the
valid rows are stored as one `Batch` row (`submit_bulk`), and a job creates their messages in
chunks (`process_batch`), each chunk enqueued right after its commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.api.notifications import (
    KIND,
    InvalidNotification,
    ReferenceConflict,
    compose,
    made_with,
    race_winner,
    reserve,
)
from notifier.core import ratelimit
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import BULK_QUEUE, URGENT_QUEUE, Services
from notifier.messaging import delivery, outbox, statuses
from notifier.models import ApiKey, Batch, Message
from notifier.notices import rows
from notifier.schemas.base import from_row
from notifier.schemas.notifications import BatchOut, BulkIn

log = logging.getLogger(__name__)

BATCH_JOB = "jobs.notifications.process_batch"
BATCH_PENDING = "pending"
BATCH_DONE = "done"

RowValidation = rows.Checked[dict[str, Any]]


def validate_rows(
    settings: Settings,
    recipients: Iterable[Mapping[str, Any]],
    *,
    template: str | None = None,
    body: str | None = None,
    language: str = "vi",
    first_row: int = 1,
) -> RowValidation:
    """Check every row (plain dicts: `phone`, optional `personalisation` and `reference`).

    A template that does not exist, or a free text that cannot be sent, is wrong for every
    row: that raises InvalidNotification at once instead of repeating the error per row.
    Row numbers start at `first_row` (a CSV with a header line would pass 2).
    """
    if (template is None) == (body is None):
        raise InvalidNotification(
            [{"field": "template", "message": "Give either a template or a body."}]
        )
    content = rows.Content(template, body, language, fill_body=False)
    try:
        rows.check_content(settings, content)
    except rows.Unsendable as exc:
        raise InvalidNotification(exc.problem.api()) from None
    given = (
        rows.Row(
            number,
            str(row.get("phone") or ""),
            dict(row["personalisation"]) if row.get("personalisation") else None,
            row.get("reference") or None,
        )
        for number, row in enumerate(recipients, start=first_row)
    )
    return rows.check(settings, content, given, rows.api_errors, unique="reference")


def drop_used_references(session: Session, api_key_id: int, validation: RowValidation) -> None:
    """Move rows whose reference this key already used to the errors."""
    wanted = [row.reference for row in validation.valid if row.reference]
    if not wanted:
        return
    used = used_references(session, api_key_id, wanted)
    if not used:
        return
    kept = []
    for row in validation.valid:
        if row.reference in used:
            validation.errors.append(_used_reference_error(row.row, used[row.reference]))
        else:
            kept.append(row)
    validation.valid = kept
    validation.errors.sort(key=lambda error: error["row"])


def used_references(session: Session, api_key_id: int, references: Sequence[str]) -> dict[str, str]:
    """Which of `references` this key already used: reference → message id."""
    used: dict[str, str] = {}
    for start in range(0, len(references), 500):
        for reference, message_id in session.execute(
            select(Message.reference, Message.id).where(
                Message.api_key_id == api_key_id,
                Message.reference.in_(references[start : start + 500]),
            )
        ):
            if reference is not None:
                used[reference] = message_id
    return used


def _used_reference_error(row: int, message_id: str) -> dict[str, Any]:
    return {
        "row": row,
        "field": "reference",
        "message": f"Reference already used for notification {message_id}.",
        "reason": "duplicate_reference",
    }


@dataclass(frozen=True)
class BatchSubmitted:
    batch: Batch
    duplicate: bool


def create_batch(
    session: Session,
    validation: RowValidation,
    *,
    template: str | None,
    body: str | None,
    language: str = "vi",
    priority: str = BULK_QUEUE,
    essential: bool = False,
    kind: str = KIND,
    api_key_id: int | None = None,
    staff_user_id: int | None = None,
    reference: str | None = None,
    provider: str | None = None,
) -> Batch:
    """Add the batch row holding the valid rows. The caller commits, then `enqueue_batch`."""
    batch = Batch(
        api_key_id=api_key_id,
        staff_user_id=staff_user_id,
        reference=reference,
        template=template,
        body=body,
        language=language,
        priority=priority,
        essential=essential,
        kind=kind,
        provider=provider,
        total_rows=validation.total,
        valid_rows=len(validation.valid),
        rows=[row.to_json() for row in validation.valid],
        errors=list(validation.errors),
        created_count=0,
        state=BATCH_PENDING if validation.valid else BATCH_DONE,
        created_at=utcnow(),
        completed_at=None if validation.valid else utcnow(),
    )
    session.add(batch)
    session.flush()
    return batch


def batch_job_id(batch_id: str) -> str:
    return f"batch-{batch_id}"


def enqueue_batch(services: Services, batch_id: str) -> bool:
    """Ask a worker to create the batch's messages. False if Redis is down (the sweep will)."""
    try:
        services.queue(BULK_QUEUE).enqueue(
            BATCH_JOB,
            batch_id,
            job_id=batch_job_id(batch_id),
            result_ttl=600,
            failure_ttl=7 * 86400,
            description=f"create messages of batch {batch_id}",
        )
    except RedisError as exc:
        log.warning("queue unavailable, batch %s waits for the sweeper: %s", batch_id, exc)
        return False
    return True


def find_batch_by_reference(session: Session, api_key_id: int, reference: str) -> Batch | None:
    return session.scalar(
        select(Batch).where(Batch.api_key_id == api_key_id, Batch.reference == reference)
    )


def submit_bulk(services: Services, api_key: ApiKey, request: BulkIn) -> BatchSubmitted:
    """The API's bulk send: validate every row, reserve the daily cap, store, enqueue.

    Raises InvalidNotification (nothing valid, or wrong for every row), ReferenceConflict,
    DailyCapReached.
    """
    if request.reference is not None:
        with services.db.session() as session:
            existing = find_batch_by_reference(session, api_key.id, request.reference)
        if existing is not None:
            return _batch_replay(existing, request)
    validation = validate_rows(
        services.settings,
        (recipient.model_dump() for recipient in request.recipients),
        template=request.template,
        body=request.body,
        language=request.language,
    )
    with services.db.session() as session:
        drop_used_references(session, api_key.id, validation)
    if not validation.valid:
        raise InvalidNotification(
            [{**e, "field": f"recipients.{e['row'] - 1}.{e['field']}"} for e in validation.errors]
        )
    reservation = reserve(services, api_key, len(validation.valid))
    try:
        with services.db.transaction() as session:
            batch = create_batch(
                session,
                validation,
                template=request.template,
                body=request.body,
                language=request.language,
                priority=request.priority,
                essential=request.essential,
                **made_with(api_key, request.reference),
            )
    except IntegrityError as exc:
        found = race_winner(services, reservation, exc, request.reference, api_key, Batch)
        return _batch_replay(found, request)
    except Exception:
        ratelimit.release_daily(services.redis, reservation)
        raise
    enqueue_batch(services, batch.id)
    return BatchSubmitted(batch, duplicate=False)


def _batch_replay(batch: Batch, request: BulkIn) -> BatchSubmitted:
    if (
        batch.template != request.template
        or batch.body != request.body
        or batch.total_rows != len(request.recipients)
    ):
        raise ReferenceConflict(request.reference or "", batch.id)
    return BatchSubmitted(batch, duplicate=True)


def process_batch(services: Services, batch_id: str, chunk_size: int | None = None) -> int:
    """Create a batch's messages chunk by chunk, enqueueing each chunk after its commit.

    Safe to run twice or to resume after a crash: each chunk moves `created_count` forward in
    the same transaction that creates its messages. Returns how many messages this run created.
    """
    size = chunk_size or services.settings.API_BULK_CHUNK_SIZE
    created = 0
    conflicts = 0
    while True:
        try:
            with services.db.transaction() as session:
                batch = session.get(Batch, batch_id, with_for_update=True)
                if batch is None or batch.state == BATCH_DONE:
                    return created
                chunk = (batch.rows or [])[batch.created_count : batch.created_count + size]
                made = _create_chunk(session, services.settings, batch, chunk)
                batch.created_count += len(chunk)
                if batch.created_count >= len(batch.rows or []):
                    batch.state = BATCH_DONE
                    batch.rows = None  # phone numbers are not kept longer than needed
                    batch.completed_at = utcnow()
        except IntegrityError:
            # A reference taken meanwhile by a single send: the retry finds and skips it.
            conflicts += 1
            if conflicts > 3:
                raise
            continue
        delivery.enqueue_committed(services, made)
        created += len(made)


def _create_chunk(
    session: Session, settings: Settings, batch: Batch, chunk: Sequence[Mapping[str, Any]]
) -> list[Message]:
    used: dict[str, str] = {}
    if batch.api_key_id is not None:
        references = [row["reference"] for row in chunk if row.get("reference")]
        used = used_references(session, batch.api_key_id, references)
    opted_out = (
        set()
        if batch.essential
        else outbox.opted_out_among(session, [row["phone"] for row in chunk])
    )
    made: list[Message] = []
    late_errors: list[dict[str, Any]] = []
    now = utcnow()
    links = {
        "api_key_id": batch.api_key_id,
        "staff_user_id": batch.staff_user_id,
        "batch_id": batch.id,
        "provider": batch.provider,
    }
    for row in chunk:
        reference = row.get("reference")
        if reference in used:
            late_errors.append(_used_reference_error(row["row"], used[reference]))
            continue
        try:
            prepared = compose(
                settings,
                template=batch.template,
                personalisation=row.get("personalisation"),
                body=batch.body,
                language=batch.language,
            )
        except InvalidNotification as exc:
            # Only if templates changed between validation and now.
            made.append(
                outbox.new_rejected(
                    phone=row["phone"],
                    reason="template_error",
                    detail=str(exc),
                    kind=batch.kind,
                    template=batch.template,
                    language=batch.language,
                    now=now,
                    reference=reference,
                    **links,
                )
            )
            continue
        made.append(
            outbox.new_message(
                session,
                settings,
                phone=row["phone"],
                prepared=prepared,
                urgent=batch.priority == URGENT_QUEUE,
                essential=batch.essential,
                kind=batch.kind,
                template=batch.template,
                personalisation=row.get("personalisation"),
                language=batch.language,
                now=now,
                opted_out=row["phone"] in opted_out,
                reference=reference,
                **links,
            )
        )
    if late_errors:
        batch.errors = sorted([*batch.errors, *late_errors], key=lambda error: error["row"])
    outbox.insert_new(session, made)  # two multi-row INSERTs for the chunk
    return made


def batch_out(session: Session, batch: Batch, duplicate: bool = False) -> BatchOut:
    counts: Counter[str] = Counter()
    for status, count in session.execute(
        select(Message.status, func.count())
        .where(Message.batch_id == batch.id)
        .group_by(Message.status)
    ):
        counts[status] = count
    return from_row(
        BatchOut,
        batch,
        invalid_rows=batch.total_rows - batch.valid_rows,
        created=sum(counts.values()),
        statuses={status: counts[status] for status in statuses.ALL if counts[status]},
        duplicate=duplicate,
    )


def get_batch(session: Session, api_key_id: int, batch_id: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.id == batch_id, Batch.api_key_id == api_key_id))


def sweep_batches(services: Services, now: datetime | None = None) -> int:
    """Re-enqueue pending batches whose job is gone (worker crash, Redis restarted)."""
    now = now or utcnow()
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)
    with services.db.session() as session:
        ids = session.scalars(
            select(Batch.id).where(Batch.state == BATCH_PENDING, Batch.updated_at <= now - grace)
        ).all()
    live = services.live_jobs([batch_job_id(batch_id) for batch_id in ids])
    if live is None:
        return 0
    lost = [batch_id for batch_id in ids if batch_job_id(batch_id) not in live]
    return sum(enqueue_batch(services, batch_id) for batch_id in lost)
