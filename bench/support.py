"""What the benchmarks share: the raw baseline's rows, named as dstrail names its columns, and
the bulk load of a large trail."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dstrail.domain.datasources import CredentialType, DataSource, Permissions, Status
from dstrail.domain.projects import Run
from dstrail.domain.trail import (
    SEALED_COLUMNS,
    EventKind,
    NewAuditEvent,
    event_leaf,
    merkle,
    stored_columns,
)
from dstrail.store import Store
from dstrail.store.partitions import ensure_partitions

RAW_COLUMNS: tuple[str, ...] = tuple(name for name in SEALED_COLUMNS if name != "leaf_hash")
"""The columns a raw baseline insert fills: an event's stored columns but its leaf hash."""

RAW_INDEX = {name: index for index, name in enumerate(RAW_COLUMNS)}
"""Where each column stands in a raw row."""


def raw_row(**values: Any) -> tuple[Any, ...]:
    """A row of ``RAW_COLUMNS`` from its values, by column name."""
    return tuple(values[name] for name in RAW_COLUMNS)


def access_event(
    source: tuple[str, str, str],
    user: tuple[str, str],
    ts_ms: int,
    metadata: dict[str, str],
    run: Run | None = None,
) -> NewAuditEvent:
    """An ``AccessDataSource`` event of ``user`` (id, username) on ``source`` (id, name, type)."""
    return NewAuditEvent(
        event_kind=EventKind.ACCESS_DATA_SOURCE,
        data_source_id=source[0],
        data_source_name=source[1],
        data_source_type=source[2],
        performed_by=user[0],
        performed_by_username=user[1],
        timestamp_ms=ts_ms,
        metadata=metadata,
        run_id=run.id if run else None,
        project_id=run.project_id if run else None,
    )


def stored_row(seq: int, event: NewAuditEvent, columns: Sequence[str]) -> tuple[Any, ...]:
    """The ``columns`` of ``event`` stored as ``seq``, as dstrail computes them."""
    values = stored_columns(seq, event)
    return tuple(values[name] for name in columns)


def bench_data_source(ds_id: str, name: str, ds_type: str, owner: str, now: int) -> DataSource:
    """A data source for everyone, owned by ``owner``, as the appends measured here name it."""
    return DataSource(
        id=ds_id,
        name=name,
        display_name=name,
        description="",
        data_source_type=ds_type,
        auth_type="Basic",
        credential_type=CredentialType.SHARED,
        config={},
        owner_id=owner,
        permissions=Permissions(is_everyone=True),
        project_links=(),
        status=Status.ACTIVE,
        added_by=owner,
        created_at_ms=now,
        last_updated_ms=now,
        last_updated_by=owner,
    )


def run_keys(run: Run) -> dict[str, str]:
    """The metadata an access from ``run`` records about it."""
    return {
        "runType": run.run_type.value,
        "projectId": run.project_id,
        "runId": run.id,
        "dataPlaneId": run.data_plane_id,
    }


_SQLITE_INDEXES = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
    "AND tbl_name = 'audit_events' AND sql IS NOT NULL"
)
_PG_INDEXES = (
    "SELECT i.indexname, i.indexdef FROM pg_indexes i "
    "WHERE i.schemaname = current_schema() AND i.tablename = 'audit_events' "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
    "AND c.conrelid = 'audit_events'::regclass)"
)


def prepare_bulk_load(conn: Any) -> None:
    """Session settings for a bulk load (before its transaction): no sync per commit, a large
    cache (SQLite) or sort memory (PostgreSQL)."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
    else:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")


def partitions_since(store: Store, first_ms: int) -> list[str]:
    """PostgreSQL: the audit table's month partitions from the month of ``first_ms`` on, made
    before a bulk load of events that old, which would otherwise wait in the default partition
    (and move when the server opens the store). Nothing on SQLite."""
    with store.engine.begin() as connection:
        now_ms = time.time_ns() // 1_000_000
        return ensure_partitions(connection, now_ms=now_ms, since_ms=first_ms)


@contextlib.contextmanager
def audit_indexes_dropped(conn: Any) -> Iterator[None]:
    """The audit table's secondary indexes dropped for the block and made again after it
    (building an index once is faster than keeping it up to date row by row). On SQLite,
    inside the caller's transaction."""
    sqlite = isinstance(conn, sqlite3.Connection)
    indexes = conn.execute(_SQLITE_INDEXES if sqlite else _PG_INDEXES).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    yield
    for _, create in indexes:
        # PostgreSQL states a partitioned table's index as "ON ONLY" (its partitions' indexes
        # apart); made without ONLY, it is built on every partition.
        conn.execute(create.replace(" ON ONLY ", " ON ", 1))


@contextlib.contextmanager
def server_process(
    command: list[str],
    base: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """``command`` (a server) in a subprocess, its output appended to ``log``, once
    ``<base>/healthz`` answers 200; yields ``base``; terminated (SIGTERM, then SIGKILL after
    20 s) afterwards. ``on_start`` is given the process id once it answers."""
    with log.open("ab") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{command[1:3]} exited:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[1:3]} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            if on_start is not None:
                on_start(process.pid)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


SEALED_LOAD_COLUMNS: tuple[str, ...] = (*RAW_COLUMNS, "leaf_hash", "subtree_hashes")
"""The columns a sealed bulk load fills: a raw row, its leaf hash and the subtrees it completes."""

CHECKPOINT_EVERY = 1_000
"""A bulk load signs a checkpoint every this many events (the server's default)."""


@dataclass
class Sealer:
    """Leaf hashes, subtree hashes, the frontier and the roots to sign as checkpoints of a bulk
    load, as appends would have left them, continuing a trail of ``size`` events with
    ``frontier``."""

    size: int
    frontier: list[bytes]
    roots: list[tuple[int, bytes, int]] = field(default_factory=list)
    """(tree size, root, timestamp) of each checkpoint: every ``CHECKPOINT_EVERY`` events."""
    seconds: float = 0.0

    def seal(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """``rows`` (of ``RAW_COLUMNS``, numbered from ``size + 1``) with their leaf and the
        subtree hashes each completes (``SEALED_LOAD_COLUMNS``)."""
        started = time.perf_counter()
        sealed: list[tuple[Any, ...]] = []
        frontier, size = self.frontier, self.size
        width, ts_at = len(merkle_row_columns()), RAW_COLUMNS.index("ts_ms")
        for row in rows:
            leaf = event_leaf(row[:width])
            frontier, completed = merkle.append_leaf(frontier, size, leaf)
            size += 1
            subtrees = b"".join(value for _, _, value in completed) or None
            sealed.append((*row, leaf, subtrees))
            if size % CHECKPOINT_EVERY == 0:
                self.roots.append((size, merkle.root_of_frontier(frontier), row[ts_at]))
        self.frontier, self.size = frontier, size
        self.seconds += time.perf_counter() - started
        return sealed

    def close(self, ts_ms: int) -> None:
        """A checkpoint at the end, unless one covers it already."""
        if not self.roots or self.roots[-1][0] != self.size:
            self.roots.append((self.size, merkle.root_of_frontier(self.frontier), ts_ms))

    def write_head(self, conn: Any, mark: str, signer: Any) -> None:
        """The checkpoints, signed by ``signer`` (the log's), and the head (size, frontier,
        latest checkpoint), in the caller's transaction."""
        checkpoints = [
            (
                size,
                root,
                ts_ms,
                signer.key_id,
                signer.sign(tree_size=size, root_hash=root, timestamp_ms=ts_ms),
                signer.origin,
            )
            for size, root, ts_ms in self.roots
        ]
        cursor = conn.cursor()
        cursor.executemany(
            "INSERT INTO audit_checkpoints "
            "(tree_size, root_hash, timestamp_ms, key_id, signature, origin) "
            f"VALUES ({', '.join([mark] * 6)})",
            checkpoints,
        )
        size, _root, ts_ms = self.roots[-1]
        cursor.execute(
            f"UPDATE audit_head SET size = {mark}, frontier = {mark}, checkpoint_size = {mark}, "
            f"checkpoint_ms = {mark} WHERE id = 1",
            (self.size, merkle.pack_frontier(self.frontier), size, ts_ms),
        )


def merkle_row_columns() -> tuple[str, ...]:
    """The leading columns of a raw row that make the event a leaf hashes."""
    return RAW_COLUMNS[: RAW_COLUMNS.index("seq") + 1]
