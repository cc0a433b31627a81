"""POST /gateways/android/events: webhooks of SMS Gateway for Android (the two-way channel)."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from notifier.core import signing
from notifier.inbound import conversation
from notifier.messaging import receipts
from notifier.schemas.android_gateway import (
    SIGNATURE_HEADERS,
    GatewayEvent,
    GatewayEventResult,
    SmsReceived,
    SmsStatus,
)
from notifier.web import guards, jsonbody, services
from notifier.web.apidoc import documented, reply
from notifier.web.inputs import parse_part

bp = Blueprint("android_gateway", __name__, url_prefix="/gateways/android")

MAX_BODY_BYTES = 64 * 1024


@bp.post("/events")
@documented(
    "androidGatewayEvent",
    tag="providers",
    body=GatewayEvent,
    params=SIGNATURE_HEADERS,
    responses={200: reply("Handled (or a repeat of a handled event).", GatewayEventResult)},
    problems=(400, 401, 413, 415, 429),
)
def events() -> ResponseReturnValue:
    """An event of the commune's SMS Gateway for Android phone.

    `sms:received` (a citizen's text: stored, acted on, answered through the phone), `sms:sent`,
    `sms:delivered`, `sms:failed` (delivery of our messages); others are acknowledged and
    ignored. Signed with ANDROID_GATEWAY_WEBHOOK_KEY; the same event `id` is handled once.
    """
    body = guards.signed_body(
        signing.ANDROID_GATEWAY,
        services().settings.ANDROID_GATEWAY_WEBHOOK_KEY,
        "android gateway webhook",
        MAX_BODY_BYTES,
    )
    guards.require_mimetype("application/json")
    jsonbody.parse_object(body)
    envelope = jsonbody.validate(GatewayEvent, body)
    if envelope.event == "sms:received":
        received = parse_part(SmsReceived, envelope.payload, "payload")
        result = conversation.handle(
            services(),
            conversation.InboundSms(
                channel="android",
                phone=received.sender,
                text=received.message,
                external_id=_received_sms_id(envelope, received),
            ),
        )
        return _answer(
            GatewayEventResult(
                id=envelope.id,
                event=envelope.event,
                duplicate=result.duplicate,
                intent=result.intent,
                outcome=result.outcome,
                reply_message_id=result.reply.id if result.reply else None,
            )
        )
    # Imported only here: the adapter loads the gateway's client library and the aiohttp it
    # brings (some 8 MB), which only a deployment whose gateway calls this route needs.
    from notifier.providers import android_gateway

    if envelope.event in android_gateway.RECEIPT_EVENTS:
        status = parse_part(SmsStatus, envelope.payload, "payload")
        receipt = android_gateway.event_receipt(envelope.event, status.messageId, status.reason)
        with services().db.transaction() as session:
            message = receipts.apply(session, receipt)
            answer = GatewayEventResult(
                id=envelope.id,
                event=envelope.event,
                message_id=message.id if message else None,
                status=message.status if message else None,
            )
        return _answer(answer)
    # Pings, MMS, data SMS: acknowledged so the app does not retry them for days.
    return _answer(GatewayEventResult(id=envelope.id, event=envelope.event, ignored=True))


def _received_sms_id(envelope: GatewayEvent, received: SmsReceived) -> str:
    """One id per SMS, however many webhooks it came through (each gives it a new event id).

    The app's `messageId` hashes the SMS into 32 bits, so two texts may share one: with the
    sender and the SMS's own time beside it, only the same SMS does.
    """
    if not received.messageId:
        return envelope.id
    key = f"{received.sender}\n{received.receivedAt or ''}\n{received.messageId}"
    return "sms:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _answer(result: GatewayEventResult) -> Response:
    return Response(result.model_dump_json(exclude_none=True), mimetype="application/json")
