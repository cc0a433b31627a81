"""Alembic environment: the URL comes from the caller (CLI) or from DATABASE_URL."""

from __future__ import annotations

import logging

from alembic import context

from notifier import models  # noqa: F401  (registers every table)
from notifier.core.config import Settings
from notifier.core.db import Base, Database

config = context.config
# Migrations are routine; only say something when it goes wrong.
logging.getLogger("alembic").setLevel(logging.WARNING)
url = config.attributes.get("database_url") or Settings.from_env().DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    database = Database(url)
    with database.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    database.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
