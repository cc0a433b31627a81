"""notifier: SMS and USSD notices for a commune's public administrative service centre."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

from notifier.core.config import INSTANCE_DIR, Settings
from notifier.core.logs import configure_logging
from notifier.core.runtime import Services, install
from notifier.messaging import template_check


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

    # Loaded here, not at the top: importing any module of the package must not load the web.
    from notifier import cli
    from notifier.web.problems import register_error_handlers

    register_blueprints(app, settings)
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


def register_blueprints(app: Flask, settings: Settings) -> None:
    """Every HTTP edge of the service, one blueprint per concern; the console last but one."""
    from notifier.web import (
        android_gateway,
        console,
        dossier_events,
        health,
        inbound_api,
        metrics,
        notifications,
        openapi,
        preview,
        reception_api,
        twilio,
        ussd,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(dossier_events.bp)
    app.register_blueprint(twilio.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(android_gateway.bp)
    app.register_blueprint(reception_api.bp)
    app.register_blueprint(inbound_api.bp)
    app.register_blueprint(ussd.bp)
    app.register_blueprint(preview.bp)
    console.init_app(app, settings)
    app.register_blueprint(metrics.bp)
