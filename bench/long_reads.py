"""The long reads of the audit trail, on a store of 10,000,000 events (``audit_bench.py
--long-reads``), on SQLite and on PostgreSQL.

(d) chunk flatness: one ``CHUNK_ROWS`` chunk of the default six-month read (``iter_chunks``
    from a keyset ``Cursor``), and one ``Link`` page (``read_page`` after a cursor), about 1,
    30, 90 and 170 days deep, each as a ratio to the first (target <= 1.5);
(e) the six-month download as text and as JSON, and a 30-day CSV export, over real HTTP
    (``dstrail serve`` in a subprocess), in rows/s beside a raw driver select serialised to the
    same format (target >= 0.5 of raw);
(f) six months filtered by one user, one project and one run through the audit API, beside
    the raw select of the same rows serialised with orjson (target <= 2x raw).

The events are generated and loaded in batches (one in memory at a time) over 182 days, about
55,000 a day at 10M, with the mix of ``audit_bench.make_events``. Baselines run in the same
process and are interleaved with the HTTP requests; figures are medians and p90s.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import psycopg

from audit_bench import (
    AUDIT_PATH,
    SIX_MONTHS_MS,
    Backend,
    Catalog,
    EventTuple,
    Frontier,
    PostgreSQLBackend,
    SQLiteBackend,
    bench_admin,
    build_events,
    captured_sql,
    iso_ms,
    load_average,
    make_catalog,
    median,
    p90,
    pg_reachable,
    raw_json,
    raw_query,
    running_server,
    say,
)
from dstrail.audit.query import CHUNK_ROWS, iter_chunks, read_page
from dstrail.audit.serialize import CSV_COLUMNS
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EXTENSION_KINDS
from dstrail.services.names import NAME_COLUMNS
from dstrail.store import Store
from support import partitions_since

LONG_EVENTS: Final = 10_000_000
QUICK_EVENTS: Final = 300_000
SPAN_DAYS: Final = 182
"""The store covers this many days whatever its size (10M events: ~55,000 a day)."""
BATCH_ROWS: Final = 200_000
DEPTH_DAYS: Final = (1, 30, 90, 170)
PAGE_ROWS: Final = 100
EXPORT_DAYS: Final = 30
RAW_BATCH: Final = CHUNK_ROWS
"""Rows the raw long reads fetch from the driver at a time."""
DOWNLOAD_PATH: Final = "/v4/datasource/audit/download"
EXPORT_PATH: Final = f"{AUDIT_PATH}/export"
_LEFT_OUT = sorted(k.value for k in EXTENSION_KINDS)  # the kinds default reads leave out


@dataclass(frozen=True)
class Plan:
    """How much of each part to do."""

    events: int
    reps: int  # (d) and (f)
    download_reps: int  # the six-month downloads
    export_reps: int
    seed: int
    downloads: bool = True  # (e); False leaves it out (at 10M it takes about 40 minutes)


# -- the store ----------------------------------------------------------------------------


@dataclass
class Generation:
    """Seconds spent making events (inside the load, which streams them)."""

    seconds: float = 0.0


def event_batches(
    catalog: Catalog,
    count: int,
    *,
    now_ms: int,
    seed: int,
    spent: Generation,
    first_seq: int = 1,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[list[EventTuple]]:
    """``count`` events over the ``SPAN_DAYS`` before ``now_ms``, oldest first, ``batch_rows``
    at a time, numbered from ``first_seq``: each batch holds the events of its own slice of
    time, in sequence order."""
    rng = random.Random(seed)
    span = SPAN_DAYS * DAY_MS
    first_ms = now_ms - span
    for done in range(0, count, batch_rows):
        start = time.perf_counter()
        rows = min(batch_rows, count - done)
        low = first_ms + span * done // count
        high = first_ms + span * (done + rows) // count
        stamps = sorted(rng.randrange(low, high) for _ in range(rows))
        batch = build_events(catalog, rng, stamps, first_seq=first_seq + done)
        spent.seconds += time.perf_counter() - start
        yield batch


@dataclass(frozen=True)
class Subjects:
    """Whom (f) filters by: one user, one project, one run."""

    user: str
    project: str
    run: str


def subjects(catalog: Catalog) -> Subjects:
    """A user, a project and a run of the catalog (each is as busy as any other)."""
    run_id, _run_type, project_id, _plane = catalog.runs[0]
    return Subjects(user=catalog.users[0][0], project=project_id, run=run_id)


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Timed:
    """Seconds of each repetition of an app path and of its raw baseline, and the rows read."""

    app: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    rows: int = 0
    body_bytes: int = 0


def interleaved(
    app: Callable[[], object], raw: Callable[[], object], reps: int, *, warm_up: bool = True
) -> Timed:
    """App and raw alternately (the order swapping each repetition), after a warm-up."""
    result = Timed()
    clock = time.perf_counter
    for rep in range(reps + (1 if warm_up else 0)):
        pair = ((result.app, app), (result.raw, raw))
        for times, call in pair if rep % 2 == 0 else pair[::-1]:
            start = clock()
            call()
            elapsed = clock() - start
            if rep or not warm_up:
                times.append(elapsed)
    return result


class Tally:
    """Bytes, a digest and the count of a marker across the pieces of a streamed body."""

    def __init__(self, marker: bytes, *, digest: bool) -> None:
        self.marker = marker
        self.count = 0
        self.size = 0
        self._tail = b""
        self._hash = hashlib.blake2b(digest_size=16) if digest else None

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self._hash is not None:
            self._hash.update(piece)
        # The tail kept from the last piece is shorter than the marker: a marker across the
        # boundary is counted once, and none twice.
        joined = self._tail + piece
        self.count += joined.count(self.marker)
        keep = len(self.marker) - 1
        self._tail = joined[-keep:] if keep else b""

    @property
    def digest(self) -> str:
        return self._hash.hexdigest() if self._hash is not None else ""


def http_tally(
    client: httpx.Client,
    path: str,
    params: dict[str, str | list[str]],
    marker: bytes,
    *,
    digest: bool,
) -> Tally:
    """Stream a GET, counting ``marker`` (one a row) and, when asked, hashing the body."""
    tally = Tally(marker, digest=digest)
    with client.stream("GET", path, params=params) as response:
        if response.status_code != 200:
            response.read()
            raise SystemExit(f"GET {path}: {response.status_code}: {response.text[:500]}")
        for piece in response.iter_bytes():
            tally.add(piece)
    return tally


def raw_tally(pieces: Iterable[bytes], marker: bytes, *, digest: bool) -> Tally:
    """The same tally of a raw baseline's pieces."""
    tally = Tally(marker, digest=digest)
    for piece in pieces:
        tally.add(piece)
    return tally


# -- raw serialisers (the plain way, not dstrail's code) ---------------------------------------


def raw_json_pieces(batches: Iterable[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """A JSON array of ``RAW_SQL`` rows, a batch at a time."""
    opening = b"["
    for rows in batches:
        yield opening + raw_json(rows)[1:-1]
        opening = b","
    yield b"[]" if opening == b"[" else b"]"


def raw_text_pieces(batches: Iterable[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """One readable line a ``RAW_SQL`` row, as the download writes it. Values are not escaped:
    the generated data has no control characters, so the bytes are the same."""
    loads = orjson.loads
    for rows in batches:
        lines = []
        for ds_id, ds_name, ds_type, kind, metadata, performed_by, ts_ms in rows:
            values: dict[str, str] = loads(metadata)
            who = values.pop("performedByUsername", "")
            details = " ".join(f"{key}={value}" for key, value in values.items())
            lines.append(
                f"{iso_ms(ts_ms)} {kind} dataSource={ds_name} ({ds_type}, {ds_id}) "
                f"by={who} ({performed_by}){' ' + details if details else ''}\n"
            )
        yield "".join(lines).encode()


def with_username(sql: str) -> str:
    """``RAW_SQL`` selecting ``performed_by_username`` and ``seq`` too (CSV columns)."""
    selected = "performed_by, ts_ms FROM"
    assert selected in sql
    return sql.replace(selected, "performed_by, ts_ms, performed_by_username, seq FROM", 1)


@dataclass(frozen=True)
class RawNames:
    """Every username, project name and run type, read once: the export's name columns."""

    users: dict[str, str]
    projects: dict[str, str]
    run_types: dict[str, str]

    @classmethod
    def read(cls, backend: Backend, conn: Any) -> RawNames:
        def pairs(sql: str) -> dict[str, str]:
            return {str(k): str(v) for k, v in backend.raw_select(conn, sql, [])}

        return cls(
            users=pairs("SELECT id, username FROM users"),
            projects=pairs("SELECT id, name FROM projects"),
            run_types=pairs("SELECT id, run_type FROM runs"),
        )

    def columns(self, metadata: str) -> tuple[str, ...]:
        """``projectId, projectName, runId, runLabel, addedUsernames, removedUsernames``."""
        meta = orjson.loads(metadata)
        project_id, run_id = meta.get("projectId", ""), meta.get("runId", "")
        run_type = self.run_types.get(run_id) or meta.get("runType", "")
        short = run_id if len(run_id) <= 8 else "…" + run_id[-8:]
        users = self.users

        def names(value: str) -> str:
            return ", ".join(users.get(i, i) for i in (v.strip() for v in value.split(",")) if i)

        return (
            project_id,
            self.projects.get(project_id) or meta.get("projectName", ""),
            run_id,
            f"{run_type} {short}".strip() if run_id and run_type else "",
            names(meta.get("addedUserIds", "")),
            names(meta.get("removedUserIds", "")),
        )


def raw_csv_pieces(batches: Iterable[list[tuple[Any, ...]]], names: RawNames) -> Iterator[bytes]:
    """``with_username(RAW_SQL)`` rows as the export's CSV (the stored fields, ``seq`` and the
    name columns), with the csv module. Cells are not neutralised: none of the generated data
    starts like a formula, so the bytes are the same."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow((*CSV_COLUMNS, "seq", *NAME_COLUMNS))
    for rows in batches:
        writer.writerows(
            (
                iso_ms(ts_ms),
                kind,
                ds_name,
                ds_id,
                ds_type,
                performed_by,
                username,
                metadata,
                seq,
                *names.columns(metadata),
            )
            for ds_id, ds_name, ds_type, kind, metadata, performed_by, ts_ms, username, seq in rows
        )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# -- (d) chunks at depth ----------------------------------------------------------------------


@dataclass
class Depth:
    """One depth of the six-month read: the cursor there and the timings of each read."""

    days: int  # 0: the first chunk
    cursor: Cursor | None
    chunk: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    raw_chunk: list[float] = field(default_factory=list)


RAW_CHUNK_SQL: Final = (
    "SELECT data_source_id, data_source_name, data_source_type, event_kind, metadata, "
    "performed_by, ts_ms, seq FROM audit_events WHERE ts_ms BETWEEN ? AND ? "
    "AND (ts_ms < ? OR seq < ?) AND event_kind NOT IN ({kinds}) "
    "ORDER BY ts_ms DESC, seq DESC LIMIT ?"
)


def raw_chunk(
    backend: Backend, conn: Any, window: AuditFilter, after: Cursor | None
) -> list[tuple[Any, ...]]:
    """A chunk read with the driver: the window bounded by the cursor, then its tie-break."""
    end_ms, seq = (after.ts_ms, after.seq) if after else (window.end_ms, 2**62)
    sql = RAW_CHUNK_SQL.format(kinds=", ".join("?" * len(_LEFT_OUT)))
    params = [window.start_ms, end_ms, end_ms, seq, *_LEFT_OUT, CHUNK_ROWS]
    return backend.raw_select(conn, sql, params)


def cursor_at(backend: Backend, conn: Any, ts_ms: int) -> Cursor:
    """The keyset position of the newest event at or before ``ts_ms``."""
    rows = backend.raw_select(
        conn,
        "SELECT ts_ms, seq FROM audit_events WHERE ts_ms <= ? ORDER BY ts_ms DESC, seq DESC LIMIT 1",
        [ts_ms],
    )
    return Cursor(ts_ms=int(rows[0][0]), seq=int(rows[0][1]))


def bench_depths(
    backend: Backend, conn: Any, store: Store, window: AuditFilter, reps: int
) -> list[Depth]:
    """Each depth's chunk, page and raw chunk, round-robin over the depths, after a warm-up."""
    depths = [Depth(days=0, cursor=None)] + [
        Depth(days=d, cursor=cursor_at(backend, conn, window.end_ms - d * DAY_MS))
        for d in DEPTH_DAYS
    ]
    for depth in depths:  # the app's chunk holds the raw chunk's rows
        chunk = next(iter_chunks(store, window, after=depth.cursor, limit=CHUNK_ROWS), [])
        if [tuple(r) for r in chunk] != raw_chunk(backend, conn, window, depth.cursor):
            raise SystemExit(f"{backend.name}: the chunk {depth.days} days deep differs from raw")
        if len(chunk) < CHUNK_ROWS:
            note = f"the chunk {depth.days} days deep holds {len(chunk):,} rows, not {CHUNK_ROWS:,}"
            backend.notes.append(f"{backend.name}: {note} (a small store)")
    clock = time.perf_counter
    for rep in range(reps + 1):
        for depth in depths if rep % 2 else depths[::-1]:
            start = clock()
            next(iter_chunks(store, window, after=depth.cursor, limit=CHUNK_ROWS))
            chunk_s = clock() - start
            start = clock()
            with store.read() as tx:
                read_page(tx, window, after=depth.cursor, size=PAGE_ROWS)
            page_s = clock() - start
            start = clock()
            raw_chunk(backend, conn, window, depth.cursor)
            raw_s = clock() - start
            if rep:
                depth.chunk.append(chunk_s)
                depth.page.append(page_s)
                depth.raw_chunk.append(raw_s)
    return depths


# -- (e) downloads and exports ------------------------------------------------------------------


@dataclass(frozen=True)
class LongRead:
    """One long read over HTTP, and how to make the same bytes with the driver."""

    label: str
    path: str
    params: dict[str, str | list[str]]
    marker: bytes  # once a row in the body
    raw: Callable[[], Iterator[bytes]]
    reps: int


def long_reads(backend: Backend, conn: Any, plan: Plan, now_ms: int) -> list[LongRead]:
    """The six-month text and JSON downloads and a 30-day CSV export."""

    def six_months() -> Iterator[list[tuple[Any, ...]]]:
        end = time.time_ns() // 1_000_000  # the server's window is its own "now"
        sql, params = raw_query(end - SIX_MONTHS_MS, end)
        return backend.raw_batches(conn, sql, params, RAW_BATCH)

    export_end = now_ms
    export_start = export_end - EXPORT_DAYS * DAY_MS

    def export_rows() -> Iterator[list[tuple[Any, ...]]]:
        sql, params = raw_query(export_start, export_end)
        return backend.raw_batches(conn, with_username(sql), params, RAW_BATCH)

    return [
        LongRead(
            label="six-month download, text (jsonFile=false)",
            path=DOWNLOAD_PATH,
            params={"jsonFile": "false"},
            marker=b"\n",
            raw=lambda: raw_text_pieces(six_months()),
            reps=plan.download_reps,
        ),
        LongRead(
            label="six-month download, JSON (jsonFile=true)",
            path=DOWNLOAD_PATH,
            params={"jsonFile": "true"},
            marker=b'{"dataSourceId":',
            raw=lambda: raw_json_pieces(six_months()),
            reps=plan.download_reps,
        ),
        LongRead(
            label=f"{EXPORT_DAYS}-day CSV export (format=csv)",
            path=EXPORT_PATH,
            params={
                "startTime": format_ms(export_start),
                "endTime": format_ms(export_end),
                "format": "csv",
            },
            marker=b"\r\n",
            raw=lambda: raw_csv_pieces(export_rows(), RawNames.read(backend, conn)),
            reps=plan.export_reps,
        ),
    ]


def bench_long_read(client: httpx.Client, read: LongRead, backend: Backend) -> Timed:
    """Check the HTTP body against the raw bytes (rows and digest), then time both."""
    http = http_tally(client, read.path, read.params, read.marker, digest=True)
    raw = raw_tally(read.raw(), read.marker, digest=True)
    if (http.count, http.size, http.digest) != (raw.count, raw.size, raw.digest):
        raise SystemExit(
            f"{backend.name}: {read.label}: HTTP {http.count:,} rows, {http.size:,} bytes; "
            f"raw {raw.count:,} rows, {raw.size:,} bytes: not the same body"
        )
    timed = interleaved(
        lambda: http_tally(client, read.path, read.params, read.marker, digest=False),
        lambda: raw_tally(read.raw(), read.marker, digest=False),
        read.reps,
        warm_up=False,  # the check above warmed both
    )
    header = 1 if read.marker == b"\r\n" else 0  # the CSV header line
    timed.rows = raw.count - header
    timed.body_bytes = raw.size
    return timed


# -- (f) filters ------------------------------------------------------------------------------


def bench_filter(
    backend: Backend,
    conn: Any,
    client: httpx.Client,
    window: AuditFilter,
    column: str,
    parameter: str,
    value: str,
    reps: int,
) -> Timed:
    """Six months narrowed by ``parameter`` over HTTP beside the raw select of ``column``."""
    params: dict[str, str | list[str]] = {
        "startTime": format_ms(window.start_ms),
        "endTime": format_ms(window.end_ms),
        parameter: [value],
    }
    sql, sql_params = raw_query(window.start_ms, window.end_ms, column, value)

    def raw() -> bytes:
        return raw_json(backend.raw_select(conn, sql, sql_params))

    def http() -> bytes:
        response = client.get(AUDIT_PATH, params=params)
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.text[:500]}")
        return response.content

    body, expected = http(), raw()
    if body != expected:
        raise SystemExit(f"{backend.name}: {parameter}: the API and the raw baseline differ")
    timed = interleaved(http, raw, reps)
    timed.rows = len(orjson.loads(expected))
    timed.body_bytes = len(expected)
    return timed


def http_floor(
    client: httpx.Client, window: AuditFilter, run: str, reps: int
) -> tuple[list[float], list[float]]:
    """What any request costs: ``/healthz``, and the run filter's audit page of one row."""
    page: dict[str, str | list[str]] = {
        "startTime": format_ms(window.start_ms),
        "endTime": format_ms(window.end_ms),
        "runIds": [run],
        "limit": "1",
    }
    timed = interleaved(
        lambda: client.get("/healthz"), lambda: client.get(AUDIT_PATH, params=page), reps
    )
    return timed.app, timed.raw


# -- one database -------------------------------------------------------------------------------


@dataclass
class Suite:
    """Everything measured on one database."""

    load_seconds: float
    generate_seconds: float
    depths: list[Depth]
    downloads: list[tuple[LongRead, Timed]]
    filters: list[tuple[str, Timed]]
    plans: dict[str, list[str]]
    floor: tuple[list[float], list[float]]  # GET /healthz; a one-row audit page


@dataclass(frozen=True)
class FilterCase:
    """One filter of (f): the API's parameter, the column, the ``AuditFilter`` field, whom."""

    parameter: str
    column: str
    field: str
    subject: str  # a ``Subjects`` attribute

    def value(self, who: Subjects) -> str:
        return str(getattr(who, self.subject))

    def narrow(self, window: AuditFilter, who: Subjects) -> AuditFilter:
        """The six-month window narrowed to this filter, as the API would build it."""
        value = (self.value(who),)
        if self.field == "performed_by":
            return replace(window, performed_by=value)
        if self.field == "project_ids":
            return replace(window, project_ids=value)
        return replace(window, run_ids=value)


FILTERS: Final = (
    FilterCase("performedBy", "performed_by", "performed_by", "user"),
    FilterCase("projectIds", "project_id", "project_ids", "project"),
    FilterCase("runIds", "run_id", "run_ids", "run"),
)


def bench_database(
    backend: Backend, catalog: Catalog, plan: Plan, workdir: Path, who: Subjects
) -> Suite:
    """Load, then (d) in process, then (e) and (f) against ``dstrail serve``."""
    backend.create()
    try:
        store = Store(backend.url)
        store.migrate()
        conn = backend.raw()
        load_now = time.time_ns() // 1_000_000
        # The administrator first: creating a user appends its events through the service,
        # which a bulk-loaded trail (no Merkle frontier) refuses. Its events are older than
        # the loaded ones, outside the windows read, and of kinds the reads leave out.
        partitions_since(store, load_now - (SPAN_DAYS + 1) * DAY_MS)
        api_key = bench_admin(store, load_now - (SPAN_DAYS + 1) * DAY_MS)
        frontier = Frontier.of_head(backend, conn)  # the server records each read: it appends
        held = frontier.size
        spent = Generation()
        start = time.perf_counter()
        batches = event_batches(
            catalog, plan.events, now_ms=load_now, seed=plan.seed, spent=spent, first_seq=held + 1
        )
        loaded = backend.load_batches(conn, frontier.folding(batches))
        frontier.write(conn)
        load_seconds = time.perf_counter() - start
        assert loaded == plan.events
        say(
            f"  loaded {loaded:,} events in {load_seconds:.1f}s (generating them: "
            f"{spent.seconds:.1f}s of it; batches of {BATCH_ROWS:,}, indexes rebuilt, rollup, "
            f"head size, ANALYZE); load average {load_average()}"
        )

        now = time.time_ns() // 1_000_000
        window = AuditFilter(start_ms=now - SIX_MONTHS_MS, end_ms=now)
        depths = bench_depths(backend, conn, store, window, plan.reps)
        plans: dict[str, list[str]] = {}
        for depth in (depths[0], depths[-1]):
            sql, params = captured_sql(store, window, depth.cursor)
            where = f"{depth.days} days deep" if depth.days else "first"
            plans[f"(d) chunk {where}"] = backend.explain(conn, sql, params)
        for case in FILTERS:
            sql, params = captured_sql(store, case.narrow(window, who))
            plans[f"(f) {case.parameter}"] = backend.explain(conn, sql, params)
        store.dispose()

        downloads: list[tuple[LongRead, Timed]] = []
        filters: list[tuple[str, Timed]] = []
        data_dir = workdir / f"long-{backend.name.lower()}"
        with (
            running_server(backend.url, data_dir) as base,
            httpx.Client(
                base_url=base, headers={"X-Domino-Api-Key": api_key}, timeout=300
            ) as client,
        ):
            for read in long_reads(backend, conn, plan, now) if plan.downloads else []:
                say(f"    ... {read.label} (load average {load_average()})")
                downloads.append((read, bench_long_read(client, read, backend)))
            for case in FILTERS:
                timed = bench_filter(
                    backend, conn, client, window, case.column, case.parameter, case.value(who),
                    plan.reps,
                )  # fmt: skip
                filters.append((case.parameter, timed))
            floor = http_floor(client, window, who.run, plan.reps)
        conn.close()
        return Suite(
            load_seconds=load_seconds,
            generate_seconds=spent.seconds,
            depths=depths,
            downloads=downloads,
            filters=filters,
            plans=plans,
            floor=floor,
        )
    finally:
        backend.drop()


# -- printing ---------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    return f"{median(values) * 1e3:8.1f} / {p90(values) * 1e3:6.1f}ms"


def report_depths(depths: list[Depth]) -> list[str]:
    """(d); the summary's pieces."""
    first = depths[0]
    say(f"  (d) chunk flatness: the default six-month read, {len(first.chunk)} reps")
    say(
        f"      {'depth':>10} {'chunk med / p90':>20} {'ratio':>6} "
        f"{'page med / p90':>20} {'ratio':>6} {'raw chunk med / p90':>22}"
    )
    worst_chunk = worst_page = 0.0
    for depth in depths:
        chunk_ratio = median(depth.chunk) / median(first.chunk)
        page_ratio = median(depth.page) / median(first.page)
        if depth.days:
            worst_chunk, worst_page = max(worst_chunk, chunk_ratio), max(worst_page, page_ratio)
        where = "first" if depth.days == 0 else f"{depth.days} days"
        say(
            f"      {where:>10} {_ms(depth.chunk):>20} {chunk_ratio:6.2f} "
            f"{_ms(depth.page):>20} {page_ratio:6.2f} {_ms(depth.raw_chunk):>22}"
        )
    say(
        f"      chunks: {CHUNK_ROWS:,} rows (iter_chunks from the cursor); pages: read_page of "
        f"{PAGE_ROWS} after the cursor; raw: the same chunk with the driver"
    )
    verdict = "meets" if max(worst_chunk, worst_page) <= 1.5 else "MISSES"
    say(
        f"      worst ratio to the first: chunk {worst_chunk:.2f}, page {worst_page:.2f} "
        f"({verdict} target <= 1.5)"
    )
    return [f"(d) chunk {worst_chunk:.2f}, page {worst_page:.2f} of the first (<= 1.5)"]


def report_downloads(downloads: list[tuple[LongRead, Timed]]) -> list[str]:
    """(e); the summary's pieces."""
    if not downloads:
        say("  (e) downloads and exports: left out (--no-downloads)")
        return []
    say("  (e) downloads and exports over HTTP beside the raw select + serialisation")
    pieces: list[str] = []
    for read, timed in downloads:
        http_rate = timed.rows / median(timed.app)
        raw_rate = timed.rows / median(timed.raw)
        ratio = http_rate / raw_rate
        verdict = "meets" if ratio >= 0.5 else "MISSES"
        say(
            f"    {read.label}: {timed.rows:,} rows, {timed.body_bytes / 1e6:,.0f} MB, "
            f"{len(timed.app)} reps (body checked equal to raw)"
        )
        say(f"      HTTP {http_rate:10,.0f} rows/s  ({_ms(timed.app).strip()} per read)")
        say(f"      raw  {raw_rate:10,.0f} rows/s  ({_ms(timed.raw).strip()} per read)")
        say(f"      ratio HTTP/raw rate: {ratio:.2f} ({verdict} target >= 0.5)")
        pieces.append(f"{read.label.split(' (')[0]} {ratio:.2f}")
    return ["(e) " + ", ".join(pieces) + " of raw (>= 0.5)"]


def report_filters(
    filters: list[tuple[str, Timed]], floor: tuple[list[float], list[float]]
) -> list[str]:
    """(f); the summary's pieces."""
    say("  (f) six months through GET /api/datasource/v1/audit, one filter each")
    pieces: list[str] = []
    for parameter, timed in filters:
        ratio = median(timed.app) / median(timed.raw)
        verdict = "meets" if ratio <= 2 else "MISSES"
        say(
            f"    {parameter}: {timed.rows:,} rows, {timed.body_bytes / 1e6:.1f} MB, "
            f"{len(timed.app)} reps (body checked equal to raw)"
        )
        say(f"      HTTP GET          {_ms(timed.app)}")
        say(f"      raw SQL + orjson  {_ms(timed.raw)}")
        say(f"      ratio HTTP/raw: {ratio:.2f} ({verdict} target <= 2)")
        pieces.append(f"{parameter} {ratio:.2f}x")
    healthz, one_row = floor
    say(
        f"    HTTP floor: GET /healthz {_ms(healthz).strip()}; the runIds page of limit=1 "
        f"{_ms(one_row).strip()}"
    )
    return ["(f) " + ", ".join(pieces) + " raw (<= 2)"]


# -- the run ----------------------------------------------------------------------------------


def run_long_reads(
    *,
    events: int | None,
    quick: bool,
    only: str | None,
    seed: int,
    downloads: bool = True,
    download_reps: int | None = None,
) -> int:
    """``audit_bench.py --long-reads``: (d), (e) and (f) on each database."""
    plan = Plan(
        events=events or (QUICK_EVENTS if quick else LONG_EVENTS),
        reps=7 if quick else 21,
        download_reps=download_reps or 3,
        export_reps=download_reps or (3 if quick else 5),
        seed=seed,
        downloads=downloads,
    )
    say(
        f"dstrail audit benchmark, long reads: {plan.events:,} events over {SPAN_DAYS} days "
        f"(~{plan.events // SPAN_DAYS:,} a day), {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__}"
    )
    say(f"load average at the start: {load_average()}")
    catalog = make_catalog(random.Random(seed))
    who = subjects(catalog)
    say(f"filters: performedBy={who.user}, projectIds={who.project}, runIds={who.run}")
    summary: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dstrail-long-") as tmp:
        workdir = Path(tmp)
        for kind in [only] if only else ["sqlite", "postgresql"]:
            backend: Backend
            if kind == "postgresql":
                why = pg_reachable()
                if why:
                    say(f"\nPostgreSQL: skipped, not reachable: {why}")
                    continue
                backend = PostgreSQLBackend("long")
            else:
                backend = SQLiteBackend(workdir, "long")
            say(f"\n{backend.name}  (load average {load_average()})")
            started = time.perf_counter()
            suite = bench_database(backend, catalog, plan, workdir, who)
            pieces = report_depths(suite.depths)
            pieces += report_downloads(suite.downloads)
            pieces += report_filters(suite.filters, suite.floor)
            for label, lines in suite.plans.items():
                say(f"  plan {label}: " + " | ".join(line.strip() for line in lines))
            say(f"  {backend.name} took {time.perf_counter() - started:.0f}s in all")
            summary.append(
                f"  {backend.name} (load {suite.load_seconds:.0f}s): " + "; ".join(pieces)
            )
            notes += backend.notes
    say(f"\nload average at the end: {load_average()}")
    if summary:
        say("summary:")
        for line in summary:
            say(line)
    for note in dict.fromkeys(notes):
        say(f"note: {note}")
    return 0
