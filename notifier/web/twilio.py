"""Twilio webhooks: inbound SMS (answered with TwiML) and delivery status callbacks.

Twilio signs each webhook in `X-Twilio-Signature`: HMAC-SHA1 of the URL and the sorted form
fields, keyed with the account's auth token. When a Webhook Rule of Twilio's webhooks
configuration applies a Setting with a SharedKey, it signs with that key's secret and the
Setting's algorithm instead, and names both in `X-Twilio-Webhooks-Signature-Settings`
(`key=<id>,algorithm=HMAC_SHA256`); only the key and the hash change. The twilio SDK checks
both (from 9.13); which secret goes with which key id is our setting,
TWILIO_WEBHOOK_SHARED_KEYS (two keys while one is rotated in).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from notifier.core.config import Settings
from notifier.inbound import conversation
from notifier.messaging import receipts
from notifier.providers.twilio import status_receipt
from notifier.schemas import twilio as forms
from notifier.schemas.openapi import Content, Reply
from notifier.web import guards, services
from notifier.web.apidoc import documented, reply
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__, url_prefix="/twilio")

P = ParamSpec("P")
R = TypeVar("R")

TAG = "providers"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class _Check:
    secret: str
    algorithm: str  # HMAC_SHA1 with the auth token; the Setting's with a SharedKey


def _shared_key_id(settings_header: str) -> str:
    """The `key=` of `key=<id>,algorithm=<name>`."""
    for part in settings_header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "key":
            return value.strip()
    return ""


def _signature_check(settings: Settings) -> _Check | None:
    """How this request's signature is checked, or None when it cannot be."""
    header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    if header is None:
        token = settings.TWILIO_AUTH_TOKEN
        return _Check(token, HMAC_SHA1) if token else None
    key_id = _shared_key_id(header)
    secret = settings.twilio_shared_keys.get(key_id)
    if secret is None:
        log.warning(
            "twilio webhook %s signed with shared key %r, not configured", request.path, key_id
        )
        return None
    # An algorithm the SDK does not know fails the check (and the SDK logs it).
    return _Check(secret, get_signature_algorithm(header))


def public_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path (+ query), as the provider called it."""
    base = services().settings.PUBLIC_BASE_URL.rstrip("/")
    query = request.query_string.decode()
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def twilio_signature_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        guards.refuse_locked_out_client()
        # Twilio always posts a form; anything else would be checked against an empty form.
        guards.require_mimetype(FORM)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        check = _signature_check(services().settings)
        valid = (
            bool(signature)
            and check is not None
            and RequestValidator(check.secret).validate(
                public_url(), request.form.to_dict(flat=True), signature, check.algorithm
            )
        )
        if not valid:
            log.warning("twilio webhook %s refused: bad or missing signature", request.path)
            guards.authentication_failed()
            raise ApiProblem(403, "Forbidden", "X-Twilio-Signature is missing or does not match.")
        return view(*args, **kwargs)

    return wrapper


@bp.post("/status")
@documented(
    "twilioStatusCallback",
    tag=TAG,
    body=Content(schema=forms.STATUS_FORM, media_type=FORM),
    params=(forms.SIGNATURE_HEADER,),
    responses={204: reply("Recorded.")},
    problems=(400, 403, 413, 415, 429),
)
@twilio_signature_required
def status_callback() -> ResponseReturnValue:
    """Twilio delivery status callback.

    Checked with X-Twilio-Signature against PUBLIC_BASE_URL + path.
    """
    sid = request.form.get("MessageSid", "")
    status = request.form.get("MessageStatus", "")
    error_code = request.form.get("ErrorCode") or None
    if not sid or not status:
        raise ApiProblem(400, "Invalid request", "MessageSid and MessageStatus are required.")
    receipt = status_receipt(sid, status, error_code)
    if receipt is not None:
        with services().db.transaction() as session:
            receipts.apply(session, receipt)
    return Response(status=204)


@bp.post("/inbound")
@documented(
    "twilioInboundSms",
    tag=TAG,
    body=Content(schema=forms.INBOUND_FORM, media_type=FORM),
    params=(forms.SIGNATURE_HEADER,),
    responses={
        200: Reply(
            "TwiML: the reply, or an empty <Response/>.",
            Content(schema=forms.TWIML, media_type="text/xml"),
        ),
    },
    problems=(400, 403, 413, 415, 429),
)
@twilio_signature_required
def inbound_sms() -> ResponseReturnValue:
    """A citizen's SMS to a Twilio number.

    Checked with X-Twilio-Signature against PUBLIC_BASE_URL + path. The text is stored and
    acted on (SMS keywords, docs/two-way-sms.md); the reply is the TwiML answer itself.
    """
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    sender = request.form.get("From", "")
    if not sid or not sender:
        raise ApiProblem(400, "Invalid request", "MessageSid and From are required.")
    result = conversation.handle(
        services(),
        conversation.InboundSms(
            channel="twilio", phone=sender, text=request.form.get("Body", ""), external_id=sid
        ),
        inline=True,
    )
    twiml = MessagingResponse()
    if result.reply_text:
        twiml.message(result.reply_text)
    return Response(str(twiml), mimetype="text/xml")
