"""Messages put straight into the outbox, for tests of what happens to them afterwards."""

from __future__ import annotations

from datetime import timedelta

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import outbox


def add_message(
    services: Services,
    *,
    urgent: bool,
    days_old: float = 0,
    status: str | None = None,
    kind: str = "dossier",
) -> str:
    """A committed `dossier_ready` message to 0912 345 678; `status` overrides the one it got."""
    with services.db.transaction() as session:
        message = outbox.compose(
            session,
            services.settings,
            phone="0912345678",
            template="dossier_ready",
            personalisation={"code": "000.00.31.H26-250714-0001"},
            urgent=urgent,
            essential=urgent,
            kind=kind,
            now=utcnow() - timedelta(days=days_old),
        )
        if status is not None:
            message.status = status
        session.flush()
        return message.id
