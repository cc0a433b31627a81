"""The delivery callback's contract: the body POSTed to an API key's callback URL.

It is signed like the dossier webhook (`schemas.dossiers.SIGNATURE_HEADERS`).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

from notifier.models import Message
from notifier.schemas.base import from_row


class CallbackPayload(BaseModel):
    """The JSON body POSTed to a key's callback URL when one of its messages is final."""

    id: str
    reference: str | None
    status: str
    failure_reason: str | None
    phone: str
    template: str | None
    segments: int
    encoding: str
    provider: str | None
    batch_id: str | None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    completed_at: AwareDatetime | None

    @classmethod
    def of(cls, message: Message) -> CallbackPayload:
        return from_row(cls, message)
