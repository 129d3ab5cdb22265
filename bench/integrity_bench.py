"""The verifiable-trail benchmark, on SQLite and on PostgreSQL.

(a) events/s through the audited write path (``record_event`` in ``Store.write()``, one event
    per transaction) with Merkle leaves, subtree nodes, the frontier and signed checkpoints
    (every 1,000 events, the default), beside raw one-row-per-transaction inserts of the same
    rows with the driver into the same table and indexes, in the same run, as a ratio;
(b) ``verify_store`` over a store of 1,000,000 events (built by bulk generation: leaves,
    nodes, frontier and a checkpoint every 1,000 events computed here), events/s.

    .venv/bin/python bench/integrity_bench.py [--events N] [--appends N] [--only sqlite|postgresql] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from dstrail.audit.recorder import record_event
from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Run, RunType
from dstrail.domain.trail import EventKind, merkle
from dstrail.domain.users import Role, User
from dstrail.settings import Settings
from support import RAW_COLUMNS, access_event, bench_data_source, run_keys, stored_row

PG_ADMIN_URL = os.environ.get("DSTRAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROUNDS = 3
RAW_SQL_COLUMNS = ", ".join(RAW_COLUMNS)


def say(text: str = "") -> None:
    print(text, flush=True)


def hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


@contextlib.contextmanager
def database(kind: str, directory: Path, label: str) -> Iterator[str]:
    """A fresh database URL of this kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / label}.sqlite3"
        return
    name = f"dstrail_ibench_{label}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_at(url: str, data_dir: Path) -> Dstrail:
    return open_dstrail(Settings(data_dir=data_dir, database_url=url))


def driver(url: str) -> Any:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    return psycopg.connect(url)


# -- (a) appends -------------------------------------------------------------------------------


def make_plan(rng: random.Random, count: int, now: int) -> list[tuple[DataSource, Run, int]]:
    sources = [(hex_id(rng), f"source-{i}", "S3Config") for i in range(50)]
    plan = []
    for i in range(count):
        ds_id, name, ds_type = rng.choice(sources)
        source = bench_data_source(ds_id, name, ds_type, "a" * 24, now)
        run = Run(
            id=hex_id(rng),
            run_type=RunType.WORKSPACE,
            project_id=hex_id(rng),
            user_id="a" * 24,
            data_plane_id="0" * 24,
            started_at_ms=now,
            ended_at_ms=None,
        )
        plan.append((source, run, now + i))
    return plan


def audited_round(dstrail: Dstrail, actor: User, plan: list[tuple[DataSource, Run, int]]) -> float:
    start = time.perf_counter()
    for source, run, ts in plan:
        with dstrail.store.write() as tx:
            record_event(
                tx,
                kind=EventKind.ACCESS_DATA_SOURCE,
                data_source=source,
                actor=actor,
                now_ms=ts,
                metadata={
                    "clientSource": "Python",
                    "operation": "objectKey",
                    "objectKey": "a/b.csv",
                    "isReadWrite": "false",
                },
                run=run,
            )
    return len(plan) / (time.perf_counter() - start)


def raw_round(conn: Any, rows: list[tuple[Any, ...]]) -> float:
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO audit_events ({RAW_SQL_COLUMNS}) VALUES ({', '.join([mark] * 11)})"
    start = time.perf_counter()
    if sqlite:
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, row)
            conn.execute("COMMIT")
    else:
        with conn.cursor() as cursor:
            for row in rows:
                cursor.execute(sql, row)
                conn.commit()
    return len(rows) / (time.perf_counter() - start)


def bench_appends(kind: str, directory: Path, per_round: int) -> tuple[float, float, int]:
    rng = random.Random(5)
    now = int(time.time() * 1000)
    actor = User(id="a" * 24, username="bench", email="bench@example.com", role=Role.USER)
    with (
        database(kind, directory, "audited") as audited_url,
        database(kind, directory, "raw") as raw_url,
    ):
        dstrail = open_at(audited_url, directory / f"{kind}-keys")
        open_at(raw_url, directory / f"{kind}-keys").store.dispose()  # migrated, same schema
        conn = driver(raw_url)
        audited: list[float] = []
        raw: list[float] = []
        seq = 10**12
        try:
            audited_round(dstrail, actor, make_plan(rng, 200, now))  # warm up
            for _ in range(ROUNDS):
                plan = make_plan(rng, per_round, now)
                rows = []
                for source, run, ts in plan:
                    seq += 1
                    metadata = {
                        **run_keys(run),
                        "clientSource": "Python",
                        "operation": "objectKey",
                        "objectKey": "a/b.csv",
                        "isReadWrite": "false",
                    }
                    identity = (source.id, source.name, source.data_source_type)
                    event = access_event(identity, (actor.id, actor.username), ts, metadata, run)
                    rows.append(stored_row(seq, event, RAW_COLUMNS))
                raw.append(raw_round(conn, rows))
                audited.append(audited_round(dstrail, actor, plan))
            with dstrail.store.read() as tx:
                checkpoints = len(tx.integrity.checkpoints())
        finally:
            conn.close()
            dstrail.store.dispose()
    return statistics.median(audited), statistics.median(raw), checkpoints


# -- (b) verification of a large store ---------------------------------------------------------


def bulk_build(dstrail: Dstrail, url: str, count: int) -> float:
    """Fill a migrated store with ``count`` events, their leaves and subtree hashes, frontier and a signed
    checkpoint every 1,000 events, as appends would have left them. Returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(11)
    now = int(time.time() * 1000) - count * 50
    names = [f"source-{i}" for i in range(500)]
    ids = [hex_id(rng) for _ in names]
    users = [(hex_id(rng), f"user{i}") for i in range(200)]
    rows: list[tuple[Any, ...]] = []
    builder = merkle.FrontierBuilder()
    frontier: list[bytes] = []
    checkpoints: list[tuple[int, bytes, int, str, bytes]] = []
    signer = dstrail.signer
    for i in range(count):
        seq = i + 1
        which = rng.randrange(500)
        user_id, username = rng.choice(users)
        ts = now + i * 50
        metadata = {
            "clientSource": "Python",
            "operation": "objectKey",
            "objectKey": f"data/{rng.randrange(10**6)}.parquet",
            "isReadWrite": "false",
        }
        event = access_event(
            (ids[which], names[which], "S3Config"), (user_id, username), ts, metadata
        )
        row = stored_row(seq, event, (*RAW_COLUMNS, "leaf_hash"))
        leaf = row[-1]
        frontier, completed = merkle.append_leaf(frontier, i, leaf)
        subtrees = b"".join(value for _, _, value in completed) or None
        rows.append((*row, subtrees))
        builder.add(leaf)
        if seq % 1000 == 0 or seq == count:
            root = merkle.root_of_frontier(frontier)
            checkpoints.append(
                (
                    seq,
                    root,
                    ts,
                    signer.key_id,
                    signer.sign(tree_size=seq, root_hash=root, timestamp_ms=ts),
                )
            )
    conn = driver(url)
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    columns = RAW_SQL_COLUMNS + ", leaf_hash, subtree_hashes"
    try:
        if sqlite:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.cursor()
            cursor.executemany(
                f"INSERT INTO audit_events ({columns}) VALUES ({', '.join([mark] * 13)})", rows
            )
        else:
            cursor = conn.cursor()
            with cursor.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.executemany(
            f"INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, signature) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            checkpoints,
        )
        cursor.execute(
            f"UPDATE audit_head SET size = {mark}, frontier = {mark}, checkpoint_size = {mark}, "
            f"checkpoint_ms = {mark} WHERE id = 1",
            (count, merkle.pack_frontier(frontier), count, checkpoints[-1][2]),
        )
        conn.execute("COMMIT") if sqlite else conn.commit()
    finally:
        conn.close()
    return time.perf_counter() - started


def bench_verify(kind: str, directory: Path, count: int) -> tuple[float, float, int, bool]:
    with database(kind, directory, "verify") as url:
        dstrail = open_at(url, directory / f"{kind}-keys")
        try:
            build_seconds = bulk_build(dstrail, url, count)
            report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
        finally:
            dstrail.store.dispose()
    if not report.ok:
        say(report.text())
    return count / report.seconds, build_seconds, report.checkpoints, report.ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events of the verified store"
    )
    parser.add_argument("--appends", type=int, default=3_000, help="appends per round (3 rounds)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--quick", action="store_true", help="100k-event store, 1,000 appends a round"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.appends = 100_000, 1_000
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    say(f"integrity bench: {args.appends} appends x {ROUNDS} rounds; verify {args.events:,} events")
    with tempfile.TemporaryDirectory(prefix="dstrail-ibench-") as tmp:
        directory = Path(tmp)
        for kind in kinds:
            audited, raw, checkpoints = bench_appends(kind, directory, args.appends)
            say(
                f"{kind:10s} appends: audited {audited:8,.0f} ev/s | raw insert {raw:8,.0f} ev/s | "
                f"ratio {audited / raw:.2f} (target >= 0.40) | {checkpoints} checkpoints signed"
            )
            rate, build, checkpoints, ok = bench_verify(kind, directory, args.events)
            say(
                f"{kind:10s} verify {args.events:,} events ({checkpoints:,} checkpoints): "
                f"{rate:,.0f} ev/s, {args.events / rate:.1f} s ({'OK' if ok else 'FAILED'}); "
                f"bulk build {build:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
