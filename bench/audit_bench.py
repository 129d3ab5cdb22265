"""The audit trail benchmark, on SQLite and on PostgreSQL.

(a) events/s appended through the service layer (``record_event`` in ``Store.write()``), one
    event per transaction, beside raw one-row-per-transaction inserts with the driver;
(b) the default 24-hour ``GET /api/datasource/v1/audit`` over real HTTP (uvicorn in a
    subprocess, httpx) on a store of 1,000,000 events, beside a raw SQL select of the same rows
    serialised with orjson;
(c) the same for a six-month window filtered by one data source name.

Each database is fresh: a file in a temporary directory, or a PostgreSQL database created here
and dropped at the end. Baselines are measured in the same run; the figures printed are medians
and p90s of several repetitions, and ratios. ``--quick`` is a smoke test (100k events).

    .venv/bin/python bench/audit_bench.py [--events N] [--only sqlite|postgresql] [--quick]

``--long-reads`` runs (d) chunk flatness, (e) downloads and exports and (f) filters on
10,000,000 events instead (``bench/long_reads.py``; ``--quick``: 300,000). ``--scale`` runs
the reads at scale, the long reads with the server's peak RSS, the console's trail page and
a month's purge on 10,000,000 events (``bench/scale_bench.py``; ``--events N``, ``--skip``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import event as sa_event

from dstrail.audit.query import iter_chunks
from dstrail.audit.recorder import record_event
from dstrail.audit.serialize import stream_json_array
from dstrail.context import open_dstrail
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Run, RunType
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EXTENSION_KINDS, EventKind, event_leaf, merkle
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import users as user_service
from dstrail.settings import Settings
from dstrail.store import Store
from support import (
    RAW_COLUMNS,
    RAW_INDEX,
    access_event,
    audit_indexes_dropped,
    bench_data_source,
    partitions_since,
    prepare_bulk_load,
    raw_row,
    run_keys,
    server_process,
    stored_row,
)

PG_ADMIN_URL = os.environ.get("DSTRAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AUDIT_PATH = "/api/datasource/v1/audit"
EVENTS_PER_DAY = 5_500
SIX_MONTHS_MS = 183 * DAY_MS  # as the six-month download of the API
DATA_SOURCES = 500
USERS = 200
PROJECTS = 120
RUNS = 4_000

# The kinds of a busy trail: 70% access; extensions (not returned by default) about 7%.
KIND_WEIGHTS: dict[EventKind, int] = {
    EventKind.ACCESS_DATA_SOURCE: 70,
    EventKind.CHANGE_OF_PERMISSIONS: 6,
    EventKind.ASSOCIATED_TO_PROJECT: 5,
    EventKind.CHANGE_OF_OWNERSHIP: 4,
    EventKind.CREATE_DATA_SOURCE: 3,
    EventKind.DISSOCIATED_FROM_PROJECT: 3,
    EventKind.DELETE_DATA_SOURCE: 2,
    EventKind.UPDATE_DATA_SOURCE: 3,
    EventKind.UPDATE_CREDENTIALS: 2,
    EventKind.ACCESS_REFUSED: 2,
}
TYPES = ("SnowflakeConfig", "S3Config", "PostgreSQLConfig", "RedshiftConfig", "BigQueryConfig")
NAME_WORDS = ("sales", "churn", "fraud", "events", "ledger", "clicks", "claims", "genomics")

# The bench fills RAW_COLUMNS (bench/support.py); any other NOT NULL column without a default
# (for example integrity columns added by a later migration) gets a placeholder, and says so.
EventTuple = tuple[Any, ...]
"""A row of ``RAW_COLUMNS``."""
TS_AT, KIND_AT, METADATA_AT = (RAW_INDEX[c] for c in ("ts_ms", "event_kind", "metadata"))


# -- statistics and printing ------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    """The 90th percentile (the largest value when there are few)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def say(text: str = "") -> None:
    """Print at once (the run is long)."""
    print(text, flush=True)


# -- the data set -----------------------------------------------------------------------------


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


@dataclass
class Catalog:
    """Who and what the generated events are about."""

    sources: list[tuple[str, str, str]]  # (id, name, type)
    users: list[tuple[str, str]]  # (id, username)
    runs: list[tuple[str, str, str, str]]  # (run id, run type, project id, data plane id)


def make_catalog(rng: random.Random) -> Catalog:
    """500 data sources, 200 users, 4,000 runs in 120 projects on 3 data planes."""
    sources = [
        (_hex_id(rng), f"{rng.choice(NAME_WORDS)}-{t.removesuffix('Config').lower()}-{i:03d}", t)
        for i in range(DATA_SOURCES)
        for t in [rng.choice(TYPES)]
    ]
    users = [(_hex_id(rng), f"user-{i:03d}.{rng.choice(NAME_WORDS)}") for i in range(USERS)]
    projects = [_hex_id(rng) for _ in range(PROJECTS)]
    planes = ["000000000000000000000000", _hex_id(rng), _hex_id(rng)]
    runs = [
        (_hex_id(rng), rng.choice(list(RunType)).value, rng.choice(projects), rng.choice(planes))
        for _ in range(RUNS)
    ]
    return Catalog(sources=sources, users=users, runs=runs)


def _metadata(
    rng: random.Random, kind: EventKind, username: str, run: tuple[str, str, str, str]
) -> tuple[str, str | None, str | None]:
    """(metadata JSON as ``AuditRepository.append`` stores it, run id, project id)."""
    values: dict[str, str] = {"performedByUsername": username}
    run_id: str | None = None
    project_id: str | None = None
    if kind in (EventKind.ACCESS_DATA_SOURCE, EventKind.ACCESS_REFUSED):
        run_id, run_type, project_id, plane = run
        values.update(runType=run_type, projectId=project_id, runId=run_id, dataPlaneId=plane)
    elif kind in (EventKind.ASSOCIATED_TO_PROJECT, EventKind.DISSOCIATED_FROM_PROJECT):
        project_id = run[2]
        values.update(projectId=project_id, projectName=f"project-{project_id[-5:]}")
    elif kind is EventKind.CHANGE_OF_OWNERSHIP:
        values.update(previousOwnerId=_hex_id(rng), newOwnerId=_hex_id(rng))
    else:
        values.update(credentialType=rng.choice(("Shared", "Individual")), isEveryone="false")
    return orjson.dumps(values).decode(), run_id, project_id


def make_events(catalog: Catalog, count: int, *, now_ms: int, seed: int) -> list[EventTuple]:
    """``count`` events, ``EVENTS_PER_DAY`` a day up to ``now_ms``, in sequence order."""
    rng = random.Random(seed)
    span = max(DAY_MS, count * DAY_MS // EVENTS_PER_DAY)
    stamps = sorted(rng.randrange(now_ms - span, now_ms) for _ in range(count))
    return build_events(catalog, rng, stamps, first_seq=1)


def build_events(
    catalog: Catalog, rng: random.Random, stamps: Sequence[int], *, first_seq: int
) -> list[EventTuple]:
    """One event at each of ``stamps`` (ascending), numbered from ``first_seq``."""
    count = len(stamps)
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=count)
    sources = rng.choices(catalog.sources, k=count)
    users = rng.choices(catalog.users, k=count)
    runs = rng.choices(catalog.runs, k=count)
    events: list[EventTuple] = []
    for i in range(count):
        ds_id, ds_name, ds_type = sources[i]
        user_id, username = users[i]
        metadata, run_id, project_id = _metadata(rng, kinds[i], username, runs[i])
        events.append(
            raw_row(
                seq=first_seq + i,
                ts_ms=stamps[i],
                event_kind=kinds[i].value,
                data_source_id=ds_id,
                data_source_name=ds_name,
                data_source_type=ds_type,
                performed_by=user_id,
                performed_by_username=username,
                run_id=run_id,
                project_id=project_id,
                metadata=metadata,
            )
        )
    return events


# -- databases --------------------------------------------------------------------------------


@dataclass
class Column:
    """One column of ``audit_events`` as the database describes it."""

    name: str
    type: str
    required: bool  # NOT NULL and no default


def placeholder(column: Column) -> object:
    """A value for a required column the bench does not know (not a computed one)."""
    kind = column.type.lower()
    if "int" in kind or "numeric" in kind:
        return 0
    if "bool" in kind:
        return False
    if "blob" in kind or "bytea" in kind:
        return bytes(32)
    return "0" * 64 if "hash" in column.name or "digest" in column.name else ""


@dataclass
class Backend:
    """One database under test: how to make it, load it, and read it raw."""

    name: str
    url: str
    notes: list[str] = field(default_factory=list)

    def create(self) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def raw(self) -> Any:
        """A driver connection set up as the app sets up its own."""
        raise NotImplementedError

    def columns(self, conn: Any) -> list[Column]:
        raise NotImplementedError

    def raw_append(self, conn: Any, rows: list[EventTuple]) -> list[float]:
        raise NotImplementedError

    def bulk_load(self, conn: Any, rows: list[EventTuple]) -> None:
        """Load ``rows`` with the indexes dropped and recreated around the load."""
        self.load_batches(conn, [rows])

    def load_batches(self, conn: Any, batches: Iterable[list[EventTuple]]) -> int:
        """Load the batches (streamed: one in memory at a time), as ``bulk_load``; the count."""
        raise NotImplementedError

    def raw_batches(
        self, conn: Any, sql: str, params: Sequence[object], size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a select, ``size`` at a time, without holding them all (a long read)."""
        raise NotImplementedError

    def raw_select(self, conn: Any, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def explain(self, conn: Any, sql: str, params: Any) -> list[str]:
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------

    def insert_plan(
        self, conn: Any, mark: str
    ) -> tuple[str, Callable[[EventTuple], tuple[Any, ...]]]:
        """The INSERT of the columns that exist, and a row builder for it."""
        columns = self.columns(conn)
        names = {c.name for c in columns}
        missing = [c for c in RAW_COLUMNS if c not in names]
        if missing:
            raise SystemExit(f"audit_events lacks columns the bench needs: {missing}")
        extra = [c for c in columns if c.required and c.name not in RAW_COLUMNS]
        if extra:
            note = (
                f"{self.name}: audit_events has required columns the bench fills with "
                f"placeholders, not computed values: {', '.join(c.name for c in extra)}"
            )
            if note not in self.notes:
                self.notes.append(note)
        unset = [c.name for c in columns if not c.required and c.name not in RAW_COLUMNS]
        if unset:
            note = (
                f"{self.name}: the bench's own inserts leave {', '.join(unset)} NULL or default "
                "(nullable; the reads measured here do not use them)"
            )
            if note not in self.notes:
                self.notes.append(note)
        fixed = tuple(placeholder(c) for c in extra)
        insert_columns = [*RAW_COLUMNS, *(c.name for c in extra)]
        sql = (
            f"INSERT INTO audit_events ({', '.join(insert_columns)}) "
            f"VALUES ({', '.join([mark] * len(insert_columns))})"
        )

        def build(row: EventTuple) -> tuple[Any, ...]:
            return row + fixed if fixed else row

        return sql, build


class SQLiteBackend(Backend):
    """A SQLite file in a temporary directory."""

    def __init__(self, directory: Path, label: str) -> None:
        self.path = directory / f"{label}.sqlite3"
        super().__init__(name="SQLite", url=f"sqlite:///{self.path}")

    def create(self) -> None:
        """Nothing to do: the file appears on first connect."""

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def raw(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def columns(self, conn: sqlite3.Connection) -> list[Column]:
        rows = conn.execute("PRAGMA table_info(audit_events)").fetchall()
        return [
            Column(name=r[1], type=r[2] or "", required=bool(r[3]) and r[4] is None and not r[5])
            for r in rows
        ]

    def raw_append(self, conn: sqlite3.Connection, rows: list[EventTuple]) -> list[float]:
        sql, build = self.insert_plan(conn, "?")
        timings: list[float] = []
        clock = time.perf_counter
        for row in rows:
            values = build(row)
            start = clock()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, values)
            conn.execute("COMMIT")
            timings.append(clock() - start)
        return timings

    def load_batches(self, conn: sqlite3.Connection, batches: Iterable[list[EventTuple]]) -> int:
        sql, build = self.insert_plan(conn, "?")
        prepare_bulk_load(conn)
        conn.execute("BEGIN IMMEDIATE")
        counts: collections.Counter[tuple[int, str]] = collections.Counter()
        total = 0
        with audit_indexes_dropped(conn):
            for number, rows in enumerate(batches):
                if number:  # a long load commits each batch, so the WAL does not hold it all
                    conn.execute("COMMIT")
                    conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, (build(r) for r in rows))
                _count_days(counts, rows)
                total += len(rows)
        _finish_load(conn, counts, total, "?")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA synchronous=NORMAL")
        return total

    def raw_batches(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[object], size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        cursor = conn.execute(sql, tuple(params))
        try:
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            cursor.close()

    def raw_select(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[object]
    ) -> list[tuple[Any, ...]]:
        return conn.execute(sql, tuple(params)).fetchall()

    def explain(self, conn: sqlite3.Connection, sql: str, params: Any) -> list[str]:
        return [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


class PostgreSQLBackend(Backend):
    """A database created on the PostgreSQL server for this run, dropped at the end."""

    def __init__(self, label: str) -> None:
        self.database = f"dstrail_bench_{label}_{os.getpid()}"
        super().__init__(
            name="PostgreSQL", url=PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"
        )

    def _admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)

    def create(self) -> None:
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{self.database}"')

    def drop(self) -> None:
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def raw(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url)

    def columns(self, conn: psycopg.Connection[tuple[Any, ...]]) -> list[Column]:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default, is_identity, "
            "is_generated FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'audit_events' "
            "ORDER BY ordinal_position"
        ).fetchall()
        conn.commit()
        return [
            Column(
                name=r[0],
                type=r[1],
                required=r[2] == "NO" and r[3] is None and r[4] != "YES" and r[5] == "NEVER",
            )
            for r in rows
        ]

    def raw_append(
        self, conn: psycopg.Connection[tuple[Any, ...]], rows: list[EventTuple]
    ) -> list[float]:
        sql, build = self.insert_plan(conn, "%s")
        timings: list[float] = []
        clock = time.perf_counter
        with conn.cursor() as cursor:
            for row in rows:
                values = build(row)
                start = clock()
                cursor.execute(sql, values)
                conn.commit()
                timings.append(clock() - start)
        return timings

    def load_batches(
        self, conn: psycopg.Connection[tuple[Any, ...]], batches: Iterable[list[EventTuple]]
    ) -> int:
        sql, build = self.insert_plan(conn, "%s")
        insert_columns = sql[sql.index("(") + 1 : sql.index(")")]
        prepare_bulk_load(conn)
        counts: collections.Counter[tuple[int, str]] = collections.Counter()
        total = 0
        copying = conn.cursor().copy(f"COPY audit_events ({insert_columns}) FROM STDIN")
        with audit_indexes_dropped(conn), copying as copy:
            for rows in batches:
                for row in rows:
                    copy.write_row(build(row))
                _count_days(counts, rows)
                total += len(rows)
        _finish_load(conn, counts, total, "%s")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE audit_events")
        conn.autocommit = False
        return total

    def raw_batches(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        sql: str,
        params: Sequence[object],
        size: int,
    ) -> Iterator[list[tuple[Any, ...]]]:
        # A server-side cursor: a client-side one would hold the whole result in libpq.
        with conn.cursor(name="dstrail_bench_long_read") as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            while rows := cursor.fetchmany(size):
                yield rows
        conn.commit()

    def raw_select(
        self, conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Sequence[object]
    ) -> list[tuple[Any, ...]]:
        rows = conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall()
        conn.commit()
        return rows

    def explain(
        self, conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Any
    ) -> list[str]:
        rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()
        conn.commit()
        return [str(r[0]) for r in rows]


def _count_days(counts: collections.Counter[tuple[int, str]], rows: list[EventTuple]) -> None:
    """Add the rows to the (day, kind) counts of the rollup."""
    counts.update((r[TS_AT] // DAY_MS, r[KIND_AT]) for r in rows)


def _finish_load(
    conn: Any, counts: collections.Counter[tuple[int, str]], total: int, mark: str
) -> None:
    """The head size and the daily rollup, as appends would have left them (added to what the
    trail held before the load: nothing, or the events of the bench's own administrator)."""
    cursor = conn.cursor()
    cursor.executemany(
        f"INSERT INTO audit_daily_counts (day, event_kind, count) VALUES ({mark}, {mark}, {mark}) "
        "ON CONFLICT (day, event_kind) DO UPDATE SET count = audit_daily_counts.count + "
        "excluded.count",
        [(day, kind, n) for (day, kind), n in sorted(counts.items())],
    )
    cursor.execute(f"UPDATE audit_head SET size = size + {mark} WHERE id = 1", (total,))


def other_audit_tables(conn: Any, backend: Backend) -> list[str]:
    """Tables beyond the three of migration 0001 that the audit trail may need filled."""
    if isinstance(backend, SQLiteBackend):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (  # tables, not the partitions of one
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind IN ('r', 'p') AND NOT relispartition"
        )
    names = [str(r[0]) for r in conn.execute(sql).fetchall()]
    known = {"audit_events", "audit_head", "audit_daily_counts"}
    prefixes = ("audit", "merkle", "integrity")
    return sorted(n for n in names if n.startswith(prefixes) and n not in known)


# -- (a) appends --------------------------------------------------------------------------------


@dataclass
class AppendResult:
    """Per-event latencies of both paths (seconds)."""

    service: list[float]
    raw: list[float]
    service_rounds: list[float]  # events/s of each round
    raw_rounds: list[float]


def bench_append(
    backend: Backend, catalog: Catalog, workdir: Path, *, rounds: int, per_round: int
) -> AppendResult:
    """Service appends and raw inserts of the same rows, alternating rounds."""
    backend.create()
    # The service as `dstrail serve` opens it: migrated, with its checkpoint signing policy.
    dstrail = open_dstrail(Settings(data_dir=workdir / "append-data", database_url=backend.url))
    store = dstrail.store
    raw = backend.raw()
    now = time.time_ns() // 1_000_000
    rng = random.Random(11)
    actor_id, username = catalog.users[0]
    actor = User(id=actor_id, username=username, email=f"{username}@example.com", role=Role.USER)
    result = AppendResult(service=[], raw=[], service_rounds=[], raw_rounds=[])
    seq_offset = 10**12  # raw rows keep clear of the sequence numbers the service hands out
    try:
        for round_no in range(rounds):
            plan: list[tuple[DataSource, Run, int]] = []
            rows: list[EventTuple] = []
            for i in range(per_round):
                ds_id, ds_name, ds_type = rng.choice(catalog.sources)
                run_id, run_type, project_id, plane = rng.choice(catalog.runs)
                source = bench_data_source(ds_id, ds_name, ds_type, actor_id, now)
                run = Run(
                    id=run_id,
                    run_type=RunType(run_type),
                    project_id=project_id,
                    user_id=actor_id,
                    data_plane_id=plane,
                    started_at_ms=now,
                    ended_at_ms=None,
                )
                ts = now + round_no * per_round + i
                plan.append((source, run, ts))
                event = access_event(
                    (ds_id, ds_name, ds_type), (actor_id, username), ts, run_keys(run), run
                )
                rows.append(stored_row(seq_offset + round_no * per_round + i, event, RAW_COLUMNS))
            order = ("service", "raw") if round_no % 2 == 0 else ("raw", "service")
            for path in order:
                if path == "service":
                    timings = _service_append(store, actor, plan)
                    result.service.extend(timings)
                    result.service_rounds.append(per_round / sum(timings))
                else:
                    timings = backend.raw_append(raw, rows)
                    result.raw.extend(timings)
                    result.raw_rounds.append(per_round / sum(timings))
    finally:
        raw.close()
        store.dispose()
        backend.drop()
    return result


def _service_append(
    store: Store, actor: User, plan: list[tuple[DataSource, Run, int]]
) -> list[float]:
    timings: list[float] = []
    clock = time.perf_counter
    for source, run, ts in plan:
        start = clock()
        with store.write() as tx:
            record_event(
                tx,
                kind=EventKind.ACCESS_DATA_SOURCE,
                data_source=source,
                actor=actor,
                now_ms=ts,
                run=run,
            )
        timings.append(clock() - start)
    return timings


# -- (b) and (c) reads ------------------------------------------------------------------------


RAW_SQL = (
    "SELECT data_source_id, data_source_name, data_source_type, event_kind, metadata, "
    "performed_by, ts_ms FROM audit_events WHERE ts_ms BETWEEN ? AND ? {names}"
    "AND event_kind NOT IN ({kinds}) ORDER BY ts_ms DESC, seq DESC"
)


def iso_ms(ms: int) -> str:
    """The API's timestamp, written the plain way (the baseline does not borrow dstrail's)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def raw_rows(
    backend: Backend, conn: Any, start_ms: int, end_ms: int, name: str | None
) -> list[tuple[Any, ...]]:
    """The same rows as the API, straight from the driver."""
    sql, params = raw_query(start_ms, end_ms, "data_source_name" if name else None, name)
    return backend.raw_select(conn, sql, params)


def raw_query(
    start_ms: int, end_ms: int, column: str | None = None, value: str | None = None
) -> tuple[str, list[object]]:
    """``RAW_SQL`` for a window, narrowed to ``column = value`` when given, and its parameters."""
    kinds = sorted(k.value for k in EXTENSION_KINDS)
    sql = RAW_SQL.format(
        names=f"AND {column} = ? " if column else "", kinds=", ".join("?" * len(kinds))
    )
    return sql, [start_ms, end_ms, *([value] if column else []), *kinds]


def raw_body(
    backend: Backend, conn: Any, start_ms: int, end_ms: int, name: str | None
) -> tuple[bytes, int]:
    """The rows straight from the driver, serialised with orjson: (body, row count)."""
    rows = raw_rows(backend, conn, start_ms, end_ms, name)
    return raw_json(rows), len(rows)


def raw_json(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """Rows of ``RAW_SQL`` as the API's JSON array, serialised the plain way with orjson."""
    fragment = orjson.Fragment
    return orjson.dumps(
        [
            {
                "dataSourceId": r[0],
                "dataSourceName": r[1],
                "dataSourceType": r[2],
                "eventKind": r[3],
                "metadata": fragment(r[4]),
                "performedBy": r[5],
                "timestamp": iso_ms(r[6]),
            }
            for r in rows
        ]
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    url: str, data_dir: Path, *, on_start: Callable[[int], None] | None = None
) -> Iterator[str]:
    """``dstrail serve`` (the real app under uvicorn) in a subprocess; yields its base URL.
    ``on_start`` is given its process id."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    command = [
        sys.executable,
        "-c",
        "import sys; from dstrail.cli import main; sys.exit(main())",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--flight-port",
        str(free_port()),
        "--database-url",
        url,
        "--data-dir",
        str(data_dir),
    ]
    log.unlink(missing_ok=True)
    # The store was bulk-loaded, not appended: the forensics follower would replay all of it
    # in the background while the reads are timed (a server that appended its events keeps
    # up as they come). Held off, as a deployment that set the interval to an hour would be.
    env = {**os.environ, "DSTRAIL_FORENSICS_FOLLOW_SECONDS": "3600"}
    with server_process(
        command, f"http://127.0.0.1:{port}", log, env=env, on_start=on_start
    ) as base:
        yield base


@dataclass
class ReadResult:
    """Seconds of each repetition, and what was returned."""

    http: list[float]
    raw: list[float]
    raw_sql: list[float]  # the select alone, for reference
    rows: int
    body_bytes: int


def bench_read(
    backend: Backend,
    conn: Any,
    client: httpx.Client,
    *,
    params: dict[str, str | list[str]],
    window: Callable[[], tuple[int, int]],
    name: str | None,
    reps: int,
) -> ReadResult:
    """HTTP and raw, interleaved, after one warm-up of each."""
    http: list[float] = []
    raw: list[float] = []
    raw_sql: list[float] = []
    rows = size = 0
    clock = time.perf_counter
    for rep in range(reps + 1):
        start = clock()
        response = client.get(AUDIT_PATH, params=params)
        body = response.content
        elapsed_http = clock() - start
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.text[:500]}")
        start_ms, end_ms = window()
        start = clock()
        raw_bytes, rows = raw_body(backend, conn, start_ms, end_ms, name)
        elapsed_raw = clock() - start
        start = clock()
        raw_rows(backend, conn, start_ms, end_ms, name)
        elapsed_sql = clock() - start
        size = len(body)
        del raw_bytes
        if rep:  # the first round warms caches
            http.append(elapsed_http)
            raw.append(elapsed_raw)
            raw_sql.append(elapsed_sql)
    return ReadResult(http=http, raw=raw, raw_sql=raw_sql, rows=rows, body_bytes=size)


def check_same_body(
    backend: Backend, conn: Any, client: httpx.Client, name: str | None, start_ms: int, end_ms: int
) -> None:
    """The HTTP body equals the raw baseline byte for byte (an explicit window makes it exact)."""
    params: dict[str, str | list[str]] = {
        "startTime": format_ms(start_ms),
        "endTime": format_ms(end_ms),
    }
    if name:
        params["dataSourceNames"] = [name]
    body = client.get(AUDIT_PATH, params=params).content
    expected, rows = raw_body(backend, conn, start_ms, end_ms, name)
    if body != expected:
        raise SystemExit(f"{backend.name}: the API and the raw baseline differ ({rows} rows)")


def in_process(store: Store, audit_filter: AuditFilter, reps: int) -> tuple[float, float]:
    """Medians (s) in this process: the repository's chunks, then chunks + serialisation."""
    query: list[float] = []
    full: list[float] = []
    for _ in range(reps):
        start = time.perf_counter()
        for _chunk in iter_chunks(store, audit_filter):
            pass
        query.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _part in stream_json_array(iter_chunks(store, audit_filter)):
            pass
        full.append(time.perf_counter() - start)
    return median(query), median(full)


def captured_sql(
    store: Store, audit_filter: AuditFilter, after: Cursor | None = None
) -> tuple[str, Any]:
    """The first statement the app sends for a filter (from ``after``), with its parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "audit_events" in statement and not seen:
            seen.append((statement, parameters))

    sa_event.listen(store.engine, "before_cursor_execute", capture)
    try:
        next(iter_chunks(store, audit_filter, after=after), None)
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", capture)
    return seen[0]


@dataclass
class ReadSuite:
    """(b) and (c) on one loaded database."""

    default: ReadResult
    by_name: ReadResult
    load_seconds: float
    service_query_s: float
    service_serialise_s: float
    plans: dict[str, list[str]]


def bench_admin(store: Store, now_ms: int) -> str:
    """A system administrator for the bench's HTTP client: its API key."""
    with store.write() as tx:
        _admin, api_key = user_service.create_user(
            tx,
            actor=OPERATOR,
            username="bench-admin",
            email=None,
            role=Role.SYS_ADMIN,
            now_ms=now_ms,
        )
    return api_key.secret


@dataclass
class Frontier:
    """The Merkle frontier of a trail whose events are bulk-loaded, folded as they go by and
    written to the head, as appends would have left it, so that the server can append: it
    records every read of the trail (``AuditTrailRead``) and answers none it cannot record.
    The loaded rows keep NULL leaf hashes (the reads measured here do not use them)."""

    size: int
    hashes: list[bytes]

    @classmethod
    def of_head(cls, backend: Backend, conn: Any) -> Frontier:
        """The head's, before a bulk load."""
        sql = "SELECT size, frontier FROM audit_head WHERE id = 1"
        size, packed = backend.raw_select(conn, sql, [])[0]
        return cls(size=int(size), hashes=merkle.unpack_frontier(packed))

    def fold(self, rows: Iterable[EventTuple]) -> None:
        """Add the rows' leaves (rows numbered on from ``size``)."""
        width = RAW_INDEX["seq"] + 1  # the leading columns of a row are the event's
        for row in rows:
            self.hashes, _ = merkle.append_leaf(self.hashes, self.size, event_leaf(row[:width]))
            self.size += 1

    def folding(self, batches: Iterable[list[EventTuple]]) -> Iterator[list[EventTuple]]:
        """The batches, each folded as it goes by."""
        for rows in batches:
            self.fold(rows)
            yield rows

    def write(self, conn: Any) -> None:
        """Into the head, once the load is committed."""
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        packed = merkle.pack_frontier(self.hashes)
        conn.execute(f"UPDATE audit_head SET frontier = {mark} WHERE id = 1", (packed,))
        if isinstance(conn, psycopg.Connection):
            conn.commit()


def bench_reads(
    backend: Backend,
    events: list[EventTuple],
    name: str,
    workdir: Path,
    *,
    reps: int,
) -> ReadSuite:
    """Bulk-load, start the server, then time (b) and (c) against their raw baselines."""
    backend.create()
    try:
        store = Store(backend.url)
        store.migrate()
        conn = backend.raw()
        # The administrator first: creating a user appends its events through the service,
        # which a bulk-loaded trail (no Merkle frontier) refuses. Its events are older than
        # the loaded ones and of kinds the reads leave out; the loaded ones are numbered after.
        partitions_since(store, events[0][TS_AT] - 1)  # PostgreSQL: COPY routes to them
        api_key = bench_admin(store, events[0][TS_AT] - 1)
        frontier = Frontier.of_head(backend, conn)
        held = frontier.size
        seq_at = RAW_INDEX["seq"]
        events = [(*e[:seq_at], e[seq_at] + held, *e[seq_at + 1 :]) for e in events]
        start = time.perf_counter()
        backend.bulk_load(conn, events)
        load_seconds = time.perf_counter() - start
        frontier.fold(events)
        frontier.write(conn)
        extra_tables = other_audit_tables(conn, backend)
        if extra_tables:
            backend.notes.append(
                f"{backend.name}: left empty by the bulk load: {', '.join(extra_tables)}"
            )
        if isinstance(conn, psycopg.Connection):
            conn.commit()

        now = time.time_ns() // 1_000_000
        day = AuditFilter(start_ms=now - DAY_MS, end_ms=now)
        half_year = AuditFilter(start_ms=now - SIX_MONTHS_MS, end_ms=now, data_source_names=(name,))
        plans: dict[str, list[str]] = {}
        for label, audit_filter in (("(b)", day), ("(c)", half_year)):
            sql, params = captured_sql(store, audit_filter)
            plans[label] = backend.explain(conn, sql, params)
        service_query_s, service_serialise_s = in_process(store, day, max(3, reps // 2))
        store.dispose()

        data_dir = workdir / f"data-{backend.name.lower()}"
        with (
            running_server(backend.url, data_dir) as base,
            httpx.Client(
                base_url=base, headers={"X-Domino-Api-Key": api_key}, timeout=120
            ) as client,
        ):
            now = time.time_ns() // 1_000_000
            check_same_body(backend, conn, client, None, now - DAY_MS, now)
            check_same_body(backend, conn, client, name, now - SIX_MONTHS_MS, now)

            def last_day() -> tuple[int, int]:
                now = time.time_ns() // 1_000_000
                return now - DAY_MS, now

            default = bench_read(
                backend, conn, client, params={}, window=last_day, name=None, reps=reps
            )
            fixed_now = time.time_ns() // 1_000_000
            by_name = bench_read(
                backend,
                conn,
                client,
                params={
                    "startTime": format_ms(fixed_now - SIX_MONTHS_MS),
                    "endTime": format_ms(fixed_now),
                    "dataSourceNames": [name],
                },
                window=lambda: (fixed_now - SIX_MONTHS_MS, fixed_now),
                name=name,
                reps=reps,
            )
        conn.close()
        return ReadSuite(
            default=default,
            by_name=by_name,
            load_seconds=load_seconds,
            service_query_s=service_query_s,
            service_serialise_s=service_serialise_s,
            plans=plans,
        )
    finally:
        backend.drop()


# -- the run --------------------------------------------------------------------------------


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews the figures."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def pg_reachable() -> str | None:
    """``None`` when PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        return str(error).strip()
    return None


def report_append(name: str, result: AppendResult) -> None:
    service = median(result.service_rounds)
    raw = median(result.raw_rounds)
    say(f"  (a) one event per transaction ({len(result.service)} events each path)")
    say(f"      {'':28} {'median ev/s':>12} {'p90 latency':>12}")
    say(
        f"      {'service (record_event)':28} {service:12,.0f} {p90(result.service) * 1e6:10,.0f}µs"
    )
    say(f"      {'raw driver insert':28} {raw:12,.0f} {p90(result.raw) * 1e6:10,.0f}µs")
    verdict = "meets" if service / raw >= 0.5 else "MISSES"
    say(f"      ratio service/raw: {service / raw:.2f} ({verdict} target >= 0.5)  [{name}]")


def report_read(label: str, result: ReadResult) -> None:
    http, raw = median(result.http), median(result.raw)
    verdict = "meets" if http / raw <= 2 else "MISSES"
    say(
        f"  {label} ({result.rows:,} rows, {result.body_bytes / 1e6:.2f} MB, {len(result.http)} reps)"
    )
    say(f"      {'':28} {'median':>10} {'p90':>10}")
    say(
        f"      {'HTTP GET (uvicorn, httpx)':28} {http * 1e3:8.1f}ms {p90(result.http) * 1e3:8.1f}ms"
    )
    say(f"      {'raw SQL + orjson':28} {raw * 1e3:8.1f}ms {p90(result.raw) * 1e3:8.1f}ms")
    sql = result.raw_sql
    say(f"      {'  (raw SQL alone)':28} {median(sql) * 1e3:8.1f}ms {p90(sql) * 1e3:8.1f}ms")
    say(f"      ratio HTTP/raw: {http / raw:.2f} ({verdict} target <= 2)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=None, help="events in the store (1,000,000)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--quick", action="store_true", help="100k events, fewer repetitions")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--long-reads",
        action="store_true",
        help="(d) chunks, (e) downloads and exports, (f) filters, on 10,000,000 events "
        "(--quick: 300,000) instead of (a)-(c)",
    )
    parser.add_argument(
        "--no-downloads", action="store_true", help="with --long-reads: leave (e) out"
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the reads, pages, filters, console, long reads with peak RSS and a month's purge "
        "on 10,000,000 events over 182 days (--events N; --quick: 300,000) instead of (a)-(c)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="[DATABASE:]PART",
        help="with --scale: leave a part out: reads, pages, filters, console, downloads, text "
        "(the six-month text download) or purge, on both databases or, after sqlite: or "
        "postgresql:, on one (repeatable)",
    )
    parser.add_argument(
        "--download-reps", type=int, default=None, help="with --long-reads: timed reads in (e)"
    )
    args = parser.parse_args(argv)
    if args.scale:
        from scale_bench import run_scale  # here: scale_bench imports this module

        return run_scale(
            events=args.events, quick=args.quick, only=args.only, seed=args.seed, skip=args.skip
        )
    if args.long_reads:
        from long_reads import run_long_reads  # here: long_reads imports this module

        return run_long_reads(
            events=args.events, quick=args.quick, only=args.only, seed=args.seed,
            downloads=not args.no_downloads, download_reps=args.download_reps,
        )  # fmt: skip
    events_n = args.events or (100_000 if args.quick else 1_000_000)
    reps = 5 if args.quick else 21
    rounds, per_round = (3, 500) if args.quick else (8, 1_000)

    say(
        f"dstrail audit benchmark: {events_n:,} events, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__}"
    )
    rng = random.Random(args.seed)
    catalog = make_catalog(rng)
    start = time.perf_counter()
    now = time.time_ns() // 1_000_000
    events = make_events(catalog, events_n, now_ms=now, seed=args.seed)
    mean_meta = statistics.fmean(len(e[METADATA_AT]) for e in events[:: max(1, events_n // 10_000)])
    say(
        f"generated in {time.perf_counter() - start:.1f}s; metadata {mean_meta:.0f} bytes on "
        f"average; {sum(1 for e in events if e[TS_AT] >= now - DAY_MS):,} events in the last 24 h"
    )
    name = sorted(catalog.sources, key=lambda s: s[1])[DATA_SOURCES // 2][1]

    backends: list[str] = [args.only] if args.only else ["sqlite", "postgresql"]
    notes: list[str] = []
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dstrail-bench-") as tmp:
        workdir = Path(tmp)
        for kind in backends:
            if kind == "postgresql":
                why = pg_reachable()
                if why:
                    say(f"\nPostgreSQL: skipped, not reachable at {PG_ADMIN_URL}: {why}")
                    continue
                append_backend: Backend = PostgreSQLBackend("append")
                read_backend: Backend = PostgreSQLBackend("read")
            else:
                append_backend = SQLiteBackend(workdir, "append")
                read_backend = SQLiteBackend(workdir, "read")
            say(f"\n{append_backend.name}  (load average {load_average()})")
            appended = bench_append(
                append_backend, catalog, workdir, rounds=rounds, per_round=per_round
            )
            report_append(append_backend.name, appended)
            suite = bench_reads(read_backend, events, name, workdir, reps=reps)
            say(f"  loaded {events_n:,} events in {suite.load_seconds:.1f}s")
            report_read("(b) default 24-hour window", suite.default)
            report_read(f"(c) 183 days, dataSourceNames={name}", suite.by_name)
            a_ratio = median(appended.service_rounds) / median(appended.raw_rounds)
            b_ratio = median(suite.default.http) / median(suite.default.raw)
            c_ratio = median(suite.by_name.http) / median(suite.by_name.raw)
            summary.append(
                f"  {append_backend.name:11} (a) {a_ratio:.2f} of raw (>= 0.5)   "
                f"(b) {b_ratio:.2f}x raw (<= 2)   (c) {c_ratio:.2f}x raw (<= 2)"
            )
            say(
                f"  in-process, default window: repository chunks "
                f"{suite.service_query_s * 1e3:.1f}ms, + serialisation "
                f"{suite.service_serialise_s * 1e3:.1f}ms"
            )
            for label, plan in suite.plans.items():
                say(f"  plan {label}: " + " | ".join(line.strip() for line in plan))
            notes += append_backend.notes + read_backend.notes
    say(f"\nload average at the end: {load_average()}")
    if summary:
        say("summary:")
        for line in summary:
            say(line)
    for note in dict.fromkeys(notes):
        say(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
