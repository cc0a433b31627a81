"""Development provider: sends nothing, prints each SMS (phone masked) and reports it delivered."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from notifier.providers.base import OutboundSms, SendResult
from notifier.text.phones import mask

log = logging.getLogger(__name__)


class ConsoleProvider:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, sms: OutboundSms) -> SendResult:
        stream = self._stream or sys.stdout
        print(
            f"--- SMS to {mask(sms.phone)} ({sms.segments} segment(s)) ---\n{sms.body}\n---",
            file=stream,
            flush=True,
        )
        return SendResult(provider_message_id=f"console-{sms.message_id}", status="delivered")
