"""``dstrail serve`` delivers its stream destinations; killed with SIGKILL while it delivers
and started again, every event still arrives at least once and in order, on both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.support import Login

BIN = Path(sys.executable).parent


def _serve(dstrail: Dstrail, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSTRAIL_")}
    env.update(DSTRAIL_STREAM_LEASE_SECONDS="1", DSTRAIL_STREAM_POLL_SECONDS="0.02")
    process = subprocess.Popen(
        [
            str(BIN / "dstrail"), "serve", "--port", str(port), "--flight-port", str(free_port()),
            "--database-url", dstrail.settings.resolved_database_url(),
            "--data-dir", str(dstrail.settings.data_dir),
        ],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text()[-2000:])


def _create(port: int, login: Login, name: str) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/datasource/v1/datasources",
        json={"name": name, "dataSourceType": "DatasetConfig", "authType": "NoAuth"},
        headers=login.headers, timeout=10,
    )  # fmt: skip
    assert response.status_code == 201, response.text


def test_a_killed_server_loses_nothing_of_the_stream(
    dstrail: Dstrail, admin: Login, alice: Login, tmp_path: Path
) -> None:
    receiver = WebhookReceiver(secret=new_webhook_secret(), stall_seconds=0.05).start()
    with dstrail.store.write() as tx:
        start = stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
            spec=DestinationSpec(
                name="siem", kind="webhook", config={"url": receiver.url},
                secret=receiver.secret, from_seq=1,
            ),
        ).destination.cursor  # fmt: skip
    dstrail.store.dispose()
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(dstrail, port, log)
    try:
        for index in range(40):
            _create(port, alice, f"before-kill-{index}")
        receiver.wait_for(5)  # delivering
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        server = _serve(dstrail, port, log)
        for index in range(10):
            _create(port, alice, f"after-kill-{index}")
        with dstrail.store.read() as tx:
            size = tx.audit.size()
        deadline = time.monotonic() + 30
        while {r["seq"] for r in receiver.records()} != set(range(start + 1, size + 1)):
            assert time.monotonic() < deadline, "not every event arrived"
            time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(15)
        receiver.stop()
    seqs = [r["seq"] for r in receiver.records()]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == list(range(start + 1, size + 1))  # complete, and in order
    for batch in receiver.batches:  # each batch: consecutive events, in order
        batch_seqs = [r["seq"] for r in batch]
        assert batch_seqs == list(range(batch_seqs[0], batch_seqs[0] + len(batch_seqs)))
    assert receiver.rejected == 0
    assert receiver.secret not in log.read_text()
