"""Console pages: login, logout, language, dashboard, dossiers, messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import abort, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from notifier.core.db import utcnow
from notifier.messaging import delivery, statuses
from notifier.models import Dossier, DossierEvent, Message, StaffUser
from notifier.notices import composer
from notifier.reports import dashboard as stats
from notifier.staff import accounts, audit
from notifier.text import phones, templating
from notifier.web import services
from notifier.web.console import (
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


@dataclass
class Page:
    items: list[Any]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def link(self, number: int) -> str:
        args: dict[str, Any] = {
            **(request.view_args or {}),
            **request.args.to_dict(),
            "page": str(number),
        }
        return url_for(request.endpoint or "console.dashboard", **args)


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        return 1


def paginate(db: Session, stmt: Select[Any], scalars: bool = True) -> Page:
    """One count and one page query, whatever the size of the table."""
    size = services().settings.CONSOLE_PAGE_SIZE
    number = page_number()
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    query = stmt.limit(size).offset((number - 1) * size)
    items = list(db.scalars(query).all() if scalars else db.execute(query).all())
    return Page(items, total, number, size)


def parse_day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def today() -> date:
    return datetime.now(services().settings.tz).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=services().settings.tz)


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


def dossier_search(q: str) -> Select[Any]:
    stmt = select(Dossier).order_by(Dossier.created_at.desc(), Dossier.id.desc())
    q = q.strip()
    if not q:
        return stmt
    try:
        phone = phones.normalize(q)
    except phones.InvalidPhoneNumber:
        phone = None
    code = q.upper()
    conditions = [Dossier.code == code, Dossier.code.like(_like_prefix(code), escape="\\")]
    if phone:
        conditions.append(Dossier.phone == phone)
    return stmt.where(or_(*conditions))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if len(text) >= 4 else f"{escaped}%"


@bp.get("/dossiers")
def dossiers() -> ResponseReturnValue:
    q = request.args.get("q", "")[:100]
    with services().db.session() as db:
        page = paginate(db, dossier_search(q))
    return render("dossiers.html", page=page, q=q, today=today())


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # event | message
    item: Any


@bp.get("/dossiers/<int:dossier_id>")
def dossier(dossier_id: int) -> ResponseReturnValue:
    with services().db.session() as db:
        found = db.get(Dossier, dossier_id)
        if found is None:
            abort(404)
        events = db.scalars(
            select(DossierEvent).where(DossierEvent.dossier_id == dossier_id).limit(500)
        ).all()
        sent = db.scalars(
            select(Message)
            .where(Message.dossier_id == dossier_id)
            .options(selectinload(Message.history))
            .limit(500)
        ).all()
    timeline = sorted(
        [TimelineEntry(e.occurred_at, "event", e) for e in events]
        + [TimelineEntry(m.created_at, "message", m) for m in sent],
        key=lambda entry: (entry.at, entry.kind == "message"),
    )
    return render("dossier.html", dossier=found, timeline=timeline, today=today())


# --- messages ---------------------------------------------------------------------------------


def message_filters() -> tuple[Select[Any], dict[str, str]]:
    args = {
        key: request.args.get(key, "").strip()[:100]
        for key in ("status", "template", "from", "to", "phone", "kind", "batch")
    }
    stmt = select(Message).order_by(Message.created_at.desc(), Message.id)
    if args["status"] in statuses.ALL:
        stmt = stmt.where(Message.status == args["status"])
    if args["template"]:
        if args["template"] == "-":
            stmt = stmt.where(Message.template.is_(None))
        else:
            stmt = stmt.where(Message.template == args["template"])
    if args["kind"]:
        stmt = stmt.where(Message.kind == args["kind"])
    if args["batch"]:
        stmt = stmt.where(Message.batch_id == args["batch"])
    start, end = parse_day(args["from"]), parse_day(args["to"])
    if start:
        stmt = stmt.where(Message.created_at >= day_start(start))
    if end:
        stmt = stmt.where(Message.created_at < day_start(end + timedelta(days=1)))
    if args["phone"]:
        try:
            stmt = stmt.where(Message.phone == phones.normalize(args["phone"]))
        except phones.InvalidPhoneNumber:
            stmt = stmt.where(Message.phone == args["phone"])
    return stmt, args


@bp.get("/messages")
def messages() -> ResponseReturnValue:
    stmt, args = message_filters()
    with services().db.session() as db:
        page = paginate(db, stmt)
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
        found = db.scalars(
            select(Message)
            .where(Message.id == message_id[:36])
            .options(selectinload(Message.history))
        ).one_or_none()
        if found is None:
            abort(404)
        sender = db.get(StaffUser, found.staff_user_id) if found.staff_user_id else None
    return render("message.html", message=found, sender=sender)


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
