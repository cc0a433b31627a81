"""Flask CLI: `flask --app wsgi db upgrade`, `flask --app wsgi notifier …`."""

from __future__ import annotations

import faulthandler
import json
import signal
import threading
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from notifier.api import keys as api_keys
from notifier.core.config import PROJECT_ROOT
from notifier.core.runtime import QUEUE_NAMES, Services, current
from notifier.processes import scheduler
from notifier.reminders import planner
from notifier.staff import accounts, audit
from notifier.text.phones import mask

db_cli = AppGroup("db", help="Database schema.")
notifier_cli = AppGroup("notifier", help="Operate the notifier.")


def alembic_config(url: str) -> object:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade_schema(services: Services, revision: str = "head") -> None:
    from alembic import command

    if services.db.is_sqlite:
        Path(services.db.engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(services.settings.DATABASE_URL), revision)  # type: ignore[arg-type]


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to REVISION (default: head)."""
    upgrade_schema(current(), revision)
    click.echo(f"database at {revision}")


@notifier_cli.command("create-api-key")
@click.argument("name")
@click.option("--kind", type=click.Choice(api_keys.KINDS), default="live", show_default=True)
@click.option("--callback-url", help="Where final statuses of this key's messages are POSTed.")
@click.option("--callback-secret", help="HMAC key signing the callbacks (default: a random one).")
@click.option(
    "--rate-limit", type=int, help="Requests a minute (default API_RATE_LIMIT_PER_MINUTE; 0: none)."
)
@click.option("--daily-cap", type=int, help="Messages a day (default API_DAILY_CAP; 0: none).")
def create_api_key(
    name: str,
    kind: str,
    callback_url: str | None,
    callback_secret: str | None,
    rate_limit: int | None,
    daily_cap: int | None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    try:
        with current().db.transaction() as session:
            api_key, plaintext = api_keys.create_api_key(
                session,
                name,
                kind,
                callback_url=callback_url,
                callback_secret=callback_secret,
                rate_limit_per_minute=rate_limit,
                daily_cap=daily_cap,
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(plaintext)
    if api_key.callback_url and not callback_secret:
        click.echo(f"callback secret: {api_key.callback_secret}", err=True)


@notifier_cli.command("revoke-api-key")
@click.argument("key")
def revoke_api_key(key: str) -> None:
    """Revoke an API key, given by its id or its prefix (see list-api-keys)."""
    with current().db.transaction() as session:
        api_key = api_keys.find(session, key)
        if api_key is None:
            raise click.ClickException(f"no API key has the id or prefix {key!r}")
        api_keys.revoke(session, api_key)
        click.echo(f"revoked {api_key.id} {api_key.name} ({api_key.prefix}…)")


@notifier_cli.command("list-api-keys")
def list_api_keys() -> None:
    """List API keys (never the keys themselves)."""
    services = current()
    tz = services.settings.tz
    with services.db.session() as session:
        keys = api_keys.list_keys(session)
        if not keys:
            click.echo("no API keys")
            return
        click.echo(f"{'id':<4}{'prefix':<14}{'kind':<6}{'name':<22}{'limits':<22}state")
        for api_key in keys:
            limits = api_keys.limits(services.settings, api_key)
            state = (
                f"revoked {api_key.revoked_at.astimezone(tz):%Y-%m-%d %H:%M}"
                if api_key.revoked_at
                else "active"
            )
            rates = f"{limits.per_minute or '-'}/min {limits.daily_cap or '-'}/day"
            click.echo(
                f"{api_key.id:<4}{api_key.prefix:<14}{api_key.kind:<6}{api_key.name[:20]:<22}"
                f"{rates:<22}{state}"
                + (f"  callback {api_key.callback_url}" if api_key.callback_url else "")
            )


@notifier_cli.command("create-staff")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_staff(username: str, role: str, password: str) -> None:
    """Create a console user."""
    try:
        with current().db.transaction() as session:
            user = accounts.create_user(session, username, password, role)
            audit.record(session, "cli", "staff_created", f"staff:{user.username}", {"role": role})
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {username}")


@notifier_cli.command("seed-demo")
def seed_demo() -> None:
    """Fill a demo commune: reception sessions, dossiers, staff user `demo`."""
    from notifier.seeding import demo

    summary = demo.seed(current())
    click.echo(summary)


@notifier_cli.command("export-phone")
@click.argument("phone")
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def export_phone(phone: str, actor: str) -> None:
    """Print, as JSON, everything held for PHONE (any written form)."""
    from notifier.privacy import subjects

    try:
        with current().db.transaction() as session:
            document = subjects.export_phone(session, phone)
            subjects.record_export(session, phone, actor=actor)
    except subjects.UnknownPhone as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@notifier_cli.command("forget-phone")
@click.argument("phone")
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def forget_phone(phone: str, actor: str) -> None:
    """Delete PHONE's personal data everywhere, keeping anonymous statistics (audited)."""
    from notifier.privacy import subjects

    try:
        with current().db.transaction() as session:
            result = subjects.forget_phone(session, phone, actor=actor)
    except subjects.UnknownPhone as exc:
        raise click.ClickException(str(exc)) from None
    if not result.found:
        click.echo("nothing held for this number")
        return
    rows = ", ".join(f"{name}: {count}" for name, count in result.rows.items() if count)
    click.echo(
        f"anonymised as {result.token} ({rows}); "
        f"{result.messages_stopped} message(s) stopped, "
        f"{result.reminders_cancelled} reminder(s) cancelled"
    )


def _dump_stacks_on_sigusr2() -> None:
    """`kill -USR2 PID` prints every thread's stack to stderr: where a stuck process waits."""
    faulthandler.register(signal.SIGUSR2, all_threads=True)


@notifier_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run a queue worker on the urgent then bulk queues."""
    from notifier.processes.worker import run_worker

    _dump_stacks_on_sigusr2()
    # One process keeps provider HTTP connections and the database pool warm across jobs; its
    # thread pool keeps SEND_CONCURRENCY provider requests in flight.
    run_worker(current(), burst=burst)


@notifier_cli.command("scheduler")
@click.option("--once", is_flag=True, help="Run every task once and exit.")
def run_scheduler(once: bool) -> None:
    """Run periodic work: message sweeps, reminders, purges."""
    services = current()
    if once:
        scheduler.run_once(services)
        return
    _dump_stacks_on_sigusr2()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.run_forever(services, stop)


@notifier_cli.command("reminders")
@click.option("--limit", default=50, show_default=True, help="How many to list.")
def list_reminders(limit: int) -> None:
    """List scheduled reminders, soonest first (phone numbers masked)."""
    services = current()
    tz = services.settings.tz
    click.echo(f"{'due (local)':<17} {'kind':<20} {'to':<16} for")
    with services.db.session() as session:
        for row in planner.upcoming(session, limit=limit):
            if row.booking is not None:
                phone, subject = row.booking.phone, f"booking {row.booking.code}"
            else:
                assert row.dossier is not None
                phone, subject = row.dossier.phone or "", f"dossier {row.dossier.code}"
            due = row.due_at.astimezone(tz)
            click.echo(f"{due:%Y-%m-%d %H:%M} {row.kind:<20} {mask(phone):<16} {subject}")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(notifier_cli)


__all__ = ["QUEUE_NAMES", "init_app"]
