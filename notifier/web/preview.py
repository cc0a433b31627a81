"""POST /api/v1/preview: a text as it would be sent, for the console's live counter and API users."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from notifier.notices import composer
from notifier.schemas.preview import PreviewIn, PreviewOut
from notifier.text import templating
from notifier.web import services
from notifier.web.apidoc import documented, reply
from notifier.web.auth import require_api_key
from notifier.web.problems import ApiProblem, invalid_request
from notifier.web.staff_session import csrf, load_staff

bp = Blueprint("preview", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 16 * 1024


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
@documented(
    "previewText",
    tag="notifications",
    body=PreviewIn,
    responses={200: reply("The preview.", PreviewOut)},
    problems=(400, 401, 413, 415, 429),
    bearer=True,
)
def preview() -> ResponseReturnValue:
    """A text as it would be sent: folded, encoding, segments, cost.

    A template and its personalisation, or a body (whose `{{ name }}` placeholders are filled
    from the personalisation). Nothing is sent. A text over the length limit is still previewed,
    with `within_limit: false`. The staff console calls it with its session cookie and an
    `X-CSRFToken` header instead of a key.
    """
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
