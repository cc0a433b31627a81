"""The preview's contract (`POST /api/v1/preview`): a text to measure, and what it costs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from notifier.text import templating

Value = Annotated[str, StringConstraints(max_length=1000)] | int | float | None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    body: Annotated[str, StringConstraints(max_length=templating.MAX_INLINE_TEMPLATE)] | None = None
    personalisation: Annotated[dict[str, Value], Field(max_length=50)] = Field(default_factory=dict)
    language: Literal["vi", "en"] = "vi"


class PreviewOut(BaseModel):
    """A text as it would be sent, and what it costs."""

    template: str | None
    language: str
    text: str = Field(description="Rendered, cleaned, diacritics kept.")
    body: str = Field(description="What would be sent, after the SMS_DIACRITICS policy.")
    folded: str = Field(description="Without diacritics, as a basic phone shows it.")
    policy: str
    encoding: Literal["GSM-7", "UCS-2"]
    length: int = Field(description="Septets (GSM-7) or UTF-16 units (UCS-2).")
    segments: int
    characters: int
    parts: list[str] = Field(description="The segments as carriers split `body`.")
    cost_vnd: int
    within_limit: bool
    limit_error: str | None
    limit_error_vi: str | None
