"""POST /gateways/android/events: webhooks of SMS Gateway for Android (the two-way channel)."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from notifier import inbound, receipts, signing
from notifier.schemas.android_gateway import GatewayEvent, SmsReceived, SmsStatus
from notifier.web import services
from notifier.web.problems import ApiProblem, invalid_request

log = logging.getLogger(__name__)
bp = Blueprint("android_gateway", __name__, url_prefix="/gateways/android")

MAX_BODY_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)


@bp.post("/events")
def events() -> ResponseReturnValue:
    request.max_content_length = MAX_BODY_BYTES
    body = request.get_data(cache=True)
    settings = services().settings
    try:
        signing.verify_android(
            settings.ANDROID_GATEWAY_WEBHOOK_KEY,
            body,
            request.headers.get("X-Timestamp"),
            request.headers.get("X-Signature"),
            tolerance_seconds=settings.WEBHOOK_TOLERANCE_SECONDS,
        )
    except signing.SignatureError as exc:
        # Logged without the body: it may hold a citizen's text and number.
        log.warning("android gateway webhook refused: %s", exc)
        raise ApiProblem(401, "Unauthorized", str(exc)) from None
    envelope = _parse(GatewayEvent, body)
    if envelope.event == "sms:received":
        received = _parse(SmsReceived, envelope.payload, "payload")
        result = inbound.handle(
            services(),
            inbound.InboundSms(
                channel="android",
                phone=received.phoneNumber,
                text=received.message,
                external_id=envelope.id,
            ),
        )
        return jsonify(
            id=envelope.id,
            event=envelope.event,
            duplicate=result.duplicate,
            intent=result.intent,
            outcome=result.outcome,
            reply_message_id=result.reply.id if result.reply else None,
        )
    if envelope.event in receipts.ANDROID_EVENTS:
        status = _parse(SmsStatus, envelope.payload, "payload")
        with services().db.transaction() as session:
            message = receipts.apply_android_status(
                session, envelope.event, status.messageId, status.reason
            )
            found = {"message_id": message.id, "status": message.status} if message else {}
        return jsonify(id=envelope.id, event=envelope.event, **found)
    # Pings, MMS, data SMS: acknowledged so the app does not retry them for days.
    return jsonify(id=envelope.id, event=envelope.event, ignored=True)


def _parse(model: type[M], data: bytes | dict[str, Any], where: str = "") -> M:
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc, where) from None
