"""Inbound texts as staff see them (`GET /api/v1/inbound-messages`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class InboundQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class InboundOut(BaseModel):
    id: int
    channel: str
    phone: str = Field(description="masked")
    text: str | None = Field(description="null once purged")
    intent: str | None
    outcome: str | None
    reply_text: str | None
    reply_message_id: str | None
    received_at: datetime


class InboundList(BaseModel):
    messages: list[InboundOut]
    next_before_id: int | None = Field(description="pass as before_id for the next page")
