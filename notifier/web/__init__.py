"""HTTP edges: one blueprint per concern, all thin over the domain modules."""

from __future__ import annotations

from flask import Flask, current_app

from notifier.runtime import Services


def services() -> Services:
    """The service container of the running app."""
    found: Services = current_app.extensions["notifier"]
    return found


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["notifier"]
    return found


def register_blueprints(app: Flask) -> None:
    from notifier import console
    from notifier.web import (
        android_gateway,
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
    console.init_app(app, services_of(app).settings)
    app.register_blueprint(metrics.bp)
