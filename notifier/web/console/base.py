"""What every console page shares: the blueprint, the signed-in user's rights, auditing, rendering.

Every page but /login needs a signed-in staff user; what each role may do is in
`notifier.staff.accounts.PERMISSIONS`. Forms carry a CSRF token, every change is audited, and pages
are sent with a strict Content-Security-Policy (no inline scripts or styles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.wrappers import Response as BaseResponse

from notifier.messaging import reasons
from notifier.models import StaffUser
from notifier.staff import accounts, audit
from notifier.text import phones
from notifier.web import services
from notifier.web.console.i18n import LANGUAGES, translate
from notifier.web.console.i18n import label as label_for
from notifier.web.problems import problem, wants_problem_json
from notifier.web.staff_session import csrf, load_staff

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/console",
)

# Pages an anonymous visitor may open.
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.set_language", "console.static"})

UPLOAD_ENDPOINTS = frozenset({"console.notice_csv"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_for_html() -> None:
    if request.endpoint in UPLOAD_ENDPOINTS:
        # Set before anything reads the form: the app-wide limit is for JSON bodies.
        request.max_content_length = services().settings.NOTICE_CSV_MAX_BYTES + 64 * 1024
    if request.endpoint and not wants_problem_json():
        csrf.protect()


def csrf_error(exc: CSRFError) -> ResponseReturnValue:
    if wants_problem_json():
        return problem(400, "CSRF token missing or invalid", exc.description)
    return render_template("console/error.html", status=400, message="csrf_failed"), 400


# --- the signed-in user -----------------------------------------------------------------------


def current_user() -> StaffUser:
    user = load_staff()
    if user is None:
        abort(401)
    return user


def can(permission: str) -> bool:
    user = load_staff()
    return user is not None and accounts.can(user.role, permission)


def requires(permission: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse (403) a view to users whose role lacks `permission`."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def client_ip() -> str:
    return request.remote_addr or "unknown"


def audit_action(
    db: Any, action: str, target: str | None = None, detail: Mapping[str, Any] | None = None
) -> None:
    """Record what the signed-in user did, in the caller's transaction."""
    user = load_staff()
    actor = f"staff:{user.username}" if user else "anonymous"
    audit.record(db, actor, action, target, detail, client_ip())


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths: never send a user to another host after logging in."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


@bp.before_request
def _require_login() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if load_staff() is None:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    return None


@bp.errorhandler(403)
def _forbidden(_exc: Exception) -> ResponseReturnValue:
    return render("error.html", 403, message="forbidden")


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> ResponseReturnValue:
    return render("error.html", 404, message="not_found")


@bp.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# --- what templates can use -------------------------------------------------------------------


def language() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else LANGUAGES[0]


def t(text: str, **values: Any) -> str:
    return translate(text, language(), **values)


def show_phone(phone: str | None) -> str:
    """A number as this user may see it: masked for viewers."""
    if not phone:
        return ""
    return phone if can("see_phones") else phones.mask(phone)


def show_text(text: str | None) -> str:
    """Free text (message bodies, replies) with phone numbers masked for viewers."""
    if not text:
        return ""
    return text if can("see_phones") else phones.mask_text(text)


def local_time(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(services().settings.tz).strftime(fmt)


def local_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_time(value, "%d/%m/%Y")
    return value.strftime("%d/%m/%Y")


def money(value: int) -> str:
    grouped = f"{value:,}"
    return grouped.replace(",", ".") + " ₫" if language() == "vi" else f"{grouped} VND"


def describe_reason(reason: str | None) -> str:
    return reasons.describe(reason, language())


def page_link(number: int) -> str:
    """This page's URL, its query string kept, at page `number` of its list."""
    args: dict[str, Any] = {
        **(request.view_args or {}),
        **request.args.to_dict(),
        "page": str(number),
    }
    return url_for(request.endpoint or "console.dashboard", **args)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "t": t,
        "lang": language(),
        "user": load_staff(),
        "can": can,
        "csrf_token": generate_csrf,
        "show_phone": show_phone,
        "show_text": show_text,
        "local_time": local_time,
        "local_date": local_date,
        "money": money,
        "describe_reason": describe_reason,
        "page_link": page_link,
        "label": lambda code: label_for(code, language()),
        "console_provider": services().settings.SMS_PROVIDER == "console",
        "has_simulator": "console.simulator" in current_app.view_functions,
        "reason_codes": reasons.REASONS,
    }


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"console/{template}", **context), status


def back(endpoint: str, **values: Any) -> BaseResponse:
    return redirect(url_for(endpoint, **values))
