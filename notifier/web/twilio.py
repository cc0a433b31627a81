"""Twilio webhooks: inbound SMS (answered with TwiML) and delivery status callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from notifier.inbound import conversation
from notifier.messaging import receipts
from notifier.providers.twilio import status_receipt
from notifier.web import guards, services
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__, url_prefix="/twilio")

P = ParamSpec("P")
R = TypeVar("R")


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
        guards.require_mimetype("application/x-www-form-urlencoded")
        token = services().settings.TWILIO_AUTH_TOKEN
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = bool(token and signature) and RequestValidator(token).validate(
            public_url(), request.form.to_dict(flat=True), signature
        )
        if not valid:
            log.warning("twilio webhook %s refused: bad or missing signature", request.path)
            guards.authentication_failed()
            raise ApiProblem(403, "Forbidden", "X-Twilio-Signature is missing or does not match.")
        return view(*args, **kwargs)

    return wrapper


@bp.post("/status")
@twilio_signature_required
def status_callback() -> ResponseReturnValue:
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
@twilio_signature_required
def inbound_sms() -> ResponseReturnValue:
    """A citizen's text. The reply rides back in the TwiML answer, not as a second message."""
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
