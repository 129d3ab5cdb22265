"""The verifiable-trail benchmark, on SQLite and on PostgreSQL.

(a) events/s through the audited write path (``record_event`` in ``Store.write()``, one event
    per transaction) with Merkle leaves, subtree nodes, the frontier and signed checkpoints
    (every 1,000 events, the default), beside raw one-row-per-transaction inserts of the same
    rows with the driver into the same table and indexes, in the same run, as a ratio;
(b) ``verify_store`` over a store of 1,000,000 events (built by bulk generation: leaves,
    nodes, frontier and a checkpoint every 1,000 events computed here), events/s, beside its
    floor: ``hashlib.sha256`` alone over the same leaves (0x00 || each event's canonical
    encoding, encoded beforehand as verify encodes them) and the n - 1 interior nodes
    (0x01 || left || right) of the tree, whose root must be verify's;
(c) tile serving: full level-0 hash tiles (8,192 bytes) fetched one after the other over
    keep-alive HTTP from ``dstrail serve`` (a subprocess on that store, an Auditor's API key),
    tiles/s and MB/s, beside the same leaf hashes read with the driver (one ``SELECT`` of 256
    ``leaf_hash`` a tile, joined), and the ratio; medians of 3 alternating rounds;
(d) checkpoint-to-cosignature latency with a local witness (``dstrail witness serve``, a
    subprocess with its own SQLite store, witnessing the bench's log): each round appends 5
    events through the audited path, signs a checkpoint (``checkpoint_now``) and times
    ``submit_to_witnesses`` until the cosignature is verified and stored; p50/p99/max ms.
    Baseline: the round trip of the same ``add-checkpoint`` body posted again right after,
    which the witness refuses with 409 (its old size is stale): HTTP, parsing, the log's
    signature checked and a transaction on the witness, without the consistency proof,
    cosigning and storing on either side.

Percentiles interpolate between the samples (``statistics.quantiles``, inclusive). Figures
are printed beside their baselines; nothing is asserted but the correctness of what is
served (each tile 8,192 bytes and equal to the driver's, each cosignature stored).

    .venv/bin/python bench/integrity_bench.py [--events N] [--appends N] [--tiles N]
        [--witness-rounds N] [--only sqlite|postgresql] [--parts abcd] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from dstrail.audit import submission
from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.recorder import record_event
from dstrail.audit.report import VerifyReport
from dstrail.audit.tiles import TILE_WIDTH, TileId
from dstrail.audit.verify import CHUNK_ROWS, verify_store
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Run, RunType
from dstrail.domain.trail import (
    EVENT_COLUMNS,
    METADATA,
    SEQ,
    CheckpointRecord,
    EventKind,
    canonical_event,
    merkle,
)
from dstrail.domain.trail import note as notes
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import witnesses as witness_service
from dstrail.services.users import create_user
from dstrail.settings import Settings
from dstrail.store import Store
from support import (
    RAW_COLUMNS,
    access_event,
    bench_data_source,
    partitions_since,
    run_keys,
    server_process,
    stored_row,
)

PG_ADMIN_URL = os.environ.get("DSTRAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROUNDS = 3
RAW_SQL_COLUMNS = ", ".join(RAW_COLUMNS)
PARTS = "abcd"
BIN = Path(sys.executable).parent
TILE_BYTES = TILE_WIDTH * merkle.HASH_SIZE
EVENTS_A_WITNESS_ROUND = 5


def say(text: str = "") -> None:
    print(text, flush=True)


def hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews the figures."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 (interpolated between the samples) and the maximum."""
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return statistics.median(samples), p99, max(samples)


def bench_actor() -> User:
    return User(id="a" * 24, username="bench", email="bench@example.com", role=Role.USER)


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
    actor = bench_actor()
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
    checkpoints: list[tuple[int, bytes, int, str, bytes, str]] = []
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
                    signer.origin,
                )
            )
    partitions_since(dstrail.store, now)  # PostgreSQL: COPY routes to them
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
            "INSERT INTO audit_checkpoints "
            "(tree_size, root_hash, timestamp_ms, key_id, signature, origin) "
            f"VALUES ({', '.join([mark] * 6)})",
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


@contextlib.contextmanager
def bulk_store(kind: str, directory: Path, count: int) -> Iterator[tuple[Dstrail, str, float]]:
    """A store of ``count`` bulk-built events: (its context, its URL, seconds the build took)."""
    with database(kind, directory, "verify") as url:
        dstrail = open_at(url, directory / f"{kind}-keys")
        try:
            yield dstrail, url, bulk_build(dstrail, url, count)
        finally:
            dstrail.store.dispose()


def encoded_leaves(rows: list[Any]) -> list[bytes]:
    """What each row's leaf hashes, ``0x00 || canonical encoding``, encoded as verify does."""
    width = len(EVENT_COLUMNS)
    return [
        b"\x00" + canonical_event(row[:width], metadata=orjson.loads(row[METADATA])) for row in rows
    ]


def tree_root(leaves: list[bytes]) -> bytes:
    """The RFC 6962 root, level by level: pairs hashed, an odd last node carried up (so
    ``len(leaves) - 1`` node hashes in all)."""
    level = leaves
    while len(level) > 1:
        parents = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0] if level else merkle.EMPTY_ROOT


def hashing_floor(store: Store) -> tuple[float, bytes]:
    """Seconds ``hashlib.sha256`` alone takes over every leaf and interior node of the tree
    (the reading and encoding, done first chunk by chunk, are not counted), and the root."""
    leaves: list[bytes] = []
    seconds = 0.0
    after = 0
    with store.read() as tx:
        while True:
            rows = tx.integrity.events_after(after, limit=CHUNK_ROWS)
            inputs = encoded_leaves(rows)
            started = time.perf_counter()
            leaves.extend([sha256(data).digest() for data in inputs])
            seconds += time.perf_counter() - started
            if len(rows) < CHUNK_ROWS:
                break
            after = rows[-1][SEQ]
    started = time.perf_counter()
    root = tree_root(leaves)
    return seconds + time.perf_counter() - started, root


def bench_verify(dstrail: Dstrail) -> tuple[VerifyReport, float]:
    """``verify_store``'s report, and the seconds of its hashing floor (same tree and root)."""
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    if not report.ok:
        say(report.text())
    floor_seconds, root = hashing_floor(dstrail.store)
    if root.hex() != report.root_hash:
        raise SystemExit(f"the floor's root {root.hex()} is not verify's {report.root_hash}")
    return report, floor_seconds


# -- servers as subprocesses -------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    """This environment without any DSTRAIL_ setting (the flags say everything), but the
    forensics follower held off: the store was bulk-loaded, and replaying it in the
    background would run beside what is timed."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    return {**kept, "DSTRAIL_FORENSICS_FOLLOW_SECONDS": "3600"}


def dstrail_cli(*args: str, url: str, data_dir: Path) -> list[str]:
    return [str(BIN / "dstrail"), *args, "--database-url", url, "--data-dir", str(data_dir)]


# -- (c) tile serving --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileFigures:
    """Medians of the rounds: full level-0 tiles a second over HTTP and with the driver."""

    tiles: int
    http: float
    driver: float


def auditor_key(dstrail: Dstrail) -> str:
    """The API key of a new Auditor (made as the CLI makes users, by ``operator``)."""
    with dstrail.store.write() as tx:
        _, key = create_user(
            tx, actor=OPERATOR, username="bench-auditor", email=None, role=Role.AUDITOR,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    return key.secret


def fetch_tiles(client: httpx.Client, indexes: range) -> tuple[float, list[bytes]]:
    """Seconds to GET each full level-0 tile, one after the other, and their bytes."""
    prefix = "/api/dstrail/v1/tlog/"
    tiles = []
    started = time.perf_counter()
    for index in indexes:
        response = client.get(prefix + TileId(level=0, index=index).path())
        if response.status_code != 200 or len(response.content) != TILE_BYTES:
            raise SystemExit(f"tile {index}: HTTP {response.status_code}, {response.text[:200]}")
        tiles.append(response.content)
    return time.perf_counter() - started, tiles


def read_tiles(conn: Any, indexes: range) -> tuple[float, list[bytes]]:
    """Seconds to read each tile's 256 leaf hashes with the driver, joined, and the tiles."""
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    sql = f"SELECT leaf_hash FROM audit_events WHERE seq BETWEEN {mark} AND {mark} ORDER BY seq"
    tiles = []
    started = time.perf_counter()
    for index in indexes:
        first = index * TILE_WIDTH + 1
        rows = conn.execute(sql, (first, first + TILE_WIDTH - 1)).fetchall()
        tiles.append(b"".join(row[0] for row in rows))
    return time.perf_counter() - started, tiles


def bench_tiles(dstrail: Dstrail, url: str, directory: Path, wanted: int) -> TileFigures:
    """``wanted`` consecutive full tiles (or every full tile of a smaller store) from
    ``dstrail serve`` and from the driver, in alternating rounds."""
    with dstrail.store.read() as tx:
        size, _ = tx.integrity.head()
    indexes = range(min(wanted, size // TILE_WIDTH))
    key = auditor_key(dstrail)
    port = free_port()
    command = dstrail_cli(
        "serve", "--port", str(port), "--flight-port", str(free_port()),
        url=url, data_dir=dstrail.settings.data_dir,
    )  # fmt: skip
    conn = driver(url)
    if not isinstance(conn, sqlite3.Connection):
        conn.autocommit = True  # a snapshot a statement, as each request has its own
    http_rates: list[float] = []
    driver_rates: list[float] = []
    try:
        with (
            server_process(
                command, f"http://127.0.0.1:{port}", directory / "serve.log", env=environment()
            ) as base,
            httpx.Client(base_url=base, headers={"X-Domino-Api-Key": key}, timeout=30) as client,
        ):
            fetch_tiles(client, indexes[:20])  # warm up: the connection, the routes
            for _ in range(ROUNDS):
                driver_seconds, expected = read_tiles(conn, indexes)
                http_seconds, served = fetch_tiles(client, indexes)
                if served != expected:
                    raise SystemExit("the tiles served are not the leaf hashes stored")
                driver_rates.append(len(indexes) / driver_seconds)
                http_rates.append(len(indexes) / http_seconds)
    finally:
        conn.close()
    return TileFigures(len(indexes), statistics.median(http_rates), statistics.median(driver_rates))


# -- (d) checkpoint to cosignature -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Witness:
    """A running ``dstrail witness serve``: its submission prefix and cosignature vkey."""

    url: str
    vkey: str

    @property
    def name(self) -> str:
        return notes.parse_vkey(self.vkey).name


@contextlib.contextmanager
def local_witness(directory: Path, *, origin: str, log_vkey: str) -> Iterator[Witness]:
    """``dstrail witness serve`` with a SQLite store of its own, witnessing the log
    ``origin`` (from size 0), configured with the CLI."""
    data_dir = directory / "witness"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data_dir / 'witness.sqlite3'}"
    cli: dict[str, Any] = {"url": url, "data_dir": data_dir}
    vkey = subprocess.run(
        dstrail_cli("witness", "public-key", "--format", "vkey", **cli),
        env=environment(), check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(
        dstrail_cli("witness", "logs", "add", origin, "--vkey", log_vkey, **cli),
        env=environment(), check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    command = dstrail_cli("witness", "serve", "--port", str(port), **cli)
    with server_process(
        command, f"http://127.0.0.1:{port}", data_dir / "witness.log", env=environment()
    ) as base:
        yield Witness(base, vkey)


def add_checkpoint_body(dstrail: Dstrail, old: int, record: CheckpointRecord) -> bytes:
    """The ``add-checkpoint`` body the submission sends for ``record`` from size ``old``."""
    with dstrail.store.read() as tx:
        proof = tx.integrity.consistency_proof(old, record.tree_size)
    lines = "".join(b64encode(hash_).decode() + "\n" for hash_ in proof)
    return f"old {old}\n{lines}\n{record.note().encode()}".encode()


def cosigned_size(dstrail: Dstrail, witness: Witness) -> int:
    """The size the log knows the witness to have cosigned."""
    with dstrail.store.read() as tx:
        rows = witness_service.witnesses(tx, actor=OPERATOR)
    return next(row.cosigned_size for row in rows if row.name == witness.name)


def witness_round(
    dstrail: Dstrail,
    client: httpx.Client,
    witness: Witness,
    plan: list[tuple[DataSource, Run, int]],
) -> tuple[float, float]:
    """Append ``plan``, sign a checkpoint; seconds until its cosignature is stored, and
    seconds of the same request posted again (refused with 409)."""
    audited_round(dstrail, bench_actor(), plan)
    old = cosigned_size(dstrail, witness)
    record = checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    started = time.perf_counter()
    results = submission.submit_to_witnesses(dstrail.store, client, clock=dstrail.clock)
    latency = time.perf_counter() - started
    if [result.outcome for result in results] != ["cosigned"]:
        raise SystemExit(f"not cosigned: {[result.document() for result in results]}")
    with dstrail.store.read() as tx:
        stored = {s.name for s in tx.transparency.cosignatures_of(record.tree_size)}
    if witness.name not in stored:
        raise SystemExit(f"no cosignature of {witness.name} stored at size {record.tree_size}")
    body = add_checkpoint_body(dstrail, old, record)
    started = time.perf_counter()
    response = client.post(f"{witness.url}/add-checkpoint", content=body)
    refused = time.perf_counter() - started
    if response.status_code != 409 or response.text.strip() != str(record.tree_size):
        raise SystemExit(f"the stale request: HTTP {response.status_code} {response.text[:200]}")
    return latency, refused


def bench_witness(
    dstrail: Dstrail, directory: Path, rounds: int
) -> tuple[list[float], list[float]]:
    """Checkpoint-to-cosignature seconds of each round, and those of the 409 baseline."""
    signer = dstrail.signer
    vkey = signer.public_key_document()["vkey"]
    rng = random.Random(17)
    now = int(time.time() * 1000)
    latencies: list[float] = []
    refusals: list[float] = []
    with (
        local_witness(directory, origin=signer.origin, log_vkey=vkey) as witness,
        submission.new_client() as client,
    ):
        with dstrail.store.write() as tx:
            witness_service.add_witness(
                tx, name=witness.name, vkey=witness.vkey, url=witness.url, actor=OPERATOR,
                now_ms=dstrail.clock(),
            )  # fmt: skip
        for round_ in range(rounds + 1):  # the first (from size 0, no proof) warms up
            plan = make_plan(rng, EVENTS_A_WITNESS_ROUND, now)
            latency, refused = witness_round(dstrail, client, witness, plan)
            if round_:
                latencies.append(latency)
                refusals.append(refused)
    return latencies, refusals


# -- the run -----------------------------------------------------------------------------------


def report_appends(kind: str, directory: Path, per_round: int) -> None:
    audited, raw, checkpoints = bench_appends(kind, directory, per_round)
    say(
        f"{kind:10s} appends: audited {audited:8,.0f} ev/s | raw insert {raw:8,.0f} ev/s | "
        f"ratio {audited / raw:.2f} (target >= 0.5) | {checkpoints} checkpoints signed"
    )


def report_verify(kind: str, dstrail: Dstrail, build: float) -> None:
    report, floor_seconds = bench_verify(dstrail)
    rate, floor = report.events / report.seconds, report.events / floor_seconds
    say(
        f"{kind:10s} verify {report.events:,} events ({report.checkpoints:,} checkpoints): "
        f"{rate:,.0f} ev/s, {report.seconds:.1f} s ({'OK' if report.ok else 'FAILED'}); "
        f"bulk build {build:.1f} s"
    )
    say(
        f"{kind:10s} verify floor, sha256 of {report.events:,} leaves + {report.events - 1:,} "
        f"nodes: {floor:,.0f} ev/s, {floor_seconds:.2f} s | verify / floor {rate / floor:.3f}"
    )


def report_tiles(kind: str, dstrail: Dstrail, url: str, directory: Path, wanted: int) -> None:
    figures = bench_tiles(dstrail, url, directory, wanted)
    megabytes = TILE_BYTES / 1e6
    say(
        f"{kind:10s} tiles ({figures.tiles:,} full level-0, {TILE_BYTES:,} B each): "
        f"HTTP {figures.http:7,.0f} tiles/s {figures.http * megabytes:6.1f} MB/s | "
        f"driver {figures.driver:7,.0f} tiles/s {figures.driver * megabytes:6.1f} MB/s | "
        f"ratio {figures.http / figures.driver:.3f}"
    )


def report_witness(kind: str, dstrail: Dstrail, directory: Path, rounds: int) -> None:
    latencies, refusals = bench_witness(dstrail, directory, rounds)
    lat50, lat99, lat_max = (1000 * x for x in percentiles(latencies))
    ref50, ref99, ref_max = (1000 * x for x in percentiles(refusals))
    say(
        f"{kind:10s} checkpoint to cosignature ({rounds} rounds of {EVENTS_A_WITNESS_ROUND} "
        f"events): p50 {lat50:.1f} p99 {lat99:.1f} max {lat_max:.1f} ms | same request "
        f"refused (409): p50 {ref50:.1f} p99 {ref99:.1f} max {ref_max:.1f} ms | "
        f"p50 ratio {lat50 / ref50:.1f}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events of the verified store"
    )
    parser.add_argument("--appends", type=int, default=3_000, help="appends per round (3 rounds)")
    parser.add_argument("--tiles", type=int, default=1_000, help="full tiles fetched a round")
    parser.add_argument("--witness-rounds", type=int, default=50, help="checkpoints cosigned")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--parts", default=PARTS, help="which of (a) to (d) to run: abcd")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100k-event store, 1,000 appends a round, 10 witness rounds",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.appends, args.witness_rounds = 100_000, 1_000, 10
    if not args.parts or set(args.parts) - set(PARTS):
        parser.error(f"--parts: {args.parts!r}; accepted: letters of {PARTS}")
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    say(
        f"integrity bench: parts {args.parts}; {args.appends} appends x {ROUNDS} rounds; store "
        f"of {args.events:,} events; {args.tiles:,} tiles x {ROUNDS} rounds; "
        f"{args.witness_rounds} witness rounds; load average {load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="dstrail-ibench-") as tmp:
        directory = Path(tmp)
        for kind in kinds:
            if "a" in args.parts:
                report_appends(kind, directory, args.appends)
            if not set("bcd") & set(args.parts):
                continue
            with bulk_store(kind, directory, args.events) as (dstrail, url, build):
                if "b" in args.parts:
                    report_verify(kind, dstrail, build)
                if "c" in args.parts:
                    report_tiles(kind, dstrail, url, directory, args.tiles)
                if "d" in args.parts:
                    report_witness(kind, dstrail, directory / kind, args.witness_rounds)
            say(f"{kind:10s} load average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
