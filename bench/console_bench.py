"""The console's trail page on a store of 1,000,000 events over 182 days (about 5,500 a day), on
SQLite and on PostgreSQL, beside the audit API for the same window.

(t) ``GET /audit?range=30d`` signed in (target: under 0.3 s), beside ``GET
    /api/datasource/v1/audit`` for the same 30 days (its first page, ``limit=50``, and the whole
    window) and the console's own reads with the driver (``scale_bench.raw_console``);
(t2) the same view's later pages: the next page (its position counted with the same filter) and
    the oldest page;
(t3) the windows whose chart is counted from events: the last 24 hours (15-minute bars) and 7
    days (3-hour bars);
(t4) narrowed views: one data source name, an object key pattern (read from the metadata);
(t5) a live view's poll with nothing new, and name suggestions.

The store is built as ``audit_bench.py --scale`` builds it (``scale_bench.build_stores``: sealed
batches, indexes rebuilt after the load), served by ``dstrail serve`` in a subprocess whose
forensics follower is held off (``DSTRAIL_FORENSICS_FOLLOW_SECONDS=3600``): on a store loaded in
bulk it would replay the million events during the measurements, which a running server has
long done. Figures are medians and p90s of interleaved repetitions.

    python bench/console_bench.py [--events N] [--only sqlite|postgresql] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import httpx
import psycopg

from audit_bench import (
    AUDIT_PATH,
    Backend,
    Catalog,
    PostgreSQLBackend,
    SQLiteBackend,
    load_average,
    make_catalog,
    median,
    p90,
    pg_reachable,
    running_server,
    say,
)
from dstrail.domain.timestamps import DAY_MS, format_ms
from long_reads import SPAN_DAYS, Timed, interleaved
from scale_bench import CONSOLE_DAYS, Loaded, Plan, build_stores, console_client, raw_console

EVENTS: Final = 1_000_000
TARGET_S: Final = 0.3
PAGE: Final = 50


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1e3:7.1f} / {p90(values) * 1e3:7.1f} ms"


def _get(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> bytes:
    response = client.get(path, params=params)
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code}: {response.text[:300]}")
    return response.content


def _timed(call: Callable[[], object], reps: int) -> list[float]:
    call()  # warm
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def _link(body: bytes, element_id: str) -> str:
    text = body.decode()
    marker = f'id="{element_id}" href="'
    at = text.find(marker)
    if at < 0:
        raise SystemExit(f"the trail page has no #{element_id} link")
    return text[at + len(marker) : text.index('"', at + len(marker))].replace("&amp;", "&")


def bench_console(item: Loaded, catalog: Catalog, reps: int) -> list[tuple[str, list[float], str]]:
    """Every figure of one database: (label, seconds, note)."""
    backend, conn = item.backend, item.conn
    name = sorted(catalog.sources, key=lambda s: s[1])[len(catalog.sources) // 2][1]
    figures: list[tuple[str, list[float], str]] = []
    with running_server(backend.url, item.data_dir) as base:
        page_client = console_client(base, item.api_key)
        api = httpx.Client(base_url=base, headers={"X-Domino-Api-Key": item.api_key}, timeout=600)
        try:
            month = {"range": f"{CONSOLE_DAYS}d"}
            body = _get(page_client, "/audit", month)
            timed: Timed = interleaved(
                lambda: _get(page_client, "/audit", month),
                lambda: raw_console(backend, conn, CONSOLE_DAYS),
                reps,
            )
            verdict = "meets" if median(timed.app) < TARGET_S else "MISSES"
            figures.append(
                (f"(t) /audit?range={CONSOLE_DAYS}d", timed.app,
                 f"target < {TARGET_S:.1f} s: {verdict}; page {len(body) / 1e3:.0f} kB"),
            )  # fmt: skip
            figures.append((f"    raw: the page's reads ({CONSOLE_DAYS} d)", timed.raw, "driver"))

            def window() -> dict[str, str]:
                now = time.time_ns() // 1_000_000
                return {
                    "startTime": format_ms(now - CONSOLE_DAYS * DAY_MS),
                    "endTime": format_ms(now),
                }

            first = _timed(lambda: _get(api, AUDIT_PATH, {**window(), "limit": str(PAGE)}), reps)
            figures.append((f"    audit API, same window, limit={PAGE}", first, "first page"))
            whole_body = _get(api, AUDIT_PATH, window())
            whole = _timed(lambda: _get(api, AUDIT_PATH, window()), max(2, reps // 3))
            figures.append(
                ("    audit API, same window, whole", whole,
                 f"{whole_body.count(b'eventKind'):,} events, {len(whole_body) / 1e6:.0f} MB"),
            )  # fmt: skip
            older = _link(body, "older")
            figures.append(("(t2) next page (position counted)", _timed(
                lambda: _get(page_client, older), reps), "cursor"))  # fmt: skip
            oldest = _link(body, "oldest")
            figures.append(
                ("(t2) oldest page", _timed(lambda: _get(page_client, oldest), reps), "")
            )
            for label in ("24h", "7d"):
                figures.append(
                    (f"(t3) /audit?range={label}", _timed(
                        lambda label=label: _get(page_client, "/audit", {"range": label}), reps),
                     "chart counted from events"),
                )  # fmt: skip
            for label, words in (("one name", f"name:{name}"), ("key pattern", "key:data/*")):
                figures.append(
                    (f"(t4) 30 d, {label}", _timed(
                        lambda words=words: _get(page_client, "/audit", {**month, "q": words}),
                        reps), words),
                )  # fmt: skip
            watched = _get(page_client, "/audit", {"range": "24h", "live": "1"}).decode()
            seq = watched.split('data-live-seq="', 1)[1].split('"', 1)[0]
            live = {"range": "24h", "since": seq}
            figures.append(
                ("(t5) live poll, nothing new", _timed(
                    lambda: _get(page_client, "/audit/live", live), reps), "24 h"),
            )  # fmt: skip
            figures.append(
                ("(t5) name suggestions", _timed(
                    lambda: _get(page_client, "/audit/names", {"q": name[:4]}), reps), name[:4]),
            )  # fmt: skip
        finally:
            page_client.close()
            api.close()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    os.environ.setdefault("DSTRAIL_FORENSICS_FOLLOW_SECONDS", "3600")  # see above
    plan = Plan(events=args.events, reps=args.reps, seed=args.seed, skip=frozenset())
    say(
        f"dstrail console benchmark: {plan.events:,} events over {SPAN_DAYS} days "
        f"(~{plan.events // SPAN_DAYS:,} a day), {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__}; "
        f"load average {load_average()}"
    )
    catalog = make_catalog(random.Random(args.seed))
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dstrail-console-") as tmp:
        backends: list[Backend] = []
        for kind in [args.only] if args.only else ["postgresql", "sqlite"]:
            if kind == "postgresql":
                why = pg_reachable()
                if why:
                    say(f"PostgreSQL: skipped, not reachable: {why}")
                    continue
                backends.append(PostgreSQLBackend("console"))
            else:
                backends.append(SQLiteBackend(Path(tmp), "console"))
        try:
            loaded, build = build_stores(backends, catalog, plan, Path(tmp))
            say(f"built {plan.events:,} events in {build.seconds:.0f}s")
            for item in loaded:
                say(f"\n{item.backend.name}  (median / p90; load average {load_average()})")
                figures = bench_console(item, catalog, plan.reps)
                for label, seconds, note in figures:
                    say(f"  {label:44} {_ms(seconds)}   {note}")
                summary.append(f"  {item.backend.name}: {figures[0][0]} {_ms(figures[0][1])}")
                item.conn.close()
                item.dstrail.store.dispose()
        finally:
            for backend in backends:
                backend.drop()
    say("summary:")
    for line in summary:
        say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
