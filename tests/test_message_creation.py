"""Creating messages: a text that cannot be sent is kept as rejected with a reason staff can read,
and the webhook's fast write (`compose_new` + `insert_new`) stores exactly what `compose` does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from notifier.core.runtime import Services
from notifier.messaging import outbox
from notifier.models import Message, MessageStatusEvent

NOTICE = {
    "phone": "0912 345 678",
    "template": "dossier_supplement_requested",
    "urgent": True,
    "essential": True,
    "kind": "dossier",
}


def stored(services: Services, message_id: str) -> tuple[dict[str, Any], list[str]]:
    """The message's row (without what differs between two creations) and its status history."""
    with services.db.session() as session:
        row = session.get_one(Message, message_id)
        columns = {
            c.key: getattr(row, c.key)
            for c in Message.__table__.columns
            if c.key not in {"id", "created_at", "updated_at", "next_attempt_at", "completed_at"}
        }
        history = session.scalars(
            select(MessageStatusEvent.status).where(MessageStatusEvent.message_id == message_id)
        ).all()
    return columns, list(history)


def test_a_text_too_long_for_sms_is_stored_rejected_with_its_reason(services: Services) -> None:
    with services.db.transaction() as session:
        message = outbox.compose(
            session,
            services.settings,
            personalisation={"code": "HS-1", "note": "Thiếu giấy tờ. " * 200},
            **NOTICE,
        )
    columns, history = stored(services, message.id)
    assert columns["status"] == "rejected"
    assert columns["failure_reason"] == "message_too_long"
    assert columns["phone"] == "0912 345 678"
    assert history == ["rejected"]


def test_an_unknown_template_is_stored_rejected_as_a_template_error(services: Services) -> None:
    with services.db.transaction() as session:
        message = outbox.compose(
            session,
            services.settings,
            personalisation={},
            **{**NOTICE, "template": "no_such_template"},
        )
    columns, _ = stored(services, message.id)
    assert (columns["status"], columns["failure_reason"]) == ("rejected", "template_error")


def test_a_rejected_record_can_be_made_without_composing(services: Services) -> None:
    with services.db.transaction() as session:
        message = outbox.create_rejected(
            session, phone="0912345678", reason="template_error", detail="gone", kind="api"
        )
    columns, history = stored(services, message.id)
    assert (columns["status"], columns["failure_detail"], history) == (
        "rejected",
        "gone",
        ["rejected"],
    )


def test_the_fast_write_stores_what_compose_stores(services: Services) -> None:
    for personalisation in ({"code": "HS-2", "note": "Thiếu bản sao CCCD"}, {"note": "x" * 2000}):
        with services.db.transaction() as session:
            added = outbox.compose(
                session, services.settings, personalisation=personalisation, **NOTICE
            )
            written = outbox.compose_new(
                session, services.settings, personalisation=personalisation, **NOTICE
            )
            outbox.insert_new(session, [written])
        assert stored(services, written.id) == stored(services, added.id)
        assert written.status == added.status
