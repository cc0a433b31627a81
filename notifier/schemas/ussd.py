"""The form an USSD aggregator posts on every step of a session (`POST /ussd`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from notifier.text.textinput import InputLine

MAX_TEXT = 2000


class UssdForm(BaseModel):
    """Aggregators add their own fields (`networkCode`…): they are ignored."""

    model_config = ConfigDict(extra="ignore")

    sessionId: Annotated[InputLine, Field(min_length=1, max_length=128)]
    serviceCode: Annotated[InputLine, Field(min_length=1, max_length=64)]
    phoneNumber: Annotated[InputLine, Field(min_length=1, max_length=64)]
    text: Annotated[
        InputLine,
        Field(
            max_length=MAX_TEXT,
            description="Every input of the session so far, joined by `*`; empty at first.",
        ),
    ] = ""
