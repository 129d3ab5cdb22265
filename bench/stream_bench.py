"""The streaming benchmark, on SQLite and on PostgreSQL.

(1) Draining a backlog: a trail of 1,000,000 events, bulk-loaded with their leaves, subtree
    hashes, frontier and a signed checkpoint every 1,000 events, delivered from its first
    event to one destination at a time in the native format (webhook, syslog, NATS
    JetStream): events/s from the moment the workers start until the destination's cursor
    reaches the trail's size, beside a minimal raw client of the same transport sending the
    same records in the same batches from memory (no database) to the same receiver;
(2) lag at a steady 1,000 appended events/s (``record_event`` in ``Store.write()``, paced):
    p50 and p99 of (the time the webhook receiver has the record - the event's ``ts_ms``);
(3) the audited write path (``record_event`` in ``Store.write()``, one event per transaction,
    as ``audit_bench.py`` (a)) while three destinations (webhook, syslog, NATS) are delivered
    by running workers, against the same with none: workers as ``dstrail serve`` runs them
    (a child process, ``dstrail stream run``) and in a thread of the appending process
    (``DSTRAIL_STREAM_WORKERS=thread``).

Drains (1) and the lag (2) run the workers as ``dstrail serve`` does; a drain's rate counts
from its first delivered batch (the child's start is left out).

The receivers run in processes of their own: the webhook receiver is a bare ASGI app under
uvicorn (httptools, uvloop) that counts the records of each batch and answers 204 without
checking signatures; rsyslogd (imtcp, octet counting) writes one short line a message;
nats-server -js keeps a memory-storage stream with a 2-minute duplicate window. Figures are
printed with their targets; nothing is asserted.

    .venv/bin/python bench/stream_bench.py [--events N] [--only sqlite|postgresql] [--quick]
        [--lag-seconds S] [--rounds N] [--per-round N] [--profile S] [--parts 123]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import psycopg
from nats.js.api import StorageType, StreamConfig

from audit_bench import (
    PG_ADMIN_URL,
    Backend,
    PostgreSQLBackend,
    SQLiteBackend,
    free_port,
    load_average,
    make_catalog,
    make_events,
    pg_reachable,
    say,
)
from dstrail.audit.recorder import record_event
from dstrail.cli.delivery import DeliveryProcess
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Run, RunType
from dstrail.domain.streams import StreamFormat, StreamRecord
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import (
    SEALED_COLUMNS,
    CheckpointRecord,
    EventKind,
    SealedRow,
    event_leaf,
    merkle,
)
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from dstrail.settings import Settings
from dstrail.streaming.formats import encode
from dstrail.streaming.transports.syslog import frame, message
from dstrail.streaming.worker import StreamWorkers, WorkerSettings
from support import (
    RAW_COLUMNS,
    audit_indexes_dropped,
    bench_data_source,
    partitions_since,
    prepare_bulk_load,
)

BATCH = WorkerSettings().batch_size
"""Records a batch: the workers' default, and the raw clients'."""
CHECKPOINT_EVERY = 1_000
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
LAG_RATE = 1_000
TRANSPORTS = ("webhook", "syslog", "nats")


WORKER_SETTINGS = WorkerSettings()
"""The workers' settings: their defaults, but ``--poll-seconds``."""


def new_workers(dstrail: Dstrail) -> StreamWorkers:
    """Workers for every destination of ``dstrail``'s store, with ``WORKER_SETTINGS``."""
    return StreamWorkers(
        dstrail.store, dstrail.vault, clock=dstrail.clock, settings=WORKER_SETTINGS
    )


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the events' ``ts_ms`` and the receivers')."""
    return time.time_ns() // 1_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- the trail ------------------------------------------------------------------------------------


@dataclass
class Trail:
    """Events as appends would have stored them: rows, subtree hashes, frontier, checkpoints."""

    rows: list[SealedRow]
    subtrees: list[bytes | None]
    frontier: list[bytes]
    checkpoints: list[tuple[int, bytes, int, str, bytes, str]]
    seconds: float


def build_trail(count: int, seed: int, dstrail: Dstrail) -> Trail:
    """``count`` events of the audit bench's mix (``make_events``), each with its leaf hash and
    the subtrees it completes, and a checkpoint every ``CHECKPOINT_EVERY`` events signed with
    ``dstrail``'s key (the keys every database of the run shares)."""
    start = time.perf_counter()
    catalog = make_catalog(random.Random(seed))
    raw = make_events(catalog, count, now_ms=now_ms() - DAY_MS, seed=seed)
    rows: list[SealedRow] = []
    subtrees: list[bytes | None] = []
    frontier: list[bytes] = []
    checkpoints: list[tuple[int, bytes, int, str, bytes, str]] = []
    signer = dstrail.signer
    for index, row in enumerate(raw):
        leaf = event_leaf(row[:8])
        frontier, completed = merkle.append_leaf(frontier, index, leaf)
        subtrees.append(b"".join(value for _, _, value in completed) or None)
        rows.append((*row, leaf))  # type: ignore[arg-type]
        seq = index + 1
        if seq % CHECKPOINT_EVERY == 0 or seq == count:
            root = merkle.root_of_frontier(frontier)
            ts = row[6]
            signature = signer.sign(tree_size=seq, root_hash=root, timestamp_ms=ts)
            checkpoints.append((seq, root, ts, signer.key_id, signature, signer.origin))
    assert (*RAW_COLUMNS, "leaf_hash") == SEALED_COLUMNS, "a raw row and its leaf: a SealedRow"
    return Trail(rows, subtrees, frontier, checkpoints, time.perf_counter() - start)


def load_trail(backend: Backend, trail: Trail) -> float:
    """Bulk-load ``trail`` into the empty, migrated database (indexes dropped and made again
    around the load; head, rollup and checkpoints as appends leave them); seconds taken."""
    start = time.perf_counter()
    conn = backend.raw()
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    columns = ", ".join((*RAW_COLUMNS, "leaf_hash", "subtree_hashes"))
    values = ((*row, subtree) for row, subtree in zip(trail.rows, trail.subtrees, strict=True))
    counts: dict[tuple[int, str], int] = {}
    for row in trail.rows:
        key = (row[6] // DAY_MS, row[3])
        counts[key] = counts.get(key, 0) + 1
    last = trail.checkpoints[-1]
    try:
        prepare_bulk_load(conn)
        if sqlite:
            size = conn.execute("SELECT size FROM audit_head WHERE id = 1").fetchone()[0]
            assert size == 0, "the trail must be empty before the load"
            conn.execute("BEGIN IMMEDIATE")
            with audit_indexes_dropped(conn):
                conn.executemany(
                    f"INSERT INTO audit_events ({columns}) VALUES ({', '.join([mark] * 13)})",
                    values,
                )
            cursor: Any = conn.cursor()
        else:
            cursor = conn.cursor()
            copying = cursor.copy(f"COPY audit_events ({columns}) FROM STDIN")
            with audit_indexes_dropped(conn), copying as copy:
                for row in values:
                    copy.write_row(row)
        cursor.executemany(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, "
            f"signature, origin) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark})",
            trail.checkpoints,
        )
        cursor.executemany(
            f"INSERT INTO audit_daily_counts (day, event_kind, count) VALUES ({mark}, {mark}, "
            f"{mark})",
            [(day, kind, n) for (day, kind), n in sorted(counts.items())],
        )
        cursor.execute(
            f"UPDATE audit_head SET size = {mark}, frontier = {mark}, checkpoint_size = {mark}, "
            f"checkpoint_ms = {mark} WHERE id = 1",
            (len(trail.rows), merkle.pack_frontier(trail.frontier), last[0], last[2]),
        )
        if sqlite:
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE audit_events")
    finally:
        conn.close()
    return time.perf_counter() - start


# -- receivers ------------------------------------------------------------------------------------


def webhook_app() -> Callable[..., Any]:
    """The webhook receiver: a bare ASGI app. ``POST /hook`` counts a batch's records (a JSON
    array) and answers 204; with lags on it also keeps, for each record, the receive time
    minus its ``timestamp``. ``GET /stats`` and ``GET /lags`` report; ``POST /reset?lags=1``
    starts again."""
    state: dict[str, Any] = {"records": 0, "batches": 0, "max_seq": 0, "lags": [], "on": False}

    async def answer(send: Any, status: int, body: bytes = b"") -> None:
        headers = [(b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "POST":
            chunks = []
            more = True
            while more:
                part = await receive()
                chunks.append(part.get("body", b""))
                more = part.get("more_body", False)
            if path == "/reset":
                state.update(records=0, batches=0, max_seq=0, lags=[])
                state["on"] = b"lags=1" in scope.get("query_string", b"")
                await answer(send, 204)
                return
            arrived = time.time_ns() // 1_000_000
            records = orjson.loads(b"".join(chunks))
            state["records"] += len(records)
            state["batches"] += 1
            state["max_seq"] = max(state["max_seq"], records[-1]["seq"])
            if state["on"]:
                lags = state["lags"]
                for record in records:
                    stamp = datetime.fromisoformat(record["timestamp"])
                    lags.append(arrived - round(stamp.timestamp() * 1000))
            await answer(send, 204)
        elif path == "/lags":
            await answer(send, 200, orjson.dumps(state["lags"]))
        else:
            keys = ("records", "batches", "max_seq")
            await answer(send, 200, orjson.dumps({k: state[k] for k in keys}))

    return app


def serve_webhook(port: int) -> None:
    """Run the webhook receiver (in a process of its own) until terminated."""
    import uvicorn

    uvicorn.run(
        webhook_app(), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip


class WebhookReceiver:
    """``serve_webhook`` in a child process."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.log = directory / f"webhook-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        command = [sys.executable, str(Path(__file__)), "--webhook-receiver", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the webhook receiver exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                self.stats()
                return self
            if time.monotonic() > deadline:
                raise SystemExit("the webhook receiver did not start")
            time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.client.get("/stats").json()
        return stats

    def lags(self) -> list[int]:
        lags: list[int] = self.client.get("/lags").json()
        return lags

    def reset(self, *, lags: bool = False) -> None:
        self.client.post("/reset", params={"lags": "1" if lags else "0"})

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class Rsyslog:
    """rsyslogd (imtcp, RFC 6587 octet counting) on a free loopback port, writing one short
    line a message (its MSGID) to a file, so its lines count the messages it took in."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.out = directory / "messages.log"
        self.config = directory / "rsyslog.conf"
        self.config.write_text(
            f'global(workDirectory="{directory}" maxMessageSize="64k")\n'
            'module(load="imtcp")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="in")\n'
            'template(name="short" type="string" string="%msgid%\\n")\n'
            'ruleset(name="in") {\n'
            f'  action(type="omfile" file="{self.out}" template="short" '
            'asyncWriting="on" ioBufferSize="256k" flushOnTXEnd="off")\n'
            "}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Rsyslog:
        command = [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.directory / "pid")]
        with (self.directory / "rsyslogd.out").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_listening(self.port, self.process, "rsyslogd")
        return self

    def lines(self) -> int:
        """The lines (messages) written so far."""
        if not self.out.exists():
            return 0
        with self.out.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(20)


class NatsServer:
    """nats-server -js on a free loopback port with a temporary store directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        command = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        command += ["-sd", str(self.directory)]
        with (self.directory / "nats-server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_listening(self.port, self.process, "nats-server")
        return self

    def add_stream(self) -> tuple[str, str]:
        """A new memory-storage stream with a 2-minute duplicate window: (name, subject)."""
        name = "bench" + uuid.uuid4().hex[:10]

        async def add() -> None:
            client = await nats.connect(self.url)
            config = StreamConfig(
                name=name, subjects=[f"audit.{name}"], duplicate_window=120.0,
                storage=StorageType.MEMORY,
            )  # fmt: skip
            await client.jetstream().add_stream(config)
            await client.close()

        asyncio.run(add())
        return name, f"audit.{name}"

    def stream_messages(self, name: str) -> int:
        """How many messages the stream holds."""

        async def count() -> int:
            client = await nats.connect(self.url)
            info = await client.jetstream().stream_info(name)
            await client.close()
            return int(info.state.messages)

        return asyncio.run(count())

    def delete_stream(self, name: str) -> None:
        async def delete() -> None:
            client = await nats.connect(self.url)
            await client.jetstream().delete_stream(name)
            await client.close()

        asyncio.run(delete())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Until ``process`` accepts connections on ``port`` (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited ({process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen within 20 s")


# -- raw clients ----------------------------------------------------------------------------------


def batches_of(records: Sequence[StreamRecord]) -> Iterator[Sequence[StreamRecord]]:
    """``records`` in batches of ``BATCH``, as the workers send them."""
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]


async def raw_webhook(url: str, records: Sequence[StreamRecord]) -> float:
    """POST the records' JSON arrays (built beforehand), a batch at a time; seconds."""
    bodies = [orjson.dumps([orjson.Fragment(r.body) for r in b]) for b in batches_of(records)]
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        for body in bodies:
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()
    return time.perf_counter() - start


async def raw_syslog(port: int, records: Sequence[StreamRecord]) -> float:
    """Write the records' octet-counted RFC 5424 frames (built beforehand with the transport's
    ``message`` and ``frame``), a batch per write and drain; seconds."""
    host, procid = socket.gethostname(), str(os.getpid())
    payloads = [
        b"".join(frame(message(r, hostname=host, app_name="dstrail", procid=procid)) for r in b)
        for b in batches_of(records)
    ]
    start = time.perf_counter()
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for payload in payloads:
        writer.write(payload)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    return time.perf_counter() - start


async def raw_nats(url: str, subject: str, records: Sequence[StreamRecord]) -> float:
    """Publish each record with the transport's headers and a reply subject (core nats-py
    ``publish``, pipelined on one connection), then wait for every JetStream acknowledgement
    of a batch before the next; seconds."""
    start = time.perf_counter()
    client = await nats.connect(url)
    inbox = client.new_inbox()
    acked = errors = expected = 0
    done = asyncio.Event()

    async def on_ack(msg: Any) -> None:
        nonlocal acked, errors
        acked += 1
        if b'"error"' in msg.data or b'"duplicate"' in msg.data:
            errors += 1
        if acked >= expected:
            done.set()

    await client.subscribe(inbox, cb=on_ack)
    for batch in batches_of(records):
        expected += len(batch)
        done.clear()
        for r in batch:
            headers = {"Nats-Msg-Id": r.event_id, "Dstrail-Seq": str(r.seq)}
            await client.publish(subject, r.body, reply=inbox, headers=headers)
        await asyncio.wait_for(done.wait(), 30)
    await client.close()
    assert errors == 0, f"{errors} publishes refused or duplicates"
    return time.perf_counter() - start


# -- (1) drains -----------------------------------------------------------------------------------


@dataclass
class Drain:
    """One transport's drain and its raw client."""

    transport: str
    events: int
    seconds: float
    raw_events: int
    raw_seconds: float
    errors: int
    received: int
    settle_seconds: float = 0.0  # syslog: after the cursor, until rsyslog wrote every line
    cpu: float = 0.0  # CPU seconds of the workers' thread
    raw_cpu: float = 0.0  # CPU seconds of the raw client (this process)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def raw_rate(self) -> float:
        return self.raw_events / self.raw_seconds


def trail_size(dstrail: Dstrail) -> int:
    """The events the trail holds."""
    with dstrail.store.read() as tx:
        return tx.audit.size()


def cursors(dstrail: Dstrail, names: Sequence[str]) -> list[int]:
    """The cursor of each named destination (-1: none of that name)."""
    with dstrail.store.read() as tx:
        found = [tx.streams.by_name(name) for name in names]
    return [d.cursor if d else -1 for d in found]


def add_destination(
    dstrail: Dstrail, name: str, kind: str, config: dict[str, str], *, from_seq: int | None,
    secret: str | None = None,
) -> None:  # fmt: skip
    """Add a native-format destination through the service (it records its own event)."""
    with dstrail.store.write() as tx:
        stream_service.add_destination(
            tx, dstrail.vault, actor=OPERATOR, now_ms=dstrail.clock(),
            spec=DestinationSpec(
                name=name, kind=kind, config=config, secret=secret, from_seq=from_seq,
                format=StreamFormat.NATIVE.value,
            ),
        )  # fmt: skip


def remove_destination(dstrail: Dstrail, name: str) -> int:
    """Remove it; the delivery errors it had."""
    with dstrail.store.write() as tx:
        found = tx.streams.by_name(name)
        errors = found.state.errors if found else 0
        stream_service.remove(tx, name=name, actor=OPERATOR, now_ms=dstrail.clock())
    return errors


def wait_for_cursors(
    dstrail: Dstrail, names: Sequence[str], size: int, timeout: float = 1800
) -> None:
    """Until every named destination's cursor reaches ``size`` (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while min(cursors(dstrail, names)) < size:
        if time.monotonic() > deadline:
            raise SystemExit(f"{names}: cursors {cursors(dstrail, names)} < {size} (timed out)")
        time.sleep(0.05)


def drain_with_workers(dstrail: Dstrail, name: str) -> tuple[int, float, float]:
    """Deliver ``name`` as ``dstrail serve`` does until its cursor reaches the trail's size:
    (events, seconds, CPU seconds of the workers), counted from the first batch delivered
    (the child's start, the same for any backlog, is left out)."""
    size = trail_size(dstrail)
    with delivery_running(dstrail, "serve") as cpu:
        deadline = time.monotonic() + 120
        while (first := cursors(dstrail, [name])[0]) == 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: nothing delivered in 120 s")
            time.sleep(0.002)
        start, cpu_start = time.perf_counter(), cpu()
        wait_for_cursors(dstrail, [name], size)
        seconds, used = time.perf_counter() - start, cpu() - cpu_start
    return size - first, seconds, used


def raw_records(dstrail: Dstrail, trail: Trail) -> list[StreamRecord]:
    """The native records of the loaded events, with the newest checkpoint, as a worker
    formats them (made before any timing)."""
    with dstrail.store.read() as tx:
        checkpoint: CheckpointRecord | None = tx.integrity.latest_checkpoint()
    records: list[StreamRecord] = []
    for start in range(0, len(trail.rows), BATCH):
        records += encode(StreamFormat.NATIVE, trail.rows[start : start + BATCH], checkpoint)
    return records


@dataclass
class Target:
    """A receiver to drain to: the destination's config, and what it has taken in."""

    transport: str
    config: dict[str, str]
    secret: str | None
    received: Callable[[], int]
    close: Callable[[], None]


def open_target(transport: str, workdir: Path, nats_server: NatsServer) -> Target:
    """A fresh receiver of ``transport``: a webhook receiver, an rsyslogd, a JetStream stream."""
    if transport == "webhook":
        receiver = WebhookReceiver(workdir).start()
        return Target(
            transport, {"url": receiver.url}, new_webhook_secret(),
            lambda: receiver.stats()["records"], receiver.stop,
        )  # fmt: skip
    if transport == "syslog":
        rsyslog = Rsyslog(workdir / f"rsyslog-{uuid.uuid4().hex[:8]}").start()
        config = {"host": "127.0.0.1", "port": str(rsyslog.port)}
        return Target(transport, config, None, rsyslog.lines, rsyslog.stop)
    stream, subject = nats_server.add_stream()
    return Target(
        transport, {"url": nats_server.url, "subject": subject}, None,
        lambda: nats_server.stream_messages(stream), lambda: nats_server.delete_stream(stream),
    )  # fmt: skip


def run_raw(target: Target, records: list[StreamRecord]) -> float:
    """The raw client of the target's transport over ``records``: seconds."""
    if target.transport == "webhook":
        return asyncio.run(raw_webhook(target.config["url"], records))
    if target.transport == "syslog":
        return asyncio.run(raw_syslog(int(target.config["port"]), records))
    return asyncio.run(raw_nats(target.config["url"], target.config["subject"], records))


def settle(target: Target, count: int, timeout: float = 120) -> float:
    """Seconds until the receiver holds ``count`` records (rsyslog writes behind the socket)."""
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    while target.received() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.perf_counter() - start


def drain(
    dstrail: Dstrail, transport: str, workdir: Path, nats_server: NatsServer,
    records: list[StreamRecord],
) -> Drain:  # fmt: skip
    """The raw client, then the workers, each to a receiver of its own."""
    raw_target = open_target(transport, workdir, nats_server)
    try:
        cpu_before = time.process_time()
        raw_seconds = run_raw(raw_target, records)
        raw_cpu = time.process_time() - cpu_before
        settle(raw_target, len(records))
        if raw_target.received() != len(records):
            say(f"      note: the receiver took {raw_target.received():,} of {len(records):,} "
                "records from the raw client")  # fmt: skip
    finally:
        raw_target.close()
    target = open_target(transport, workdir, nats_server)
    name = f"drain-{transport}"
    try:
        add_destination(dstrail, name, transport, target.config, from_seq=1, secret=target.secret)
        events, seconds, cpu = drain_with_workers(dstrail, name)
        behind = settle(target, events)
        received = target.received()
        errors = remove_destination(dstrail, name)
    finally:
        target.close()
    result = Drain(transport, events, seconds, len(records), raw_seconds, errors, received)
    result.settle_seconds, result.cpu, result.raw_cpu = behind, cpu, raw_cpu
    return result


def profile_drain(
    dstrail: Dstrail, transport: str, workdir: Path, nats_server: NatsServer, seconds: float
) -> str:
    """cProfile of the workers' loop (run in this thread) draining the trail to ``transport``
    for ``seconds``: own time by part, and the top functions."""
    target = open_target(transport, workdir, nats_server)
    try:
        add_destination(
            dstrail, "profiled", transport, target.config, from_seq=1, secret=target.secret
        )
        workers = new_workers(dstrail)
        timer = threading.Timer(seconds, workers.stop, kwargs={"timeout": 0})
        profile = cProfile.Profile()
        timer.start()
        try:
            profile.runcall(workers.run)
        finally:
            timer.cancel()
        delivered = cursors(dstrail, ["profiled"])[0]
        remove_destination(dstrail, "profiled")
    finally:
        target.close()
    stats = pstats.Stats(profile)
    parts = profile_parts(stats)
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(16)
    lines = [f"    cProfile, {transport}, {seconds:.0f} s: {delivered:,} events delivered"]
    total = sum(parts.values())
    for part, spent in sorted(parts.items(), key=lambda item: -item[1]):
        lines.append(f"      {part:50} {spent:6.2f} s  {spent / total:5.1%}")
    body = out.getvalue()
    lines += ["      top functions by own time:"]
    lines += ["      " + line for line in body[body.find("ncalls") :].splitlines() if line.strip()]
    return "\n".join(lines)


PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("formatting (formats/, event_documents, orjson)", ("streaming/formats", "trail/document",
                                                        "timestamps", "orjson")),
    ("the transport (transports/, httpx, nats-py)", ("streaming/transports", "httpx",
                                                               "httpcore", "h11", "anyio",
                                                               "site-packages/nats/")),
    ("reading rows (store/, SQLAlchemy, driver)", ("dstrail/store", "sqlalchemy", "sqlite3",
                                                   "psycopg")),
    ("the event loop and waiting (asyncio, select)", ("asyncio", "selectors", "select")),
)  # fmt: skip


def profile_parts(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) of the profiled functions, summed by which part they belong to."""
    parts: dict[str, float] = {name: 0.0 for name, _ in PARTS}
    parts["other (the worker, logging, builtins)"] = 0.0
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        where = f"{filename}:{function}"
        for name, needles in PARTS:
            if any(n in where for n in needles):
                parts[name] += tottime
                break
        else:
            parts["other (the worker, logging, builtins)"] += tottime
    return parts


# -- (2) lag --------------------------------------------------------------------------------------


@dataclass
class Lag:
    lags: list[int]
    appended: int
    transactions: int
    seconds: float


def bench_subjects() -> tuple[User, list[tuple[DataSource, Run]]]:
    """Who appends, and on which data sources from which runs."""
    rng = random.Random(7)
    actor = User(id="a" * 24, username="bench.user", email="bench@example.com", role=Role.USER)
    now = now_ms()
    plan = []
    for index in range(50):
        source = bench_data_source(f"{rng.getrandbits(96):024x}", f"stream-bench-{index:02d}",
                                   "S3Config", actor.id, now)  # fmt: skip
        run = Run(
            id=f"{rng.getrandbits(96):024x}", run_type=RunType.WORKSPACE,
            project_id=f"{rng.getrandbits(96):024x}", user_id=actor.id,
            data_plane_id="0" * 24, started_at_ms=now, ended_at_ms=None,
        )  # fmt: skip
        plan.append((source, run))
    return actor, plan


def append_one(dstrail: Dstrail, actor: User, subject: tuple[DataSource, Run], count: int) -> None:
    """``count`` access events in one transaction through the audited write path."""
    source, run = subject
    with dstrail.store.write() as tx:
        for _ in range(count):
            record_event(
                tx, kind=EventKind.ACCESS_DATA_SOURCE, data_source=source, actor=actor,
                now_ms=dstrail.clock(), run=run,
                metadata={"clientSource": "Python", "operation": "objectKey",
                          "objectKey": "a/b.csv", "isReadWrite": "false"},
            )  # fmt: skip


def bench_lag(dstrail: Dstrail, workdir: Path, seconds: float) -> Lag:
    """Append at a steady ``LAG_RATE`` a second for ``seconds`` while the workers deliver to
    the webhook. One event per transaction while the appender keeps up; events that fell due
    during a slow commit go in the next transaction together (as group commit would)."""
    actor, plan = bench_subjects()
    receiver = WebhookReceiver(workdir).start()
    add_destination(
        dstrail, "lag", "webhook", {"url": receiver.url}, from_seq=None,
        secret=new_webhook_secret(),
    )  # fmt: skip
    appended = transactions = 0
    total = int(seconds * LAG_RATE)
    try:
        with delivery_running(dstrail, "serve"):
            wait_for_cursors(dstrail, ["lag"], trail_size(dstrail), timeout=60)  # it is up
            receiver.reset(lags=True)
            start = time.perf_counter()
            while appended < total:
                due = min(total, int((time.perf_counter() - start) * LAG_RATE) + 1) - appended
                if due <= 0:
                    time.sleep(max(0.0, (appended / LAG_RATE) - (time.perf_counter() - start)))
                    continue
                append_one(dstrail, actor, plan[appended % len(plan)], min(due, 100))
                appended += min(due, 100)
                transactions += 1
            elapsed = time.perf_counter() - start
            wait_for_cursors(dstrail, ["lag"], trail_size(dstrail), timeout=60)
            lags = receiver.lags()
    finally:
        receiver.stop()
    remove_destination(dstrail, "lag")
    return Lag(lags=lags, appended=appended, transactions=transactions, seconds=elapsed)


# -- (3) the write path with destinations ---------------------------------------------------------


@dataclass
class WritePath:
    none: list[float] = field(default_factory=list)  # events/s of each round
    with_workers: list[float] = field(default_factory=list)
    delivered_during: list[float] = field(default_factory=list)  # share delivered by round end
    worker_cpu_us: list[float] = field(default_factory=list)  # workers' CPU per appended event

    @property
    def ratio(self) -> float:
        return statistics.median(self.with_workers) / statistics.median(self.none)


def timed_appends(
    dstrail: Dstrail, actor: User, plan: list[tuple[DataSource, Run]], n: int
) -> float:
    start = time.perf_counter()
    for index in range(n):
        append_one(dstrail, actor, plan[index % len(plan)], 1)
    return n / (time.perf_counter() - start)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MODES = {
    "serve": "in a child process, as `dstrail serve` runs them (the default)",
    "thread": "in a thread of the appending process (DSTRAIL_STREAM_WORKERS=thread)",
}


@contextlib.contextmanager
def delivery_running(dstrail: Dstrail, mode: str) -> Iterator[Callable[[], float]]:
    """Workers delivering every destination until the block ends: as ``dstrail serve`` runs
    them (``DeliveryProcess``: ``dstrail stream run`` in a child process) or in a thread of
    this process (``StreamWorkers.start``). Yields a reading of the CPU seconds the workers
    have used."""
    if mode == "thread":
        workers = new_workers(dstrail)
        workers.start()
        try:
            assert workers._thread is not None and workers._thread.ident is not None
            clock = time.pthread_getcpuclockid(workers._thread.ident)
            yield lambda: time.clock_gettime(clock)
        finally:
            workers.stop(timeout=60)
        return
    poll = str(WORKER_SETTINGS.poll_seconds)
    log = (dstrail.settings.data_dir / "delivery.log").open("ab")  # the child's log
    with environment_variable("DSTRAIL_STREAM_POLL_SECONDS", poll):  # read by the child
        delivery = DeliveryProcess(dstrail.settings, log_format="text", log=log)
        delivery.start()
    try:
        pid = delivery.pid
        assert pid is not None
        yield lambda: process_cpu(pid)
    finally:
        delivery.stop()
        log.close()


@contextlib.contextmanager
def environment_variable(key: str, value: str) -> Iterator[None]:
    """``key`` set to ``value`` in this process's environment for the block."""
    before = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before


def bench_write_path(
    dstrail: Dstrail, workdir: Path, keys_dir: Path, *, rounds: int, per_round: int,
    where: str, nats_server: NatsServer, rsyslog: Rsyslog, receiver: WebhookReceiver,
) -> WritePath:  # fmt: skip
    """Alternating rounds of ``per_round`` appends with no worker running and with workers
    delivering three destinations (webhook, syslog, NATS) as the events are appended."""
    actor, plan = bench_subjects()
    stream, subject = nats_server.add_stream()
    names = [f"{where}-webhook", f"{where}-syslog", f"{where}-nats"]
    add_destination(dstrail, names[0], "webhook", {"url": receiver.url}, from_seq=None,
                    secret=new_webhook_secret())  # fmt: skip
    add_destination(dstrail, names[1], "syslog",
                    {"host": "127.0.0.1", "port": str(rsyslog.port)}, from_seq=None)  # fmt: skip
    add_destination(dstrail, names[2], "nats", {"url": nats_server.url, "subject": subject},
                    from_seq=None)  # fmt: skip
    result = WritePath()
    timed_appends(dstrail, actor, plan, 200)  # warm up
    for number in range(rounds):
        order = ("none", "with") if number % 2 == 0 else ("with", "none")
        for path in order:
            if path == "none":
                result.none.append(timed_appends(dstrail, actor, plan, per_round))
                continue
            with delivery_running(dstrail, where) as cpu:
                timed_appends(dstrail, actor, plan, 50)  # each transport connected
                wait_for_cursors(dstrail, names, trail_size(dstrail), timeout=120)
                before, cpu_before = min(cursors(dstrail, names)), cpu()
                result.with_workers.append(timed_appends(dstrail, actor, plan, per_round))
                after, cpu_after = min(cursors(dstrail, names)), cpu()
                result.delivered_during.append((after - before) / per_round)
                result.worker_cpu_us.append((cpu_after - cpu_before) / per_round * 1e6)
    for name in names:
        remove_destination(dstrail, name)
    nats_server.delete_stream(stream)
    return result


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Suite:
    name: str
    load_seconds: float
    drains: list[Drain]
    lag: Lag | None
    write_paths: dict[str, WritePath]


def run_database(
    backend: Backend, trail: Trail, workdir: Path, keys_dir: Path, args: argparse.Namespace,
    nats_server: NatsServer,
) -> Suite:  # fmt: skip
    backend.create()
    dstrail = open_dstrail(Settings(data_dir=keys_dir, database_url=backend.url))
    try:
        partitions_since(dstrail.store, trail.rows[0][6])  # PostgreSQL: COPY routes to them
        load_seconds = load_trail(backend, trail)
        say(f"  loaded {len(trail.rows):,} events in {load_seconds:.1f}s (load average "
            f"{load_average()})")  # fmt: skip
        drains: list[Drain] = []
        if "1" in args.parts:
            records = raw_records(dstrail, trail)
            for transport in TRANSPORTS:
                drains.append(drain(dstrail, transport, workdir, nats_server, records))
                report_drain(drains[-1])
            del records
        for transport in TRANSPORTS if args.profile else ():
            say(profile_drain(dstrail, transport, workdir, nats_server, args.profile))
        lag = bench_lag(dstrail, workdir, args.lag_seconds) if "2" in args.parts else None
        if lag is not None:
            report_lag(lag)
        write_paths: dict[str, WritePath] = {}
        receiver = WebhookReceiver(workdir).start()
        rsyslog = Rsyslog(workdir / f"rsyslog-write-{uuid.uuid4().hex[:6]}").start()
        try:
            for where in MODES if "3" in args.parts else ():
                write_paths[where] = bench_write_path(
                    dstrail, workdir, keys_dir, rounds=args.rounds, per_round=args.per_round,
                    where=where, nats_server=nats_server, rsyslog=rsyslog, receiver=receiver,
                )  # fmt: skip
                report_write_path(where, write_paths[where], args.per_round)
        finally:
            receiver.stop()
            rsyslog.stop()
        return Suite(backend.name, load_seconds, drains, lag, write_paths)
    finally:
        dstrail.store.dispose()
        backend.drop()


def report_drain(drain: Drain) -> None:
    ratio = drain.rate / drain.raw_rate
    target = 20_000 if drain.transport in ("webhook", "nats") else None
    meets = (target is None or drain.rate >= target) and ratio >= 0.5
    floor = f">= {target:,} ev/s and " if target else ""
    say(
        f"  (1) {drain.transport:8} workers {drain.rate:9,.0f} ev/s ({drain.events:,} in "
        f"{drain.seconds:.1f}s) | raw client {drain.raw_rate:9,.0f} ev/s "
        f"({drain.raw_seconds:.1f}s) | ratio {ratio:.2f} "
        f"({'meets' if meets else 'MISSES'} target {floor}>= 0.5 of raw)"
    )
    extra = f"; rsyslog wrote the last line {drain.settle_seconds:.1f}s after" if (
        drain.transport == "syslog") else ""  # fmt: skip
    say(
        f"      CPU a record: workers {drain.cpu / drain.events * 1e6:.1f} µs, raw client "
        f"{drain.raw_cpu / drain.raw_events * 1e6:.1f} µs; received {drain.received:,}, "
        f"delivery errors {drain.errors}{extra}"
    )


def report_lag(lag: Lag) -> None:
    p50, p99 = percentile(lag.lags, 0.50), percentile(lag.lags, 0.99)
    say(
        f"  (2) lag at {lag.appended / lag.seconds:,.0f} appended ev/s for {lag.seconds:.1f}s "
        f"({lag.appended:,} events in {lag.transactions:,} transactions): p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms, max {max(lag.lags):.0f} ms over {len(lag.lags):,} records "
        f"({'meets' if p99 < 1000 else 'MISSES'} target p99 < 1 s)"
    )


def report_write_path(where: str, result: WritePath, per_round: int) -> None:
    label = {"serve": "as serve runs them", "thread": "in a thread"}[where]
    none, with_ = statistics.median(result.none), statistics.median(result.with_workers)
    during = statistics.median(result.delivered_during)
    say(
        f"  (3) appends, workers {label:18}: none {none:7,.0f} ev/s | 3 destinations "
        f"{with_:7,.0f} ev/s | ratio {result.ratio:.2f} "
        f"({'meets' if result.ratio >= 0.9 else 'MISSES'} target >= 0.9); "
        f"{len(result.none)}+{len(result.with_workers)} rounds of {per_round:,}; delivered "
        f"by each round's end: {during:.0%}; workers' CPU "
        f"{statistics.median(result.worker_cpu_us):.0f} µs per appended event"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=None, help="the backlog (1,000,000)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--quick", action="store_true", help="100,000 events, shorter phases")
    parser.add_argument("--lag-seconds", type=float, default=None, help="(2), seconds (20)")
    parser.add_argument("--rounds", type=int, default=None, help="(3) rounds a path (4)")
    parser.add_argument("--per-round", type=int, default=None, help="(3) appends a round")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        help="also cProfile the workers draining to each transport, seconds each",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=None,
        help=f"the workers' poll interval (default {WorkerSettings().poll_seconds})",
    )  # fmt: skip
    parser.add_argument("--parts", default="123", help="which of (1), (2), (3) to run: 123")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--webhook-receiver", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.webhook_receiver:
        serve_webhook(args.webhook_receiver)
        return 0
    global WORKER_SETTINGS
    if args.poll_seconds:
        WORKER_SETTINGS = WorkerSettings(poll_seconds=args.poll_seconds)
    count = args.events or (100_000 if args.quick else 1_000_000)
    args.lag_seconds = args.lag_seconds or (5.0 if args.quick else 20.0)
    args.rounds = args.rounds or (2 if args.quick else 4)
    args.per_round = args.per_round or (500 if args.quick else 1_500)
    for binary in (NATS_SERVER, RSYSLOGD):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is missing (apt-get install nats-server rsyslog)")
    began = time.perf_counter()
    say(
        f"dstrail stream benchmark: {count:,} events, batches of {BATCH:,}, {os.cpu_count()} "
        f"CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, psycopg "
        f"{psycopg.__version__}; worker poll {WORKER_SETTINGS.poll_seconds} s; load average "
        f"{load_average()}"
    )
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dstrail-stream-bench-") as tmp:
        workdir = Path(tmp)
        keys_dir = workdir / "keys"
        keys = open_dstrail(Settings(data_dir=keys_dir, database_url=f"sqlite:///{tmp}/k.db"))
        keys.store.dispose()
        trail = build_trail(count, args.seed, keys)
        gc.freeze()  # the generated trail stays; the collector need not walk it again
        say(f"generated {count:,} events with leaves, subtrees and checkpoints in "
            f"{trail.seconds:.1f}s")  # fmt: skip
        nats_server = NatsServer(workdir / "nats").start()
        try:
            for kind in [args.only] if args.only else ["sqlite", "postgresql"]:
                if kind == "postgresql":
                    why = pg_reachable()
                    if why:
                        say(f"\nPostgreSQL: skipped, not reachable at {PG_ADMIN_URL}: {why}")
                        continue
                    backend: Backend = PostgreSQLBackend("stream")
                else:
                    backend = SQLiteBackend(workdir, "stream")
                say(f"\n{backend.name}  (load average {load_average()})")
                suite = run_database(backend, trail, workdir, keys_dir, args, nats_server)
                summary.append(summary_line(suite))
        finally:
            nats_server.stop()
    say(f"\nload average at the end: {load_average()}; the run took "
        f"{(time.perf_counter() - began) / 60:.1f} min")  # fmt: skip
    say("summary (ev/s, ratio to raw; lag p99; write path with/without workers):")
    for line in summary:
        say(line)
    return 0


def summary_line(suite: Suite) -> str:
    drains = "  ".join(
        f"{d.transport} {d.rate:,.0f} ({d.rate / d.raw_rate:.2f})" for d in suite.drains
    )
    lag = f"lag p99 {percentile(suite.lag.lags, 0.99):.0f} ms" if suite.lag else ""
    paths = "  ".join(f"{where} {w.ratio:.2f}" for where, w in suite.write_paths.items())
    return f"  {suite.name:11} {drains}  |  {lag}  |  write path {paths}"


if __name__ == "__main__":
    sys.exit(main())
