"""Callback jobs: POST one message's final status to its API key's callback URL."""

from __future__ import annotations

from notifier.core.runtime import current
from notifier.messaging import callbacks


def deliver_callback(callback_id: int) -> str:
    return callbacks.deliver(current(), callback_id)
