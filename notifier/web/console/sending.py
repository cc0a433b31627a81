"""Console pages that send: a notice to one phone, to a session's bookers, or to a CSV file.

A CSV upload is validated whole first; the report is shown, and only a second, explicit
confirmation creates the messages. Between the two the upload waits in Redis for an hour
under a random token, bound to the user who sent it; the token becomes the messages'
batch id, so confirming twice sends once.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from notifier import reception
from notifier.messaging import delivery
from notifier.messaging import search as outbox_search
from notifier.models import Message
from notifier.notices import composer, rows
from notifier.text import templating
from notifier.web import services
from notifier.web.console.base import audit_action, bp, current_user, render, requires

UPLOAD_TTL_SECONDS = 3600
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_PAIR_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*?)\s*$")
MODES = ("one", "session", "csv")


class FormError(ValueError):
    def __init__(self, field: str, vi: str, en: str) -> None:
        super().__init__(en)
        self.field, self.vi, self.en = field, vi, en


def parse_pairs(text: str) -> dict[str, str]:
    """``name = value`` lines (``:`` works too) into personalisation."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _PAIR_RE.match(line)
        if match is None:
            raise FormError(
                "personalisation",
                f"Dòng {number} không đúng dạng ten = gia tri",
                f"Line {number} is not of the form name = value",
            )
        values[match.group(1)] = match.group(2)
    return values


def content_from_form() -> composer.Content:
    template = request.form.get("template", "").strip()[:64] or None
    body = request.form.get("body", "")[: templating.MAX_INLINE_TEMPLATE + 1] or None
    language = request.form.get("language", "vi")
    if language not in templating.LANGUAGES:
        language = "vi"
    if template and template not in templating.template_names():
        raise FormError("template", "Không có mẫu tin này", "Unknown template")
    try:
        return composer.Content(
            template=template, body=None if template else body, language=language
        )
    except composer.NoticeError as exc:
        raise FormError("template", exc.vi, str(exc)) from None


def upcoming_sessions() -> list[reception.SessionInfo]:
    with services().db.session() as db:
        return reception.unfinished_sessions(db, open_only=True, limit=50)


def form_page(mode: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render(
        "notice_new.html",
        status,
        mode=mode if mode in MODES else "one",
        templates=templating.template_names(),
        sessions=upcoming_sessions(),
        form=request.form if request.method == "POST" else {},
        max_rows=services().settings.NOTICE_CSV_MAX_ROWS,
        **context,
    )


@bp.get("/notices/new")
@requires("send")
def notice_new() -> ResponseReturnValue:
    return form_page(request.args.get("mode", "one"))


def create_audited(
    db: Session,
    content: composer.Content,
    recipients: list[rows.Recipient],
    *,
    bulk: bool,
    target: str,
    batch_id: str | None = None,
    **detail: Any,
) -> list[Message]:
    """The notice's messages and its audit entry, in the caller's transaction."""
    created = composer.create(
        db,
        services().settings,
        content,
        recipients,
        urgent=not bulk,
        essential=not bulk,
        staff_user_id=current_user().id,
        batch_id=batch_id,
    )
    db.flush()
    audit_action(
        db,
        "notice_sent",
        target or f"message:{created[0].id}",
        {"template": content.template, "to": len(created), "batch": batch_id, **detail},
    )
    return created


def summary(created: list[Message]) -> dict[str, int]:
    return dict(Counter(message.status for message in created))


@bp.post("/notices/new/one")
@requires("send")
def notice_one() -> ResponseReturnValue:
    svc = services()
    try:
        content = content_from_form()
        personalisation = parse_pairs(request.form.get("personalisation", "")[:5000])
    except FormError as exc:
        return form_page("one", 400, error=exc)
    raw_phone = request.form.get("phone", "")[:64]
    recipient, errors = composer.check_recipient(svc.settings, content, raw_phone, personalisation)
    if recipient is None:
        return form_page("one", 400, row_errors=errors)
    user = current_user()
    with svc.db.transaction() as db:
        created = composer.create(
            db,
            svc.settings,
            content,
            [recipient],
            urgent=True,
            essential=True,
            staff_user_id=user.id,
        )
        db.flush()
        audit_action(
            db, "notice_sent", f"message:{created[0].id}", {"template": content.template, "to": 1}
        )
    delivery.enqueue_committed(svc, created)
    return render("notice_done.html", created=created, counts=summary(created), batch=None)


@bp.post("/notices/new/session")
@requires("send")
def notice_session() -> ResponseReturnValue:
    svc = services()
    try:
        content = content_from_form()
        session_id = int(request.form.get("session_id", ""))
    except FormError as exc:
        return form_page("session", 400, error=exc)
    except ValueError:
        return form_page(
            "session",
            400,
            error=FormError("session_id", "Chọn một buổi tiếp", "Choose a reception session"),
        )
    batch_id = secrets.token_urlsafe(16)
    with svc.db.transaction() as db:
        try:
            checked = composer.session_recipients(db, svc.settings, content, session_id)
        except composer.NoticeError as exc:
            return form_page("session", 400, error=FormError("session_id", exc.vi, str(exc)))
        if not checked.valid:
            return form_page("session", 400, row_errors=checked.errors, nobody=not checked.errors)
        created = create_audited(
            db,
            content,
            checked.valid,
            bulk=False,
            target=f"session:{session_id}",
            batch_id=batch_id,
        )
    delivery.enqueue_committed(svc, created)
    return render(
        "notice_done.html",
        created=created,
        counts=summary(created),
        batch=batch_id,
        row_errors=checked.errors,
    )


# --- CSV: validate, report, confirm -----------------------------------------------------------


def _upload_key(token: str) -> str:
    return f"notice-upload:{token}"


@bp.post("/notices/new/csv")
@requires("send")
def notice_csv() -> ResponseReturnValue:
    svc = services()
    try:
        content = content_from_form()
    except FormError as exc:
        return form_page("csv", 400, error=exc)
    upload = request.files.get("file")
    data = upload.read(svc.settings.NOTICE_CSV_MAX_BYTES + 1) if upload else b""
    if len(data) > svc.settings.NOTICE_CSV_MAX_BYTES:
        return form_page(
            "csv",
            413,
            error=FormError("file", "Tệp quá lớn", "The file is too large"),
        )
    try:
        checked = composer.validate_csv(svc.settings, content, data)
    except composer.NoticeError as exc:
        return form_page("csv", 400, error=FormError("file", exc.vi, str(exc)))
    token = secrets.token_urlsafe(24)
    filename = (upload.filename or "")[:200] if upload else ""
    stored = {
        "staff_user_id": current_user().id,
        "template": content.template,
        "body": content.body,
        "language": content.language,
        "csv": data.decode("utf-8-sig"),
        "filename": filename,
    }
    try:
        svc.redis.set(_upload_key(token), json.dumps(stored), ex=UPLOAD_TTL_SECONDS)
    except RedisError:
        return form_page(
            "csv",
            503,
            error=FormError(
                "file",
                "Không lưu được tệp tạm thời, xin thử lại sau ít phút",
                "The upload could not be kept; try again in a few minutes",
            ),
        )
    with svc.db.transaction() as db:
        audit_action(
            db,
            "notice_csv_checked",
            filename or None,
            {"valid": len(checked.valid), "errors": len(checked.errors), "token": token[:8]},
        )
    return render(
        "notice_report.html",
        checked=checked,
        token=token,
        content=content,
        filename=filename,
        sample=checked.valid[0] if checked.valid else None,
        cost=checked.segments * svc.settings.SMS_COST_PER_SEGMENT_VND,
    )


@bp.post("/notices/csv/<token>/send")
@requires("send")
def notice_csv_send(token: str) -> ResponseReturnValue:
    svc = services()
    user = current_user()
    if not _TOKEN_RE.match(token):
        return render("error.html", 404, message="upload_expired")
    with svc.db.session() as db:
        if composer.batch_exists(db, token):
            already = outbox_search.batch(db, token)
            return render("notice_done.html", created=already, counts=summary(already), batch=token)
    try:
        # Taken atomically: of two confirmations racing, only one finds the upload.
        raw = svc.redis.getdel(_upload_key(token))
    except RedisError:
        raw = None
    stored = json.loads(raw) if raw else None
    if not stored or stored.get("staff_user_id") != user.id:
        return render("error.html", 404, message="upload_expired")
    content = composer.Content(stored["template"], stored["body"], stored["language"])
    # Checked again: a template or an opt-out may have changed since the report.
    checked = composer.validate_csv(svc.settings, content, stored["csv"].encode())
    with svc.db.transaction() as db:
        created = create_audited(
            db,
            content,
            checked.valid,
            bulk=True,
            target=str(stored["filename"] or "csv"),
            batch_id=token,
            skipped_rows=len({e.line for e in checked.errors}),
        )
    delivery.enqueue_committed(svc, created)
    return render(
        "notice_done.html",
        created=created,
        counts=summary(created),
        batch=token,
        row_errors=checked.errors,
    )
