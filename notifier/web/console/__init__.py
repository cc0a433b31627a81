"""The staff console: server-rendered pages over the domain modules, Vietnamese first.

Every page but /login needs a signed-in staff user; what each role may do is in
`notifier.staff.accounts.PERMISSIONS`. Forms carry a CSRF token, every change is audited, and
pages are sent with a strict Content-Security-Policy (no inline scripts or styles).
`base` holds what every page shares; `pages`, `reception`, `sending` and `admin` hold the views.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFError

from notifier.core.config import Settings
from notifier.web.console import admin, base, pages, reception, sending  # noqa: F401  (routes)
from notifier.web.staff_session import csrf


def init_app(app: Flask, settings: Settings) -> None:
    """CSRF for every HTML form of the app, then the console's blueprint and views."""
    app.config.update(
        # Checked in `_csrf_for_html` so that JSON and webhook endpoints, which authenticate
        # otherwise, never need exempting one by one.
        WTF_CSRF_CHECK_DEFAULT=False,
        # The token lives as long as the staff session; forms may stay open for hours.
        WTF_CSRF_TIME_LIMIT=None,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.CONSOLE_SESSION_HOURS),
    )
    csrf.init_app(app)
    app.before_request(base.csrf_for_html)
    app.register_error_handler(CSRFError, base.csrf_error)

    app.register_blueprint(base.bp)
