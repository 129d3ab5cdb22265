"""``dstrail serve`` delivers its stream destinations; killed with SIGKILL while it delivers
and started again, every event still arrives at least once and in order, on both databases."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.streaming.servers import create, serve, wait_until
from tests.support import Login


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
    server = serve(dstrail, port, log)
    try:
        for index in range(40):
            create(port, alice, f"before-kill-{index}")
        receiver.wait_for(5)  # delivering
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        # its delivery process sees the server gone, finishes its batch and gives the lease up
        wait_until(lambda: _lease_holder(dstrail) == "", "the orphaned delivery stopped")
        server = serve(dstrail, port, log)
        for index in range(10):
            create(port, alice, f"after-kill-{index}")
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


def _lease_holder(dstrail: Dstrail) -> str:
    with dstrail.store.read() as tx:
        found = tx.streams.by_name("siem")
    assert found is not None
    return found.state.lease_owner
