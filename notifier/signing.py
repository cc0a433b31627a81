"""HMAC-SHA256 request signatures: checking the one-stop-shop webhook, signing our own callbacks.

Signed string: "<unix timestamp>.<raw body bytes>"; header value "v1=<hex digest>".

SMS Gateway for Android signs its webhooks its own way: `X-Signature` is the hex HMAC-SHA256 of
the raw body followed by the `X-Timestamp` string (`verify_android`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

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


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Notifier-Timestamp": str(timestamp),
        "X-Notifier-Signature": signature(secret, timestamp, body),
    }


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
    if not secret:
        raise SignatureError("webhook secret is not configured on the server")
    if not timestamp_header or not signature_header:
        raise SignatureError("missing X-Notifier-Timestamp or X-Notifier-Signature header")
    if _TIMESTAMP_RE.fullmatch(timestamp_header.strip()) is None:
        raise SignatureError("X-Notifier-Timestamp is not a unix time in seconds")
    if len(signature_header) > MAX_SIGNATURE_HEADER:
        raise SignatureError("X-Notifier-Signature is too long")
    timestamp = int(timestamp_header.strip())
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp is more than {tolerance_seconds} s from the server clock")
    expected = signature(secret, timestamp, body)
    # Several signatures may be sent (comma separated) while a secret is being rotated.
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    offered = [part.strip().encode("utf-8", "replace") for part in signature_header.split(",")]
    if not any(hmac.compare_digest(expected.encode(), candidate) for candidate in offered):
        raise SignatureError("signature does not match")


def android_signature(secret: str, body: bytes, timestamp: int | str) -> str:
    """SMS Gateway for Android: hex HMAC-SHA256 of the raw body followed by the timestamp."""
    return hmac.new(secret.encode(), body + str(timestamp).encode(), hashlib.sha256).hexdigest()


def android_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers the app sends with a signed webhook (tests and benchmarks use them)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Timestamp": str(timestamp),
        "X-Signature": android_signature(secret, body, timestamp),
    }


def verify_android(
    secret: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the app signed `body` with `secret` within the window."""
    if not secret:
        raise SignatureError("webhook signing key is not configured on the server")
    if not timestamp_header or not signature_header:
        raise SignatureError("missing X-Timestamp or X-Signature header")
    _fresh_timestamp(timestamp_header, "X-Timestamp", tolerance_seconds, now)
    expected = android_signature(secret, body, timestamp_header.strip())
    if not _same(expected, signature_header.strip().lower()):
        raise SignatureError("signature does not match")


def _same(expected: str, offered: str) -> bool:
    # Bytes, because compare_digest refuses str with non-ASCII characters (a header may have any).
    return hmac.compare_digest(expected.encode(), offered.encode("utf-8", "surrogateescape"))


def _fresh_timestamp(header: str, name: str, tolerance_seconds: int, now: float | None) -> int:
    try:
        timestamp = int(header.strip())
    except ValueError:
        raise SignatureError(f"{name} is not a unix time in seconds") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp is more than {tolerance_seconds} s from the server clock")
    return timestamp
