"""Console pages: login, logout, language, dashboard, dossiers, messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import abort, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from notifier.core.db import utcnow
from notifier.dossiers import search as dossier_search
from notifier.messaging import delivery, statuses
from notifier.messaging import search as outbox_search
from notifier.notices import composer
from notifier.reports import dashboard as stats
from notifier.staff import accounts, audit
from notifier.text import templating
from notifier.web import services
from notifier.web.console.base import (
    audit_action,
    back,
    bp,
    client_ip,
    current_user,
    render,
    requires,
    safe_next,
)
from notifier.web.console.i18n import LANGUAGES
from notifier.web.staff_session import load_staff, password_stamp

# --- sign in and out --------------------------------------------------------------------------


def throttle() -> accounts.LoginThrottle:
    settings = services().settings
    return accounts.LoginThrottle(
        services().rate_limiter,
        settings.CONSOLE_LOGIN_MAX_FAILURES,
        settings.CONSOLE_LOGIN_LOCKOUT_SECONDS,
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"), url_for("console.dashboard"))
    if request.method == "GET":
        if load_staff() is not None:
            return redirect(target)
        return render("login.html", next=target)
    username = request.form.get("username", "").strip().lower()[:64]
    password = request.form.get("password", "")[:200]
    ip = client_ip()
    limiter = throttle()
    if limiter.blocked(username, ip):
        with services().db.transaction() as db:
            audit_action(db, "login_blocked", f"staff:{username}")
        return render("login.html", 429, next=target, error="login_blocked", username=username)
    with services().db.transaction() as db:
        user = accounts.authenticate(db, username, password) if username and password else None
        if user is None:
            audit_action(db, "login_failed", f"staff:{username}")
        else:
            user.last_login_at = utcnow()
            audit.record(db, f"staff:{user.username}", "login", f"staff:{user.username}", ip=ip)
    if user is None:
        limiter.failed(username, ip)
        return render("login.html", 401, next=target, error="login_failed", username=username)
    limiter.succeeded(username, ip)
    # A fresh session on login: nothing chosen before signing in carries over (fixation).
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session.update(staff_id=user.id, stamp=password_stamp(user))
    if lang:
        session["lang"] = lang
    return redirect(target)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    user = load_staff()
    if user is not None:
        with services().db.transaction() as db:
            audit_action(db, "logout", f"staff:{user.username}")
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return back("console.login")


@bp.get("/lang/<code>")
def set_language(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.args.get("next"), url_for("console.dashboard")))


# --- helpers for lists ------------------------------------------------------------------------


def page_args() -> tuple[int, int]:
    """The page number asked for (`?page=`, from 1) and the console's page size."""
    try:
        number = max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        number = 1
    return number, services().settings.CONSOLE_PAGE_SIZE


def parse_day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def today() -> date:
    return datetime.now(services().settings.tz).date()


# --- dashboard --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str
    label: str


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 200, 24


def chart(per_day: list[stats.DayCount]) -> dict[str, Any]:
    """Stacked bars (sent, failed) per day as plain SVG geometry."""
    peak = max((d.sent + d.failed for d in per_day), default=0) or 1
    slot = (CHART_WIDTH - CHART_PAD) / max(len(per_day), 1)
    scale = (CHART_HEIGHT - CHART_PAD) / peak
    bars: list[Bar] = []
    ticks: list[tuple[float, str]] = []
    every = max(1, len(per_day) // 8)
    for index, day in enumerate(per_day):
        x = CHART_PAD + index * slot + slot * 0.15
        width = max(slot * 0.7, 1.0)
        base = CHART_HEIGHT - CHART_PAD
        sent_h = day.sent * scale
        failed_h = day.failed * scale
        label = f"{day.day:%d/%m}: {day.sent} / {day.failed}"
        if day.sent:
            bars.append(Bar(x, base - sent_h, width, sent_h, "sent", label))
        if day.failed:
            bars.append(Bar(x, base - sent_h - failed_h, width, failed_h, "failed", label))
        if index % every == 0:
            ticks.append((x + width / 2, f"{day.day:%d/%m}"))
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "peak": peak,
        "bars": bars,
        "ticks": ticks,
        "total_sent": sum(d.sent for d in per_day),
        "total_failed": sum(d.failed for d in per_day),
    }


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    now_day = today()
    default = stats.Period.last_days(now_day)
    start = parse_day(request.args.get("from")) or default.start
    end = parse_day(request.args.get("to")) or default.end
    error = None
    try:
        period = stats.Period(start, end)
    except ValueError:
        period, error = default, "bad_period"
    with services().db.session() as db:
        figures = stats.dashboard(db, services().settings, period, now_day)
    return render(
        "dashboard.html",
        400 if error else 200,
        figures=figures,
        chart=chart(figures.per_day),
        period=period,
        today=now_day,
        error=error,
        cost_per_segment=services().settings.SMS_COST_PER_SEGMENT_VND,
    )


# --- dossiers ---------------------------------------------------------------------------------


@bp.get("/dossiers")
def dossiers() -> ResponseReturnValue:
    q = request.args.get("q", "")[:100]
    with services().db.session() as db:
        page = dossier_search.search(db, q, *page_args())
    return render("dossiers.html", page=page, q=q, today=today())


@bp.get("/dossiers/<int:dossier_id>")
def dossier(dossier_id: int) -> ResponseReturnValue:
    with services().db.session() as db:
        found = dossier_search.timeline(db, dossier_id)
    if found is None:
        abort(404)
    return render("dossier.html", dossier=found.dossier, timeline=found.entries, today=today())


# --- messages ---------------------------------------------------------------------------------


def message_filters() -> tuple[outbox_search.MessageFilter, dict[str, str]]:
    """The list's filters from the query string, and the raw values to show in the form."""
    args = {
        key: request.args.get(key, "").strip()[:100]
        for key in ("status", "template", "from", "to", "phone", "kind", "batch")
    }
    filters = outbox_search.MessageFilter(
        status=args["status"],
        template=args["template"],
        kind=args["kind"],
        batch=args["batch"],
        phone=args["phone"],
        start=parse_day(args["from"]),
        end=parse_day(args["to"]),
    )
    return filters, args


@bp.get("/messages")
def messages() -> ResponseReturnValue:
    filters, args = message_filters()
    svc = services()
    with svc.db.session() as db:
        page = outbox_search.messages(db, svc.settings, filters, *page_args())
    return render(
        "messages.html",
        page=page,
        args=args,
        statuses=statuses.ALL,
        templates=templating.template_names(),
    )


@bp.get("/messages/<message_id>")
def message(message_id: str) -> ResponseReturnValue:
    with services().db.session() as db:
        found = outbox_search.message(db, message_id[:36])
    if found is None:
        abort(404)
    shown, sender = found
    return render("message.html", message=shown, sender=sender)


@bp.post("/messages/<message_id>/resend")
@requires("send")
def resend(message_id: str) -> ResponseReturnValue:
    user = current_user()
    svc = services()
    try:
        with svc.db.transaction() as db:
            created = composer.resend(db, svc.settings, message_id[:36], staff_user_id=user.id)
            db.flush()
            audit_action(db, "message_resend", f"message:{message_id}", {"new": created.id})
    except composer.NoticeError as exc:
        return render("error.html", 409, message="resend_refused", detail=exc.vi, en=str(exc))
    delivery.enqueue_committed(svc, [created])
    return back("console.message", message_id=created.id)
