"""notifier: SMS and USSD notices for a commune's public administrative service centre."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

from notifier import template_check
from notifier.config import INSTANCE_DIR, Settings
from notifier.logs import configure_logging
from notifier.runtime import Services, install


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory. `config` overrides environment settings (used by tests)."""
    settings = Settings.from_env(config)
    configure_logging(settings.LOG_LEVEL, settings.secrets)
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    if not settings.SECRET_KEY:
        logging.getLogger(__name__).warning(
            "SECRET_KEY is not set: console sessions use a random key"
        )
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY or secrets.token_hex(32),
        TESTING=settings.TESTING,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.PUBLIC_BASE_URL.startswith("https://"),
        JSON_SORT_KEYS=False,
    )
    # A template that cannot fit the hard length limit is a deployment error: refuse to start.
    template_check.check(settings)
    app.extensions["notifier"] = install(Services.from_settings(settings))

    from notifier import cli
    from notifier.web import register_blueprints
    from notifier.web.problems import register_error_handlers

    register_blueprints(app)
    register_error_handlers(app)
    cli.init_app(app)
    if settings.TRUSTED_PROXIES > 0:
        # Behind a proxy every request comes from the proxy's address: per-address limits and
        # the failed-authentication lockout would then count all clients as one.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.TRUSTED_PROXIES, x_proto=settings.TRUSTED_PROXIES
        )
    return app
