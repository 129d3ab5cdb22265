"""Connections, transactions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from dstrail.store.repositories import Repositories

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, one writer through ``BEGIN IMMEDIATE``, readers through plain ``BEGIN``."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """The database: hands out transactions as ``Repositories``; the caller's block owns them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine_for(url)
        self.dialect = self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Repositories]:
        """A read-write transaction: committed when the block ends, rolled back if it raises."""
        options: dict[str, Any] = {"sqlite_begin": "IMMEDIATE"} if self.dialect == "sqlite" else {}
        with (
            self.engine.connect().execution_options(**options) as connection,
            connection.begin(),
        ):
            yield Repositories(connection)

    @contextmanager
    def read(self) -> Iterator[Repositories]:
        """A read-only transaction (a consistent snapshot on both databases)."""
        with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield Repositories(connection)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
