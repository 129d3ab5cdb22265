"""Connections, transactions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

from dstrail.domain.trail import CheckpointPolicy
from dstrail.errors import InvalidInput
from dstrail.store.group_commit import GroupCommitWriter
from dstrail.store.integrity import HeadHint
from dstrail.store.partitions import keep_partitions
from dstrail.store.repositories import ReadAhead, Repositories

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_MIGRATE_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"dstrail.migrate").digest()[:8], "big", signed=True
)
"""The PostgreSQL advisory lock migrators take (a fixed 64-bit key: every dstrail agrees)."""


def _private_file(path: Path) -> None:
    """Create a new SQLite database file (and its directory) readable by its owner alone: 0600
    in 0700. SQLite gives its ``-wal`` and ``-shm`` files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(parsed, pool_size=10, max_overflow=10)
    _ping_when_idle(engine, IDLE_PING_SECONDS)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # JSON the store reads (rows read ahead together) parsed by orjson, not json.
        set_json_loads(orjson.loads, dbapi_connection)

    return engine


IDLE_PING_SECONDS = 5.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a connection that sat idle in the pool (it may have outlived a database restart)
    before handing it out; a busy pool pays no round trip. A connection that fails the ping
    is replaced (``DisconnectionError`` makes the pool open a new one)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise DisconnectionError("an idle pooled connection did not answer a ping")


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
        # On the driver connection: a statement through SQLAlchemy costs ~40 µs more, paid by
        # every transaction (a third of a one-event write).
        driver = connection.connection.driver_connection
        assert driver is not None
        if not driver.in_transaction:  # Store.write() may have begun it on the driver already
            driver.execute(f"BEGIN {mode}")


class BackupUnsupported(InvalidInput):
    """``Store.backup_to`` on a database that dstrail does not copy itself (PostgreSQL); the
    message says which tool does."""


class Store:
    """The database: hands out transactions as ``Repositories``; the caller's block owns them."""

    def __init__(self, url: str, *, checkpoints: CheckpointPolicy | None = None) -> None:
        self.url = url
        self.checkpoints = checkpoints
        """Signs audit checkpoints as events are appended (none: appends sign nothing)."""
        self.engine = _engine_for(url)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer: this process's writers queue on a lock (instead of SQLite's
        # sleeping busy handler) and reuse one connection (no pool checkout per transaction).
        self._writer_lock = threading.Lock()
        self._writer_connection: Connection | None = None
        # Concurrent small writes (access decisions) share one transaction and one commit:
        # SQLite writes one transaction at a time anyway, and on PostgreSQL every append waits
        # for the head lock, held until its commit.
        self._group_writer = GroupCommitWriter(self._group_transaction)
        self._group_connection: Connection | None = None
        self._group_connection_used_at = 0.0
        # PostgreSQL appends that end a transaction start from the head last committed here
        # (a round trip fewer when no other process appended in between).
        self._head_hint = HeadHint() if self.dialect == "postgresql" else None

    @contextmanager
    def write(self) -> Iterator[Repositories]:
        """A read-write transaction: committed when the block ends, rolled back if it raises.

        The events recorded in it (``tx.audit.record``) are appended together just before the
        commit, under the audit head lock, which is so held for the shortest time (on
        PostgreSQL: the head read, then one statement for the events, head and counts, then the
        commit)."""
        if self.dialect != "sqlite":
            with (
                self.engine.connect() as connection,
                self._postgresql_transaction(connection) as tx,
            ):
                yield tx
            return
        with self._writer_lock:
            connection = self._sqlite_writer()
            driver = connection.connection.driver_connection
            assert driver is not None
            # Begun and ended on the driver: a block that only appends events (driver cursor)
            # never pays for SQLAlchemy's transaction bookkeeping; one that runs SQLAlchemy
            # statements joins this transaction (the begin hook sees it open) and ends it here.
            driver.execute("BEGIN IMMEDIATE")
            try:
                tx = Repositories(connection, checkpoints=self.checkpoints, defer_appends=True)
                yield tx
                tx.audit.append_deferred()
                if connection.in_transaction():
                    connection.commit()
                else:
                    driver.commit()
            except BaseException:
                if connection.in_transaction():
                    connection.rollback()
                if driver.in_transaction:
                    driver.rollback()
                raise

    @contextmanager
    def _postgresql_transaction(self, connection: Connection) -> Iterator[Repositories]:
        with connection.begin() as transaction:
            tx = Repositories(
                connection,
                checkpoints=self.checkpoints,
                defer_appends=True,
                head_hint=self._head_hint,
            )
            yield tx
            tx.audit.append_deferred(then=transaction.commit)

    @contextmanager
    def _group_transaction(self) -> Iterator[Repositories]:
        """The group-commit writer's transactions. On PostgreSQL they reuse one connection
        (no pool checkout and return per batch); after an idle spell it is dropped for a
        pooled one, which the pool pings before handing it out."""
        if self.dialect == "sqlite":
            with self.write() as tx:
                yield tx
            return
        connection = self._group_connection
        now = time.monotonic()
        if connection is not None and (
            connection.invalidated or now - self._group_connection_used_at > IDLE_PING_SECONDS
        ):
            connection.invalidate()
            connection.close()
            connection = None
        if connection is None:
            connection = self._group_connection = self.engine.connect()
        self._group_connection_used_at = now
        with self._postgresql_transaction(connection) as tx:
            yield tx

    def _sqlite_writer(self) -> Connection:
        if self._writer_connection is None or self._writer_connection.invalidated:
            if self._writer_connection is not None:
                self._writer_connection.close()
            self._writer_connection = self.engine.connect().execution_options(
                sqlite_begin="IMMEDIATE"
            )
        return self._writer_connection

    def write_grouped(
        self, work: Callable[[Repositories], T], *, read_ahead: ReadAhead | None = None
    ) -> T:
        """``work`` in a write transaction shared with concurrent callers' (one commit for
        all, ``GroupCommitWriter``); returns once committed, raises what ``work`` or the commit
        raised, and then nothing of ``work`` is kept. ``work`` may run twice and must have no
        effect outside the transaction; the events it records are appended at the end of the
        batch. ``read_ahead``: rows it will read, read with the batch's others at once."""
        return self._group_writer.run(work, read_ahead)

    @contextmanager
    def read(self) -> Iterator[Repositories]:
        """A read-only transaction (a consistent snapshot on both databases)."""
        with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield Repositories(connection, checkpoints=self.checkpoints)

    def migrate(self, *, now_ms: int | None = None) -> None:
        """Bring the schema to the newest migration; safe from several processes at once (two
        ``dstrail serve`` started together on a new database): one migrates, the others wait
        for its commit and then find the schema at head. Then, on PostgreSQL, the audit
        table's month partitions through two months after ``now_ms`` (default: now) exist."""
        config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                # Take the write lock at BEGIN: a deferred transaction that reads
                # alembic_version and then writes fails at once with "database is locked"
                # when another migrator writes (SQLite cannot wait without breaking its
                # snapshot); BEGIN IMMEDIATE waits for it (busy_timeout) and then reads.
                connection = connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                if self.dialect == "postgresql":
                    # Before alembic reads alembic_version, in the transaction it migrates in
                    # (env.py joins it): otherwise both see no schema and both create it
                    # (unique violations). Released at the commit, the others then see head.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        keep_partitions(self.engine, now_ms=now)

    def backup_to(self, path: Path, *, overwrite: bool = False) -> int:
        """A consistent copy of the SQLite database, taken while it serves (SQLite's online
        backup: one step under a read snapshot, so writers go on and the copy is one commit
        point), as one self-contained file (rollback journal, no ``-wal``) created 0600 at
        ``path``; returns its size in bytes. Written beside ``path`` and then moved in place,
        so ``path`` is never half a copy. ``FileExistsError`` when ``path`` exists, unless
        ``overwrite``; ``BackupUnsupported`` on PostgreSQL (``pg_dump`` copies it)."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite":
            safe_url = parsed.set(drivername="postgresql").render_as_string(hide_password=True)
            raise BackupUnsupported(
                "dstrail backup copies SQLite only; back up PostgreSQL with pg_dump "
                f"(pg_dump --format=custom --file=FILE '{safe_url}')"
            )
        source = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:" or not source.is_file():
            raise InvalidInput(f"no SQLite database file to back up at {source}")
        target = Path(path)
        if target.exists() and target.resolve() == source.resolve():
            raise InvalidInput(f"--out: {target} is the database itself")
        if target.exists() and not overwrite:
            raise FileExistsError(str(target))
        descriptor, name = tempfile.mkstemp(  # mode 0600
            prefix=f".{target.name}.", suffix=".partial", dir=target.parent
        )
        os.close(descriptor)
        temporary = Path(name)
        try:
            copy = sqlite3.connect(temporary, isolation_level=None)
            try:
                with self.engine.connect() as connection:
                    driver = connection.connection.driver_connection
                    assert isinstance(driver, sqlite3.Connection)
                    driver.backup(copy)  # pages=-1: every page in one step, one snapshot
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
            if overwrite:
                temporary.replace(target)
            else:
                target.hardlink_to(temporary)  # refuses a file created meanwhile
            return target.stat().st_size
        finally:
            temporary.unlink(missing_ok=True)

    def dispose(self) -> None:
        """Stop the group-commit writer and close every pooled connection."""
        self._group_writer.close()
        if self._group_connection is not None:
            self._group_connection.close()
            self._group_connection = None
        with self._writer_lock:
            if self._writer_connection is not None:
                self._writer_connection.close()
                self._writer_connection = None
        self.engine.dispose()
