"""Retention: texts are personal data, kept only `RETENTION_DAYS` days.

Message bodies and personalisation, and inbound texts and our replies to them, older than that
are emptied and stamped (`body_purged_at`, `text_purged_at`). The rows stay: status, segments,
encoding, provider and dates are what the statistics are made of. Messages still on their way
keep their body until they are done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import null, select, update

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import statuses
from notifier.models import InboundMessage, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    messages: int
    inbound: int


def purge(services: Services, now: datetime | None = None, batch_size: int = 5000) -> PurgeResult:
    """Empty the texts older than RETENTION_DAYS (0 or less: keep everything)."""
    days = services.settings.RETENTION_DAYS
    if days <= 0:
        return PurgeResult(0, 0)
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    messages = _purge_batches(
        services,
        Message,
        [
            Message.created_at < cutoff,
            Message.body_purged_at.is_(None),
            Message.status.not_in(statuses.PENDING),
        ],
        {"body": None, "personalisation": null(), "body_purged_at": now},
        batch_size,
    )
    inbound = _purge_batches(
        services,
        InboundMessage,
        [InboundMessage.received_at < cutoff, InboundMessage.text_purged_at.is_(None)],
        {"text": None, "reply_text": None, "text_purged_at": now},
        batch_size,
    )
    if messages or inbound:
        log.info("retention: purged %d message bodies and %d inbound texts", messages, inbound)
    return PurgeResult(messages, inbound)


def _purge_batches(
    services: Services,
    model: type[Message] | type[InboundMessage],
    conditions: list[Any],
    values: dict[str, Any],
    batch_size: int,
) -> int:
    # Short transactions: a purge of months of history must not hold the write lock for long.
    total = 0
    while True:
        with services.db.transaction() as session:
            ids = select(model.id).where(*conditions).limit(batch_size).scalar_subquery()
            result = session.execute(
                update(model)
                .where(model.id.in_(ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        total += count
        if count < batch_size:
            return total
