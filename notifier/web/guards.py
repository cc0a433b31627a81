"""Checks every inbound endpoint shares: content types, rate limits, failed-authentication lockout.

Webhooks call `refuse_locked_out_client()` before checking a signature and `authentication_failed()`
when it does not match, so a client guessing signatures is slowed to a crawl while a legitimate
sender, whose requests all authenticate, is never limited. Endpoints open to anyone (USSD, inbound
SMS) call `limit_ip` and `limit_phone`.
"""

from __future__ import annotations

import logging

from flask import request

from notifier.core import ratelimit, signing
from notifier.web import services
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)


def signed_body(scheme: signing.Scheme, secret: str, source: str, max_bytes: int) -> bytes:
    """The raw body of a signed webhook, once its signature is checked: else 401, logged
    without the body (it may hold a citizen's text and number) and counted towards the lockout."""
    request.max_content_length = max_bytes
    refuse_locked_out_client()
    body = request.get_data(cache=True)
    try:
        scheme.verify(
            secret,
            body,
            request.headers.get(scheme.timestamp_header),
            request.headers.get(scheme.signature_header),
            tolerance_seconds=services().settings.WEBHOOK_TOLERANCE_SECONDS,
        )
    except signing.SignatureError as exc:
        log.warning("%s refused: %s", source, exc)
        authentication_failed()
        raise ApiProblem(401, "Unauthorized", str(exc)) from None
    return body


def require_mimetype(*mimetypes: str) -> None:
    """415 unless the request body is one of `mimetypes` (parameters such as charset allowed)."""
    if request.mimetype not in mimetypes:
        expected = " or ".join(mimetypes)
        raise ApiProblem(415, "Unsupported Media Type", f"Send the request body as {expected}.")


def _too_many(verdict: ratelimit.Verdict, detail: str) -> ApiProblem:
    return ApiProblem(
        429, "Too Many Requests", detail, headers={"Retry-After": str(verdict.retry_after)}
    )


def refuse_locked_out_client() -> None:
    """429 for a client that failed authentication too often lately."""
    verdict = services().inbound_limits.auth_failures_exhausted(request.remote_addr)
    if not verdict.allowed:
        raise _too_many(verdict, "Too many requests failed authentication; try again later.")


def authentication_failed() -> None:
    services().inbound_limits.record_auth_failure(request.remote_addr)


def limit_ip(scope: str) -> None:
    """429 once the client's address is over RATE_LIMIT_PER_IP for `scope`."""
    verdict = services().inbound_limits.check_ip(scope, request.remote_addr)
    if not verdict.allowed:
        raise _too_many(verdict, "Too many requests from this address; try again later.")


def limit_phone(scope: str, phone: str) -> None:
    """429 once `phone` is over RATE_LIMIT_PER_PHONE for `scope`."""
    verdict = services().inbound_limits.check_phone(scope, phone)
    if not verdict.allowed:
        raise _too_many(verdict, "Too many requests from this phone number; try again later.")
