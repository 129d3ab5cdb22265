"""The workers end to end to the real peers, on both databases: OCSF records into NATS
JetStream (nats-server) and CEF lines into Debian's rsyslogd, every event once and in order."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec
from dstrail.streaming.worker import StreamWorkers
from tests.streaming.rsyslog import Rsyslog, rsyslogd
from tests.streaming.test_delivery import FAST, real_clock
from tests.streaming.test_nats import NatsServer, _add_stream, _server, _stored
from tests.support import Login, create_dataset


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    (tmp_path / "nats").mkdir()
    yield from _server(tmp_path / "nats")


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    (tmp_path / "rsyslog").mkdir()
    server = Rsyslog(rsyslogd(), tmp_path / "rsyslog", tls=None)
    server.start()
    yield server
    server.stop()


def _trail(dstrail: Dstrail, alice: Login) -> int:
    for index in range(12):
        create_dataset(dstrail, alice, f"files-{index}")
    with dstrail.store.read() as tx:
        return tx.audit.size()


def _add(dstrail: Dstrail, admin: Login, **spec: object) -> None:
    with dstrail.store.write() as tx:
        stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
            spec=DestinationSpec(from_seq=1, **spec),  # type: ignore[arg-type]
        )  # fmt: skip


def _deliver_until(dstrail: Dstrail, name: str, size: int) -> None:
    workers = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    workers.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            with dstrail.store.read() as tx:
                found = tx.streams.by_name(name)
            assert found is not None
            if found.cursor >= size:
                break
            assert time.monotonic() < deadline, found.state.last_error
            time.sleep(0.05)
    finally:
        workers.stop()


def test_ocsf_records_reach_jetstream_once_each_in_order(
    dstrail: Dstrail, admin: Login, alice: Login, nats: NatsServer
) -> None:
    stream, subject = asyncio.run(_add_stream(nats.url))
    size = _trail(dstrail, alice) + 1  # and the destination's own creation
    _add(dstrail, admin, name="bus", kind="nats", format="ocsf",
         config={"url": nats.url, "subject": subject})  # fmt: skip
    _deliver_until(dstrail, "bus", size)
    stored = asyncio.run(_stored(nats.url, stream, subject))
    assert [int(s.headers["Dstrail-Seq"]) for s in stored] == list(range(1, size + 1))
    events = [json.loads(s.body) for s in stored]
    assert [e["metadata"]["sequence"] for e in events] == list(range(1, size + 1))
    assert [s.headers["Nats-Msg-Id"] for s in stored] == [e["metadata"]["uid"] for e in events]
    creates = [e for e in events if e["metadata"]["event_code"] == "CreateDataSource"]
    assert len(creates) == 12 and {e["class_uid"] for e in creates} == {3004}


def test_cef_lines_reach_rsyslog_once_each_in_order(
    dstrail: Dstrail, admin: Login, alice: Login, rsyslog: Rsyslog
) -> None:
    size = _trail(dstrail, alice) + 1
    _add(dstrail, admin, name="relay", kind="syslog", format="cef",
         config={"host": "127.0.0.1", "port": str(rsyslog.port)})  # fmt: skip
    _deliver_until(dstrail, "relay", size)
    lines = rsyslog.lines(rsyslog.parsed, size)
    assert len(lines) == size
    seqs = [int(line.split("|")[6]) for line in lines]  # the structured data's seq
    assert seqs == list(range(1, size + 1))
    messages = [line.split("|", 8)[8] for line in lines]
    assert all(m.startswith("CEF:0|dstrail|dstrail|") for m in messages)
    assert sum("|CreateDataSource|" in m for m in messages) == 12
