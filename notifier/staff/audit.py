"""The audit log: who did what, from the console, the API or the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.core.db import utcnow
from notifier.core.paging import Page, fetch_page
from notifier.models import AuditLog


def record(
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> AuditLog:
    """Add one entry; the caller commits it together with the change it describes."""
    entry = AuditLog(
        at=now or utcnow(),
        actor=actor[:100],
        action=action[:64],
        target=target[:200] if target else None,
        detail=dict(detail) if detail else None,
        ip=ip[:64] if ip else None,
    )
    session.add(entry)
    return entry


def entries(session: Session, number: int, size: int) -> Page[AuditLog]:
    """Page `number` of the log, newest first."""
    stmt = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
    return fetch_page(session, stmt, number, size)
