"""Bulk jobs: create a batch's messages chunk by chunk."""

from __future__ import annotations

from notifier.api import batches
from notifier.core.runtime import current


def process_batch(batch_id: str) -> int:
    return batches.process_batch(current(), batch_id)
