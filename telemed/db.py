"""The database layer every entry point shares: metadata, types and engine tuning.

SQLite is made fit for concurrent writers: WAL, a busy timeout, and write transactions
that take the write lock up front (``BEGIN IMMEDIATE``), so a writer waits for the lock
instead of failing on upgrade with "database is locked". Whether a transaction will
write is declared by the entry point through :func:`write_intent`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite keeps naive UTC text that sorts correctly.
    Naive datetimes are refused at bind time: a naive value is a bug, not a local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "telemed_write_intent", default=True
)


def set_write_intent(value: bool) -> contextvars.Token[bool]:
    return _write_intent.set(value)


def reset_write_intent(token: contextvars.Token[bool]) -> None:
    _write_intent.reset(token)


@contextlib.contextmanager
def write_intent(value: bool = True) -> Iterator[None]:
    """Declare whether transactions begun inside will write (SQLite: BEGIN IMMEDIATE)."""
    token = _write_intent.set(value)
    try:
        yield
    finally:
        _write_intent.reset(token)


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Take over pysqlite's transaction handling so BEGIN can be IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def utcnow_column_default() -> datetime:
    from telemed import clock

    return clock.now()


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or is too busy to answer now
    (refused or lost connection, pool exhausted, SQLite locked or unopenable), as opposed
    to a bug or a refused statement."""
    from sqlalchemy import exc

    if isinstance(error, (exc.DisconnectionError, exc.TimeoutError)):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        text = str(error.orig if getattr(error, "orig", None) else error).lower()
        return not any(bug in text for bug in ("no such", "syntax error", "has no column"))
    return False
