"""POST /ussd: the USSD menu, as aggregators call it (form in, `CON …`/`END …` plain text out)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from notifier.schemas.openapi import Content, Reply
from notifier.schemas.ussd import SCREEN, SECRET_PARAMS, UssdForm
from notifier.ussd import menu as ussd_menu
from notifier.web import guards, services
from notifier.web.apidoc import documented
from notifier.web.inputs import parse_part
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

MAX_BODY_BYTES = 64 * 1024
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _check_secret(secret: str) -> None:
    """403 unless the request carries the shared secret (header, else query parameter)."""
    guards.refuse_locked_out_client()
    given = request.headers.get("X-USSD-Secret") or request.args.get("secret") or ""
    if not hmac.compare_digest(given.encode(), secret.encode()):
        log.warning("USSD request refused: missing or wrong shared secret")
        guards.authentication_failed()
        raise ApiProblem(403, "Forbidden", "The USSD shared secret is missing or wrong.")


@bp.post("/ussd")
@documented(
    "ussdMenu",
    tag="ussd",
    body=Content(UssdForm, media_type=FORMS[0]),
    params=SECRET_PARAMS,
    responses={
        200: Reply(
            "The screen: `CON ` (wait for input) or `END ` (the session ends), then ASCII "
            "text; at most 182 characters.",
            Content(schema=SCREEN, media_type="text/plain"),
        ),
    },
    problems=(400, 403, 413, 415, 429),
)
def menu() -> ResponseReturnValue:
    """One step of a citizen's USSD session.

    Called by the USSD aggregator on every step, with the whole path of inputs in `text`. When
    USSD_SHARED_SECRET is set, it must come in `X-USSD-Secret` or in the `secret` query
    parameter. Menu tree: docs/ussd.md.
    """
    request.max_content_length = MAX_BODY_BYTES
    secret = services().settings.USSD_SHARED_SECRET
    if secret:
        _check_secret(secret)
    else:
        guards.limit_ip("ussd")
    if request.content_length or request.mimetype:
        guards.require_mimetype(*FORMS)  # an empty body is an empty form: 400 naming the fields
    form = parse_part(UssdForm, request.form.to_dict(), "")
    call = ussd_menu.UssdRequest(form.sessionId, form.serviceCode, form.phoneNumber, form.text)
    if ussd_menu.first_request(services(), call):
        guards.limit_phone("ussd", form.phoneNumber)
    return Response(ussd_menu.respond(services(), call), mimetype="text/plain")
