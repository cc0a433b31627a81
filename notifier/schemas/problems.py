"""The one shape of every error in the API: RFC 9457 `application/problem+json`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MIMETYPE = "application/problem+json"


class ProblemError(BaseModel):
    """One thing wrong with the request; some errors add more members (`row`, `reason`…)."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="Where: a dotted path into the body, or a parameter name.")
    message: str


class Problem(BaseModel):
    """The one shape of every error (RFC 9457), as `problem()` writes it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError]
