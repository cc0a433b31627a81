"""Database engine, sessions and the declarative base. Plain SQLAlchemy 2: no Flask here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC on every backend and always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the service stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class ByDialect(Generic[T]):
    """A statement (or clause) written once for PostgreSQL and once for the other databases."""

    postgresql: T
    other: T

    def on(self, connection: Connection) -> T:
        return self.postgresql if connection.dialect.name == "postgresql" else self.other

    def map(self, build: Callable[[T], U]) -> ByDialect[U]:
        return ByDialect(build(self.postgresql), build(self.other))


def matches_any(column: ColumnElement[Any], name: str) -> ByDialect[ColumnElement[bool]]:
    """`column` is one of the list bound as `name`.

    PostgreSQL takes the list as one array, so the statement stays the same (and is prepared
    once) whatever its length; SQLite has no arrays and gets an IN list.
    """
    return ByDialect(
        column == any_(bindparam(name, type_=ARRAY(column.type))),
        column.in_(bindparam(name, expanding=True)),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), str: String()}


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine = _make_engine(url, **engine_options)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        return self.sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, **options: Any) -> Engine:
    if not url.startswith("sqlite"):
        options.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **options)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _configure_postgres_connection)
        return engine
    if url in {"sqlite://", "sqlite:///:memory:"}:
        raise ValueError(
            "an in-memory SQLite database cannot be shared by web and worker processes"
        )
    # SQLite connections are cheap; NullPool avoids sharing one across forked workers.
    options.setdefault("poolclass", NullPool)
    engine = create_engine(url, connect_args={"timeout": 30}, **options)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_postgres_connection(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares a statement once it has run five times, and PostgreSQL then settles on one
    # generic plan for it. A plan settled while a table was small reads the whole table long
    # after it has grown (a dossier look-up by code: 15 ms instead of 0.6 at 15,000 dossiers).
    # Planned afresh for each run's values, a prepared statement still skips parsing, and
    # planning these short statements costs little. A SET, not a startup option, so that
    # PgBouncer passes it.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.autocommit = autocommit


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _begin_immediate) instead of pysqlite's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # Taking the write lock at BEGIN makes SQLite serialise writers up front: a deferred
    # transaction that later upgrades to a writer can fail with "database is locked" at once,
    # whatever the busy timeout. This is what keeps bookings atomic on SQLite.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
