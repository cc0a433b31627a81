"""The form an USSD aggregator posts on every step of a session (`POST /ussd`)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from notifier.schemas.openapi import Param
from notifier.text.textinput import InputLine

MAX_TEXT = 2000
MAX_SCREEN: Final = 182  # characters of the whole answer, "CON "/"END " included

# The reply: `CON ` (wait for input) or `END ` (the session ends), then ASCII text.
SCREEN = {"type": "string", "maxLength": MAX_SCREEN, "pattern": "^(CON|END) "}
# When USSD_SHARED_SECRET is set, the aggregator proves itself with one of these.
SECRET_PARAMS = (
    Param("X-USSD-Secret", "header", {"type": "string"}, required=False),
    Param("secret", "query", {"type": "string"}, required=False),
)


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
