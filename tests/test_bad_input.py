"""Whatever arrives at the dossier webhook: never a 5xx, and a refusal writes nothing at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier.core.runtime import Services
from notifier.messaging.reasons import REASONS
from notifier.models import Dossier, DossierEvent, Message, MessageStatusEvent, Reminder
from notifier.text import phones
from tests.support.helpers import dossier_event, post_signed

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TABLES = (Dossier, DossierEvent, Message, MessageStatusEvent, Reminder)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"RATE_LIMIT_AUTH_FAILURES_PER_IP": "off"}


def counts(services: Services) -> dict[str, int]:
    with services.db.session() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in TABLES
        }


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.sampled_from(["", " ", "\x00", "2025-02-30", "2025-07-14T08:30:00", "received", "9"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "event_id",
    "occurred_at",
    "dossier",
    "citizen",
    "dossier.code",
    "dossier.procedure",
    "dossier.status",
    "dossier.status_code",
    "dossier.due_date",
    "dossier.new_due_date",
    "dossier.note",
    "citizen.name",
    "citizen.phone",
    "citizen.language",
    "extra_field",
    "dossier.extra_field",
]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with some fields replaced by anything JSON can carry, or removed."""
    event = dossier_event(event_id=draw(st.text(min_size=1, max_size=30)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        *parents, leaf = name.split(".")
        target: Any = event
        for parent in parents:
            target = target.get(parent) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target.pop(leaf, None)
        else:
            target[leaf] = draw(json_values)
    return event


def check(client: FlaskClient, services: Services, body: bytes) -> int:
    before = counts(services)
    response = post_signed(client, body)
    after = counts(services)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 300:
        assert response.mimetype == "application/problem+json"
        assert after == before, f"a refused request ({response.status_code}) wrote rows"
    if response.status_code == 400:
        assert response.get_json()["errors"], "a 400 names what is wrong"
    return response.status_code


@EXAMPLES
@given(event=mutated_events())
def test_any_mutation_of_an_event_is_accepted_or_refused_cleanly(
    client: FlaskClient, services: Services, event: dict[str, Any]
) -> None:
    check(client, services, json.dumps(event).encode())


@EXAMPLES
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_body_at_all_is_refused_cleanly(
    client: FlaskClient, services: Services, body: bytes
) -> None:
    status = check(client, services, body)
    assert status in (400, 413, 415)


phone_like = st.one_of(
    st.text(alphabet="0123456789 +-.()", max_size=20),
    st.text(max_size=30),
    st.from_regex(r"\A(\+84|0|84|0084)[ .]?[1-9]\d{1,2}[ .]?\d{3}[ .]?\d{3,4}\Z"),
)


@EXAMPLES
@given(raw=phone_like, index=st.integers(min_value=0))
def test_any_phone_is_sent_in_e164_or_recorded_as_rejected_with_a_known_reason(
    client: FlaskClient, services: Services, raw: str, index: int
) -> None:
    event = dossier_event(event_id=f"phone-{index}-{raw!r}"[:200], **{"citizen.phone": raw})
    before = counts(services)
    response = post_signed(client, event)
    assert response.status_code < 500
    if response.status_code == 400:  # empty after clean-up: a request error, nothing stored
        assert counts(services) == before
        return
    if response.status_code != 202:
        return  # the same event id drawn twice
    [summary] = response.get_json()["messages"]
    with services.db.session() as session:
        stored = session.get_one(Message, summary["id"]).phone
    if summary["status"] == "rejected":
        assert summary["failure_reason"] in REASONS
    else:
        assert summary["status"] == "queued"
        assert stored == phones.normalize(raw)
        assert stored.startswith("+84")
