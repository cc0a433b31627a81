"""Structured (JSON lines) logging with phone numbers masked in every record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from notifier.text.phones import mask_text

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Secrets of this process (webhook keys, provider tokens), replaced wherever they would appear.
_SECRETS: set[str] = set()
_REDACTED = "[redacted]"
# Shorter values are not secrets worth the name and could redact ordinary words.
_MIN_SECRET_LENGTH = 8


def redact_secrets(*secrets: str) -> None:
    """Never let these values reach a log line."""
    _SECRETS.update(s for s in secrets if len(s) >= _MIN_SECRET_LENGTH)


def clean(text: str) -> str:
    """A log text with secrets redacted and phone numbers masked (also URL-encoded ones)."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    # "%2B84912345678" in a logged URL is a number too.
    return mask_text(text.replace("%2B", "+").replace("%2b", "+"))


class JsonFormatter(logging.Formatter):
    """One JSON object a line; extra fields are kept; every string passes through the mask."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": clean(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = clean(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = clean(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    """Route the root logger to stderr as JSON lines (idempotent), `secrets` redacted."""
    redact_secrets(*secrets)
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
