"""HTTP edges: one blueprint per concern, all thin over the domain modules.

The top floor with `cli` and `processes`: a blueprint may import any feature, and nothing below
imports the web. `create_app` registers each blueprint; the staff console is `web.console`.
"""

from __future__ import annotations

from flask import Flask, current_app

from notifier.core.runtime import Services


def services() -> Services:
    """The service container of the running app."""
    found: Services = current_app.extensions["notifier"]
    return found


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["notifier"]
    return found
