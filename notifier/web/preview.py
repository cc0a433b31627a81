"""POST /api/v1/preview: a text as it would be sent, for the console's live counter and API users."""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from notifier.notices import composer
from notifier.text import templating
from notifier.web import services
from notifier.web.auth import require_api_key
from notifier.web.problems import ApiProblem, invalid_request
from notifier.web.staff_session import csrf, load_staff

bp = Blueprint("preview", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 16 * 1024

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


def _authenticate() -> None:
    """A bearer API key, or a signed-in staff session proving itself with the CSRF header."""
    if request.headers.get("Authorization"):
        require_api_key()
        return
    if load_staff() is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "Send an API key as 'Authorization: Bearer <key>', or sign in to the console.",
            headers={"WWW-Authenticate": 'Bearer realm="notifier"'},
        )
    csrf.protect()


@bp.post("/preview")
def preview() -> ResponseReturnValue:
    request.max_content_length = MAX_BODY_BYTES
    _authenticate()
    if not request.is_json:
        raise ApiProblem(415, "Unsupported Media Type", "Send the request as application/json.")
    try:
        data = PreviewIn.model_validate_json(request.get_data())
    except ValidationError as exc:
        raise invalid_request(exc) from None
    personalisation = {
        key: "" if value is None else str(value) for key, value in data.personalisation.items()
    }
    try:
        content = composer.Content(template=data.template, body=data.body, language=data.language)
        result = composer.preview(services().settings, content, personalisation)
    except composer.NoticeError as exc:
        raise ApiProblem(
            400, "Invalid request", str(exc), [{"field": "template", "message": str(exc)}]
        ) from None
    except templating.MissingPersonalisation as exc:
        raise ApiProblem(
            400,
            "Missing personalisation",
            str(exc),
            [{"field": f"personalisation.{name}", "message": "missing"} for name in exc.missing],
        ) from None
    except templating.UnknownTemplate as exc:
        raise ApiProblem(
            400, "Unknown template", str(exc), [{"field": "template", "message": str(exc)}]
        ) from None
    except templating.TemplateError as exc:
        field = "template" if data.template else "body"
        raise ApiProblem(
            400, "Template error", str(exc), [{"field": field, "message": str(exc)}]
        ) from None
    out = PreviewOut(template=data.template, language=data.language, **result.to_dict())
    return jsonify(out.model_dump(mode="json"))
