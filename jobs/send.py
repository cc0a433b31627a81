"""Send jobs. Jobs take ids and reload state, so running one twice never sends twice."""

from __future__ import annotations

from notifier import delivery
from notifier.runtime import current


def send_message(message_id: str) -> str:
    return delivery.send_message(current(), message_id)
