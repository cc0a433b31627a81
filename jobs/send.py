"""Send jobs. Jobs take ids and reload state, so running one twice never sends twice."""

from __future__ import annotations

from rq import get_current_job

from notifier.core.runtime import current
from notifier.messaging import delivery


def send_batch(message_ids: list[str]) -> dict[str, int]:
    job = get_current_job()
    return delivery.send_batch(current(), message_ids, priority=job.origin if job else None)


def send_message(message_id: str) -> str:
    """One message. Nothing enqueues this any more, but a queue or the failed-job registry
    may still hold jobs of a release from before batched sending; they must still run."""
    return delivery.send_message(current(), message_id)
