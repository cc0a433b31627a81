"""POST /gateways/android/events: webhooks of SMS Gateway for Android (the two-way channel)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from notifier import inbound, receipts, signing
from notifier.schemas.android_gateway import GatewayEvent, SmsReceived, SmsStatus
from notifier.web import services
from notifier.web.inputs import parse, signed_body

bp = Blueprint("android_gateway", __name__, url_prefix="/gateways/android")

MAX_BODY_BYTES = 64 * 1024


@bp.post("/events")
def events() -> ResponseReturnValue:
    body = signed_body(
        signing.ANDROID_GATEWAY,
        services().settings.ANDROID_GATEWAY_WEBHOOK_KEY,
        "android gateway webhook",
        MAX_BODY_BYTES,
    )
    envelope = parse(GatewayEvent, body)
    if envelope.event == "sms:received":
        received = parse(SmsReceived, envelope.payload, where="payload")
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
        status = parse(SmsStatus, envelope.payload, where="payload")
        with services().db.transaction() as session:
            message = receipts.apply_android_status(
                session, envelope.event, status.messageId, status.reason
            )
            found = {"message_id": message.id, "status": message.status} if message else {}
        return jsonify(id=envelope.id, event=envelope.event, **found)
    # Pings, MMS, data SMS: acknowledged so the app does not retry them for days.
    return jsonify(id=envelope.id, event=envelope.event, ignored=True)
