"""Callback jobs: POST one message's final status to its API key's callback URL."""

from __future__ import annotations

from notifier import callbacks
from notifier.runtime import current


def deliver_callback(callback_id: int) -> str:
    return callbacks.deliver(current(), callback_id)
