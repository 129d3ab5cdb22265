"""The audit trail at scale (``audit_bench.py --scale``): a store of 10,000,000 events over 182
days (about 55,000 a day), on SQLite and on PostgreSQL, every figure beside a raw driver
baseline measured in the same run.

(b) the default request, ``GET /api/datasource/v1/audit`` (the last 24 hours);
(c) six months filtered by one data source name;
(p) a first page of ``limit=100`` and the next page its ``Link`` header names (keyset cursor);
(f) six months filtered by one user, one project and one run;
(k) the console's trail page for the last 30 days (``GET /audit?range=30d``, signed in);
(e) the six-month text and JSON downloads, and CSV exports of 7 and 30 days: rows/s, and the
    server's peak RSS during each (``VmHWM``, reset before each read through
    ``/proc/<pid>/clear_refs``), to show it does not grow with the window; each window is
    read once, untimed, before its timed pair (HTTP, then raw);
(g) the purge of one month (``bench/retention_bench.py``).

The store is built once for both databases: each batch of events is generated and sealed once
(leaf hashes, the subtree hashes each completes, a signed checkpoint every 1,000 events) and
written to each database (``executemany`` on SQLite, ``COPY`` into the partitioned table on
PostgreSQL, whose month partitions are made first for the whole span), indexes dropped and
rebuilt around the load. Figures are medians and p90s; ratios are HTTP over raw.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import psycopg

from audit_bench import (
    AUDIT_PATH,
    DATA_SOURCES,
    SIX_MONTHS_MS,
    Backend,
    PostgreSQLBackend,
    ReadResult,
    SQLiteBackend,
    _count_days,
    _finish_load,
    bench_admin,
    bench_read,
    check_same_body,
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
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.timestamps import DAY_MS, format_ms, parse_iso
from dstrail.domain.trail import EXTENSION_KINDS
from dstrail.settings import Settings
from dstrail.store.partitions import ensure_partitions
from dstrail.web.filters import DEFAULT_KINDS
from long_reads import (
    BATCH_ROWS,
    DOWNLOAD_PATH,
    EXPORT_PATH,
    FILTERS,
    RAW_BATCH,
    SPAN_DAYS,
    Generation,
    RawNames,
    Timed,
    bench_filter,
    event_batches,
    http_floor,
    http_tally,
    interleaved,
    raw_csv_pieces,
    raw_json_pieces,
    raw_tally,
    raw_text_pieces,
    subjects,
    with_username,
)
from retention_bench import PurgeFigures, bench_purge, report_purge
from support import SEALED_LOAD_COLUMNS, Sealer, audit_indexes_dropped, prepare_bulk_load

SCALE_EVENTS: Final = 10_000_000
QUICK_EVENTS: Final = 300_000
PAGE_LIMIT: Final = 100
CONSOLE_DAYS: Final = 30
CONSOLE_ROWS: Final = 50  # the console's page
EXPORT_WINDOWS: Final = (7, 30)
PARTS: Final = ("reads", "pages", "filters", "console", "downloads", "text", "purge")
"""What ``--skip`` may leave out (``text``: the six-month text download alone)."""
_LEFT_OUT: Final = sorted(k.value for k in EXTENSION_KINDS)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Plan:
    events: int
    reps: int
    seed: int
    skip: frozenset[str]
    """Parts left out: ``part`` on every database, ``sqlite:part`` or ``postgresql:part`` on one."""

    def runs(self, part: str, backend: Backend) -> bool:
        """Whether ``part`` is measured on ``backend``."""
        return part not in self.skip and f"{backend.name.lower()}:{part}" not in self.skip


# -- building one store per database from the same batches ---------------------------------------


class Sink:
    """One database a sealed bulk load writes to."""

    def __init__(self, backend: Backend, dstrail: Dstrail, conn: Any) -> None:
        self.backend, self.dstrail, self.conn = backend, dstrail, conn
        self.seconds = 0.0
        self.finish_seconds = 0.0
        self._stack = contextlib.ExitStack()
        self._copy: Any = None

    def start(self, first_ms: int, now_ms: int) -> None:
        columns = {c.name for c in self.backend.columns(self.conn) if c.required}
        unknown = sorted(columns - set(SEALED_LOAD_COLUMNS))
        if unknown:
            raise SystemExit(f"{self.backend.name}: audit_events needs columns: {unknown}")
        names = ", ".join(SEALED_LOAD_COLUMNS)
        prepare_bulk_load(self.conn)
        if isinstance(self.conn, sqlite3.Connection):
            self.conn.execute("BEGIN IMMEDIATE")
            self._stack.enter_context(audit_indexes_dropped(self.conn))
            marks = ", ".join("?" * len(SEALED_LOAD_COLUMNS))
            self._insert = f"INSERT INTO audit_events ({names}) VALUES ({marks})"
            return
        # Every month of the span has its partition before the rows arrive (COPY routes them).
        with self.dstrail.store.engine.begin() as connection:
            ensure_partitions(connection, now_ms=now_ms, since_ms=first_ms)
        self._stack.enter_context(audit_indexes_dropped(self.conn))
        self._copy = self._stack.enter_context(
            self.conn.cursor().copy(f"COPY audit_events ({names}) FROM STDIN")
        )

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        started = time.perf_counter()
        if self._copy is None:
            self.conn.executemany(self._insert, rows)
            self.conn.execute("COMMIT")  # a batch a transaction: the WAL stays small
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            write_row = self._copy.write_row
            for row in rows:
                write_row(row)
        self.seconds += time.perf_counter() - started

    def finish(self, sealer: Sealer, counts: Any, total: int) -> None:
        started = time.perf_counter()
        self._stack.close()  # the COPY ends, the indexes are built
        sqlite = isinstance(self.conn, sqlite3.Connection)
        mark = "?" if sqlite else "%s"
        _finish_load(self.conn, counts, total, mark)
        sealer.write_head(self.conn, mark, self.dstrail.signer)
        if sqlite:
            self.conn.execute("COMMIT")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        else:
            self.conn.commit()
            self.conn.autocommit = True
            self.conn.execute("VACUUM ANALYZE audit_events")
            self.conn.autocommit = False
        self.finish_seconds = time.perf_counter() - started


@dataclass
class Loaded:
    """One database, built."""

    backend: Backend
    dstrail: Dstrail
    conn: Any
    api_key: str
    data_dir: Path
    sink: Sink


@dataclass
class Build:
    generate: float
    seal: float
    seconds: float
    first_ms: int
    now_ms: int


def build_stores(
    backends: list[Backend], catalog: Any, plan: Plan, workdir: Path
) -> tuple[list[Loaded], Build]:
    """Each database migrated, with the bench's administrator, then the same sealed events."""
    now_ms = time.time_ns() // 1_000_000
    first_ms = now_ms - SPAN_DAYS * DAY_MS
    loaded: list[Loaded] = []
    for backend in backends:
        backend.create()
        data_dir = workdir / f"scale-{backend.name.lower()}"
        dstrail = open_dstrail(Settings(data_dir=data_dir, database_url=backend.url))
        conn = backend.raw()
        loaded.append(Loaded(backend, dstrail, conn, "", data_dir, Sink(backend, dstrail, conn)))
    heads = set()
    for item in loaded:
        size, frontier = item.backend.raw_select(
            item.conn, "SELECT size, frontier FROM audit_head WHERE id = 1", []
        )[0]
        heads.add((int(size), bytes(frontier or b"")))
    if len(heads) != 1:
        raise SystemExit("the databases' trails differ before the load")
    size, packed = heads.pop()
    frontier = [packed[i : i + 32] for i in range(0, len(packed), 32)]
    sealer = Sealer(size=size, frontier=frontier)
    for item in loaded:
        item.sink.start(first_ms, now_ms)
    spent = Generation()
    counts: collections.Counter[tuple[int, str]] = collections.Counter()
    started = time.perf_counter()
    total = 0
    batches = event_batches(
        catalog, plan.events, now_ms=now_ms, seed=plan.seed, spent=spent, first_seq=size + 1
    )
    for batch in batches:
        sealed = sealer.seal(batch)
        for item in loaded:
            item.sink.write(sealed)
        _count_days(counts, batch)
        total += len(batch)
    sealer.close(now_ms)
    for item in loaded:
        item.sink.finish(sealer, counts, total)
        # Through the service, after the load (which continues the trail as the migrations
        # left it, the same on both databases): its events are of kinds the reads leave out.
        item.api_key = bench_admin(item.dstrail.store, time.time_ns() // 1_000_000)
    build = Build(
        generate=spent.seconds, seal=sealer.seconds, seconds=time.perf_counter() - started,
        first_ms=first_ms, now_ms=now_ms,
    )  # fmt: skip
    return loaded, build


# -- the server's memory ------------------------------------------------------------------------


def reset_peak(pid: int) -> int:
    """Reset the peak RSS of ``pid`` (Linux: "5" to clear_refs); its RSS now, in kB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status(pid)["VmRSS"]


def peak_rss(pid: int) -> int:
    """The peak RSS of ``pid`` since the last reset, in kB."""
    return _status(pid)["VmHWM"]


def _status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


# -- (p) pages ----------------------------------------------------------------------------------


_PAGE_SQL: Final = (
    "SELECT data_source_id, data_source_name, data_source_type, event_kind, metadata, "
    "performed_by, ts_ms FROM audit_events WHERE ts_ms BETWEEN ? AND ? {after}"
    "AND event_kind NOT IN ({kinds}) ORDER BY ts_ms DESC, seq DESC LIMIT ?"
)


def raw_page(
    backend: Backend, conn: Any, start_ms: int, end_ms: int, after: Cursor | None
) -> bytes:
    """A page of ``PAGE_LIMIT`` with the driver (after ``after``: a keyset), as JSON."""
    kinds = ", ".join("?" * len(_LEFT_OUT))
    if after is None:
        sql = _PAGE_SQL.format(after="", kinds=kinds)
        params: list[object] = [start_ms, end_ms, *_LEFT_OUT, PAGE_LIMIT]
    else:
        sql = _PAGE_SQL.format(after="AND (ts_ms < ? OR seq < ?) ", kinds=kinds)
        end = min(end_ms, after.ts_ms)
        params = [start_ms, end, after.ts_ms, after.seq, *_LEFT_OUT, PAGE_LIMIT]
    return raw_json(backend.raw_select(conn, sql, params))


@dataclass
class Pages:
    first: Timed
    following: Timed


def bench_pages(backend: Backend, conn: Any, client: httpx.Client, reps: int) -> Pages:
    """The first page of the default window, then the page its ``Link`` names."""
    first = client.get(AUDIT_PATH, params={"limit": str(PAGE_LIMIT)})
    link = first.headers.get("link", "")
    match = re.match(r"<([^>]+)>", link)
    if first.status_code != 200 or not match:
        raise SystemExit(f"{backend.name}: the first page has no Link ({first.status_code})")
    next_url = match.group(1)
    query = httpx.URL(next_url).params
    after = Cursor.decode(query["cursor"])
    start_ms = _parse_iso(query["startTime"])
    end_ms = _parse_iso(query["endTime"])
    body = client.get(next_url).content
    if body != raw_page(backend, conn, start_ms, end_ms, after):
        raise SystemExit(f"{backend.name}: the next page differs from the raw keyset page")

    def raw_first() -> bytes:
        now = time.time_ns() // 1_000_000
        return raw_page(backend, conn, now - DAY_MS, now, None)

    first_t = interleaved(
        lambda: client.get(AUDIT_PATH, params={"limit": str(PAGE_LIMIT)}).content, raw_first, reps
    )
    following = interleaved(
        lambda: client.get(next_url).content,
        lambda: raw_page(backend, conn, start_ms, end_ms, after),
        reps,
    )
    first_t.rows = following.rows = PAGE_LIMIT
    return Pages(first=first_t, following=following)


def _parse_iso(value: str) -> int:
    return parse_iso(value, field="time")


# -- (k) the console ----------------------------------------------------------------------------


def console_client(base: str, api_key: str) -> httpx.Client:
    """A browser-like client signed in to the console with ``api_key`` (the sign-in form)."""
    client = httpx.Client(base_url=base, timeout=120)
    form = client.get("/signin")
    match = _CSRF.search(form.text)
    if not match:
        raise SystemExit("the sign-in page has no CSRF token")
    response = client.post(
        "/signin",
        data={"csrf_token": match.group(1), "api_key": api_key, "next": "/audit"},
        follow_redirects=False,
    )
    if response.status_code != 303:
        raise SystemExit(f"signing in: {response.status_code} {response.text[:300]}")
    return client


def raw_console(backend: Backend, conn: Any, days: int) -> bytes:
    """What the console's page reads, with the driver: the newest ``CONSOLE_ROWS`` + 1 events
    of its kinds in the window, the daily rollup of its whole days and the two edge days
    counted from events; serialised with orjson."""
    now = time.time_ns() // 1_000_000
    start = now - days * DAY_MS
    kinds = [k.value for k in DEFAULT_KINDS]
    marks = ", ".join("?" * len(kinds))
    rows = backend.raw_select(
        conn,
        "SELECT data_source_id, data_source_name, data_source_type, event_kind, metadata, "
        f"performed_by, ts_ms, seq FROM audit_events WHERE ts_ms BETWEEN ? AND ? "
        f"AND event_kind IN ({marks}) ORDER BY ts_ms DESC, seq DESC LIMIT ?",
        [start, now, *kinds, CONSOLE_ROWS + 1],
    )
    first_day, last_day = start // DAY_MS, now // DAY_MS
    counts = backend.raw_select(
        conn,
        "SELECT day, event_kind, count FROM audit_daily_counts WHERE day > ? AND day < ?",
        [first_day, last_day],
    )
    for low, high in ((start, (first_day + 1) * DAY_MS - 1), (last_day * DAY_MS, now)):
        counts += backend.raw_select(
            conn,
            "SELECT ts_ms / 86400000, event_kind, count(*) FROM audit_events "
            "WHERE ts_ms BETWEEN ? AND ? GROUP BY ts_ms / 86400000, event_kind",
            [low, high],
        )
    return orjson.dumps({"rows": rows[:CONSOLE_ROWS], "counts": counts})


def bench_console(
    backend: Backend, conn: Any, base: str, api_key: str, reps: int
) -> tuple[Timed, int]:
    """``GET /audit?range=30d`` signed in, beside ``raw_console``; and the page's size."""
    client = console_client(base, api_key)
    try:

        def page() -> bytes:
            response = client.get("/audit", params={"range": f"{CONSOLE_DAYS}d"})
            if response.status_code != 200 or "audit" not in response.text:
                raise SystemExit(f"/audit: {response.status_code}: {response.text[:300]}")
            return response.content

        size = len(page())
        timed = interleaved(page, lambda: raw_console(backend, conn, CONSOLE_DAYS), reps)
    finally:
        client.close()
    return timed, size


# -- (e) long reads and memory ------------------------------------------------------------------


@dataclass
class LongFigure:
    label: str
    window_days: int
    rows: int
    body_bytes: int
    http_s: float
    raw_s: float
    server_rss_kb: int  # at the reset
    server_peak_kb: int
    raw_peak_growth_kb: int  # the bench process (the raw side): peak above its RSS at the reset


def long_read(
    client: httpx.Client,
    pid: int,
    label: str,
    days: int,
    path: str,
    params: dict[str, str | list[str]],
    marker: bytes,
    raw: Callable[[], Iterator[bytes]],
    *,
    digest: bool,
) -> LongFigure:
    """One HTTP read (the server's peak RSS reset before it) and one raw read, compared.

    The window is read once before, untimed, with the raw reader: both timed reads then find
    it in the same cache state (otherwise the first pays for reading it from disk)."""
    started = time.perf_counter()
    raw_tally(raw(), marker, digest=False)
    say(f"        warmed in {time.perf_counter() - started:.1f}s")
    rss = reset_peak(pid)
    started = time.perf_counter()
    http = http_tally(client, path, params, marker, digest=digest)
    http_s = time.perf_counter() - started
    peak = peak_rss(pid)
    own = reset_peak(os.getpid())
    started = time.perf_counter()
    raw_t = raw_tally(raw(), marker, digest=digest)
    raw_s = time.perf_counter() - started
    own_peak = peak_rss(os.getpid())
    if (http.count, http.size, http.digest) != (raw_t.count, raw_t.size, raw_t.digest):
        raise SystemExit(
            f"{label}: HTTP {http.count:,} rows {http.size:,} bytes; raw {raw_t.count:,} rows "
            f"{raw_t.size:,} bytes: not the same body"
        )
    header = 1 if marker == b"\r\n" else 0
    return LongFigure(
        label=label, window_days=days, rows=raw_t.count - header, body_bytes=raw_t.size,
        http_s=http_s, raw_s=raw_s, server_rss_kb=rss, server_peak_kb=peak,
        raw_peak_growth_kb=own_peak - own,
    )  # fmt: skip


def bench_long_reads(
    backend: Backend, conn: Any, client: httpx.Client, pid: int, plan: Plan, now_ms: int
) -> list[LongFigure]:
    """Exports of 7 and 30 days (CSV), then the six-month JSON and text downloads."""
    figures: list[LongFigure] = []
    for days in EXPORT_WINDOWS:
        start = now_ms - days * DAY_MS

        def export_rows(start: int = start) -> Iterator[list[tuple[Any, ...]]]:
            sql, params = raw_query(start, now_ms)
            return backend.raw_batches(conn, with_username(sql), params, RAW_BATCH)

        say(f"    ... {days}-day CSV export (load average {load_average()})")
        figures.append(
            long_read(
                client,
                pid,
                f"{days}-day CSV export",
                days,
                EXPORT_PATH,
                {"startTime": format_ms(start), "endTime": format_ms(now_ms), "format": "csv"},
                b"\r\n",
                lambda rows=export_rows: raw_csv_pieces(rows(), RawNames.read(backend, conn)),
                digest=True,
            )
        )

    def six_months() -> Iterator[list[tuple[Any, ...]]]:
        end = time.time_ns() // 1_000_000  # the server's window is its own "now"
        sql, params = raw_query(end - SIX_MONTHS_MS, end)
        return backend.raw_batches(conn, sql, params, RAW_BATCH)

    downloads = [("JSON", "true", b'{"dataSourceId":', raw_json_pieces)]
    if plan.runs("text", backend):
        downloads.append(("text", "false", b"\n", raw_text_pieces))
    for kind, flag, marker, pieces in downloads:
        say(f"    ... six-month {kind} download (load average {load_average()})")
        figures.append(
            long_read(
                client,
                pid,
                f"six-month {kind} download",
                183,
                DOWNLOAD_PATH,
                {"jsonFile": flag},
                marker,
                lambda p=pieces: p(six_months()),
                digest=False,
            )
        )
    return figures


# -- one database -------------------------------------------------------------------------------


@dataclass
class Suite:
    default: ReadResult | None = None
    by_name: ReadResult | None = None
    pages: Pages | None = None
    filters: list[tuple[str, Timed]] = field(default_factory=list)
    console: tuple[Timed, int] | None = None
    long: list[LongFigure] = field(default_factory=list)
    purge: PurgeFigures | None = None
    floor: tuple[list[float], list[float]] | None = None  # /healthz; a one-row runIds page
    seconds: float = 0.0


def bench_database(item: Loaded, catalog: Any, plan: Plan, first_ms: int) -> Suite:
    """Every part against ``dstrail serve`` on one database, then the purge in process."""
    backend, conn = item.backend, item.conn
    suite = Suite()
    started = time.perf_counter()
    name = sorted(catalog.sources, key=lambda s: s[1])[DATA_SOURCES // 2][1]
    who = subjects(catalog)
    pids: list[int] = []
    with (
        running_server(backend.url, item.data_dir, on_start=pids.append) as base,
        httpx.Client(
            base_url=base, headers={"X-Domino-Api-Key": item.api_key}, timeout=600
        ) as client,
    ):
        now = time.time_ns() // 1_000_000
        if plan.runs("reads", backend):
            say(f"    ... (b) and (c) (load average {load_average()})")
            check_same_body(backend, conn, client, None, now - DAY_MS, now)
            check_same_body(backend, conn, client, name, now - SIX_MONTHS_MS, now)

            def last_day() -> tuple[int, int]:
                now = time.time_ns() // 1_000_000
                return now - DAY_MS, now

            suite.default = bench_read(
                backend, conn, client, params={}, window=last_day, name=None, reps=plan.reps
            )
            suite.by_name = bench_read(
                backend, conn, client,
                params={"startTime": format_ms(now - SIX_MONTHS_MS), "endTime": format_ms(now),
                        "dataSourceNames": [name]},
                window=lambda: (now - SIX_MONTHS_MS, now), name=name, reps=plan.reps,
            )  # fmt: skip
        if plan.runs("pages", backend):
            suite.pages = bench_pages(backend, conn, client, plan.reps)
        if plan.runs("filters", backend):
            say(f"    ... (f) filters (load average {load_average()})")
            window = AuditFilter(start_ms=now - SIX_MONTHS_MS, end_ms=now)
            for case in FILTERS:
                timed = bench_filter(
                    backend, conn, client, window, case.column, case.parameter,
                    case.value(who), plan.reps,
                )  # fmt: skip
                suite.filters.append((case.parameter, timed))
        suite.floor = http_floor(
            client, AuditFilter(start_ms=now - SIX_MONTHS_MS, end_ms=now), who.run, plan.reps
        )
        if plan.runs("console", backend):
            say(f"    ... (k) console (load average {load_average()})")
            suite.console = bench_console(backend, conn, base, item.api_key, plan.reps)
        if plan.runs("downloads", backend):
            suite.long = bench_long_reads(backend, conn, client, pids[0], plan, now)
    if plan.runs("purge", backend):
        suite.purge = bench_purge(backend, item.dstrail, conn, first_ms, item.data_dir.parent)
    suite.seconds = time.perf_counter() - started
    return suite


# -- printing -----------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1e3:8.1f} / {p90(values) * 1e3:7.1f} ms"


def _ratio_line(label: str, app: list[float], raw: list[float], extra: str = "") -> float:
    ratio = median(app) / median(raw)
    verdict = "meets" if ratio <= 2 else "MISSES"
    say(f"    {label:44} HTTP {_ms(app)}   raw {_ms(raw)}   {ratio:5.2f}x ({verdict}){extra}")
    return ratio


def report(name: str, suite: Suite) -> list[str]:
    """Everything of one database; the summary's pieces."""
    pieces: list[str] = []
    say("  reads (median / p90; target <= 2x raw)")
    if suite.default and suite.by_name:
        for label, result in (
            ("(b) default 24 h", suite.default),
            ("(c) 183 d, one name", suite.by_name),
        ):
            extra = f"  {result.rows:,} rows, {result.body_bytes / 1e6:.1f} MB"
            ratio = _ratio_line(label, result.http, result.raw, extra)
            pieces.append(f"{label.split()[0]} {ratio:.2f}x")
    if suite.pages:
        for label, timed in (
            (f"(p) first page, limit={PAGE_LIMIT}", suite.pages.first),
            ("(p) next page (keyset cursor)", suite.pages.following),
        ):
            ratio = _ratio_line(label, timed.app, timed.raw)
            pieces.append(f"{label.split(',')[0].split(' (')[0]} {ratio:.2f}x")
    for parameter, timed in suite.filters:
        extra = f"  {timed.rows:,} rows, {timed.body_bytes / 1e6:.1f} MB"
        ratio = _ratio_line(f"(f) 183 d, {parameter}", timed.app, timed.raw, extra)
        pieces.append(f"(f) {parameter} {ratio:.2f}x")
    if suite.console:
        timed, size = suite.console
        extra = f"  page {size / 1e3:.0f} kB"
        ratio = _ratio_line(
            f"(k) console /audit?range={CONSOLE_DAYS}d", timed.app, timed.raw, extra
        )
        pieces.append(f"(k) {ratio:.2f}x")
    if suite.floor:
        healthz, one_row = suite.floor
        say(
            f"    HTTP floor: GET /healthz {_ms(healthz).strip()}; a one-row runIds page "
            f"{_ms(one_row).strip()}"
        )
    if suite.long:
        say("  (e) long reads: rows/s (target >= 0.5 of raw) and the server's peak RSS")
        for figure in suite.long:
            http_rate, raw_rate = figure.rows / figure.http_s, figure.rows / figure.raw_s
            ratio = http_rate / raw_rate
            verdict = "meets" if ratio >= 0.5 else "MISSES"
            say(
                f"    {figure.label:26} {figure.rows:>10,} rows {figure.body_bytes / 1e6:7,.0f} MB  "
                f"HTTP {http_rate:8,.0f}/s ({figure.http_s:6.1f}s)  raw {raw_rate:8,.0f}/s "
                f"({figure.raw_s:6.1f}s)  {ratio:.2f} ({verdict})"
            )
            say(
                f"    {'':26} server RSS {figure.server_rss_kb / 1024:6.0f} MB at the start, peak "
                f"{figure.server_peak_kb / 1024:6.0f} MB (+{(figure.server_peak_kb - figure.server_rss_kb) / 1024:.0f}); "
                f"raw side peak +{figure.raw_peak_growth_kb / 1024:.0f} MB"
            )
            pieces.append(f"(e) {figure.label.split(' (')[0]} {ratio:.2f}")
        peaks = [f.server_peak_kb / 1024 for f in suite.long]
        say(
            f"    server peak RSS over windows of "
            f"{', '.join(str(f.window_days) for f in suite.long)} days: "
            f"{', '.join(f'{p:.0f}' for p in peaks)} MB (max/min {max(peaks) / min(peaks):.2f})"
        )
    if suite.purge:
        pieces += report_purge(name, suite.purge)
    say(f"  {name}: the measurements took {suite.seconds:.0f}s")
    return pieces


def check_skip(skip: list[str]) -> None:
    """``SystemExit`` naming what is accepted, for a part ``--skip`` does not know."""
    for value in skip:
        database, _, part = value.rpartition(":")
        if part not in PARTS or database not in ("", "sqlite", "postgresql"):
            raise SystemExit(
                f"--skip {value}: accepted: {', '.join(PARTS)}, each alone or after "
                "sqlite: or postgresql: (one database)"
            )


def run_scale(
    *, events: int | None, quick: bool, only: str | None, seed: int, skip: list[str]
) -> int:
    """``audit_bench.py --scale``."""
    check_skip(skip)
    plan = Plan(
        events=events or (QUICK_EVENTS if quick else SCALE_EVENTS),
        reps=5 if quick else 7,
        seed=seed,
        skip=frozenset(skip),
    )
    say(
        f"dstrail audit benchmark at scale: {plan.events:,} events over {SPAN_DAYS} days "
        f"(~{plan.events // SPAN_DAYS:,} a day), {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__}"
    )
    if plan.skip:
        say(f"left out: {', '.join(sorted(plan.skip))}")
    say(f"load average at the start: {load_average()}")
    catalog = make_catalog(random.Random(seed))
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dstrail-scale-") as tmp:
        workdir = Path(tmp)
        backends: list[Backend] = []
        # PostgreSQL first: SQLite's VACUUM after its purge is the longest step of a large run.
        for kind in [only] if only else ["postgresql", "sqlite"]:
            if kind == "postgresql":
                why = pg_reachable()
                if why:
                    say(f"PostgreSQL: skipped, not reachable: {why}")
                    continue
                backends.append(PostgreSQLBackend("scale"))
            else:
                backends.append(SQLiteBackend(workdir, "scale"))
        try:
            loaded, build = build_stores(backends, catalog, plan, workdir)
            say(
                f"\nbuilt {plan.events:,} events in {build.seconds:.0f}s: generating "
                f"{build.generate:.0f}s, sealing (leaves, subtrees, checkpoints) {build.seal:.0f}s, "
                + ", ".join(
                    f"{i.backend.name} writes {i.sink.seconds:.0f}s + indexes, rollup, head "
                    f"{i.sink.finish_seconds:.0f}s"
                    for i in loaded
                )
                + f" (batches of {BATCH_ROWS:,}); load average {load_average()}"
            )
            for item in loaded:
                say(f"\n{item.backend.name}  (load average {load_average()})")
                suite = bench_database(item, catalog, plan, build.first_ms)
                summary.append(
                    f"  {item.backend.name}: " + "; ".join(report(item.backend.name, suite))
                )
                item.conn.close()
                item.dstrail.store.dispose()
        finally:
            for backend in backends:
                backend.drop()
    say(f"\nload average at the end: {load_average()}")
    say("summary:")
    for line in summary:
        say(line)
    return 0
