"""HMAC-SHA256 request signatures: checking webhooks we receive, signing our own callbacks.

Two schemes, each a timestamp header and a signature header checked within a time window:

- ours (`NOTIFIER`: the one-stop-shop webhook and our callbacks): signed string
  "<unix timestamp>.<raw body bytes>", header value "v1=<hex digest>";
- SMS Gateway for Android (`ANDROID_GATEWAY`): `X-Signature` is the hex digest of the raw body
  followed by the `X-Timestamp` string.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

SCHEME = "v1"
# Unix seconds in ASCII digits only: int() would also take "+17…", "1_7…" or Arabic-Indic digits.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# A few signatures side by side (secret rotation) fit easily; anything longer is not ours.
MAX_SIGNATURE_HEADER = 1024


class SignatureError(Exception):
    """The request is not authentic; the message says why (safe to return to the caller)."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def android_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """SMS Gateway for Android: hex HMAC-SHA256 of the raw body followed by the timestamp."""
    return hmac.new(secret.encode(), body + str(timestamp).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Scheme:
    timestamp_header: str
    signature_header: str
    sign: Callable[[str, int | str, bytes], str]  # (secret, timestamp, body) -> header value
    # Several comma-separated signatures, so a secret can be rotated without downtime.
    several: bool = False

    def headers(self, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers a sender of this scheme adds to `body`."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            self.timestamp_header: str(timestamp),
            self.signature_header: self.sign(secret, timestamp, body),
        }

    def verify(
        self,
        secret: str,
        body: bytes,
        timestamp_header: str | None,
        signature_header: str | None,
        *,
        tolerance_seconds: int = 300,
        now: float | None = None,
    ) -> None:
        """Raise SignatureError unless `body` was signed with `secret` within the window."""
        if not secret:
            raise SignatureError("webhook secret is not configured on the server")
        if not timestamp_header or not signature_header:
            raise SignatureError(
                f"missing {self.timestamp_header} or {self.signature_header} header"
            )
        stamp = timestamp_header.strip()
        if _TIMESTAMP_RE.fullmatch(stamp) is None:
            raise SignatureError(f"{self.timestamp_header} is not a unix time in seconds")
        if len(signature_header) > MAX_SIGNATURE_HEADER:
            raise SignatureError(f"{self.signature_header} is too long")
        timestamp = int(stamp)
        now = time.time() if now is None else now
        if abs(now - timestamp) > tolerance_seconds:
            raise SignatureError(
                f"timestamp is more than {tolerance_seconds} s from the server clock"
            )
        expected = self.sign(secret, timestamp, body).encode()
        offered = signature_header.split(",") if self.several else [signature_header]
        # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        if not any(
            hmac.compare_digest(expected, part.strip().encode("utf-8", "replace"))
            for part in offered
        ):
            raise SignatureError("signature does not match")


NOTIFIER = Scheme("X-Notifier-Timestamp", "X-Notifier-Signature", signature, several=True)
ANDROID_GATEWAY = Scheme("X-Timestamp", "X-Signature", android_signature)


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    return NOTIFIER.headers(secret, body, timestamp)


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the body was signed with `secret` within the tolerance window."""
    NOTIFIER.verify(
        secret,
        body,
        timestamp_header,
        signature_header,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )
