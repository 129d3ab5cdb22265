"""How ``dstrail serve`` runs delivery (a child process by default, a thread, or not at all),
and ``dstrail stream run`` beside it, as real processes on both databases: each event
arrives once in order, never from two senders at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dstrail.context import Dstrail
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.streaming.servers import (
    BIN,
    create,
    delivery_pids,
    environment,
    serve,
    storage_flags,
    stream_run,
    wait_until,
)
from tests.support import Login, create_dataset


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(secret=new_webhook_secret(), stall_seconds=0.03).start()
    yield started
    started.stop()


def _add(dstrail: Dstrail, admin: Login, receiver: WebhookReceiver) -> int:
    """A webhook destination from the next event on; its cursor."""
    with dstrail.store.write() as tx:
        added = stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
            spec=DestinationSpec(
                name="siem", kind="webhook", config={"url": receiver.url},
                secret=receiver.secret,
            ),
        )  # fmt: skip
    dstrail.store.dispose()
    return added.destination.cursor


def _size(dstrail: Dstrail) -> int:
    with dstrail.store.read() as tx:
        return tx.audit.size()


def _arrived(receiver: WebhookReceiver, start: int, size: int) -> bool:
    return {r["seq"] for r in receiver.records()} == set(range(start + 1, size + 1))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(20)


def test_serve_delivers_in_a_child_process_and_starts_it_again_when_it_dies(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    start = _add(dstrail, admin, receiver)
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(dstrail, port, log)
    try:
        create(port, alice, "before")
        wait_until(lambda: _arrived(receiver, start, _size(dstrail)), "the first event")
        [child] = delivery_pids(log)
        assert child != server.pid
        os.kill(child, signal.SIGKILL)
        create(port, alice, "while-it-is-down")
        wait_until(lambda: len(delivery_pids(log)) == 2, "a new delivery process")
        create(port, alice, "after")
        wait_until(lambda: _arrived(receiver, start, _size(dstrail)), "every event")
    finally:
        _stop(server)
    text = log.read_text()
    assert f"stream delivery (pid {child}) exited with status -9" in text
    first_seen = list(dict.fromkeys(r["seq"] for r in receiver.records()))
    assert first_seen == list(range(start + 1, _size(dstrail) + 1))
    assert receiver.rejected == 0
    new_child = delivery_pids(log)[1]
    with pytest.raises(ProcessLookupError):  # stopped with the server
        os.kill(new_child, 0)


def test_serve_and_stream_run_side_by_side_never_send_at_once_and_take_over(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    start = _add(dstrail, admin, receiver)
    port, log = free_port(), tmp_path / "both.log"
    server = serve(dstrail, port, log)
    apart = stream_run(dstrail, log)
    try:
        for index in range(30):
            create(port, alice, f"both-{index}")
        wait_until(lambda: _arrived(receiver, start, _size(dstrail)), "events with both")
        _stop(server)  # `stream run` takes the destination over once the lease runs out
        create_dataset(dstrail, alice, "after-the-server-stopped")
        wait_until(lambda: _arrived(receiver, start, _size(dstrail)), "the event after")
    finally:
        _stop(server)
        _stop(apart)
    seqs = [r["seq"] for r in receiver.records()]
    assert list(dict.fromkeys(seqs)) == list(range(start + 1, _size(dstrail) + 1))
    for batch in receiver.batches:  # each batch consecutive, as one sender makes them
        batch_seqs = [r["seq"] for r in batch]
        assert batch_seqs == list(range(batch_seqs[0], batch_seqs[0] + len(batch_seqs)))
    assert receiver.max_in_flight == 1  # one sender at a time
    assert apart.returncode == 0


def test_serve_can_deliver_in_a_thread_of_its_own(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    start = _add(dstrail, admin, receiver)
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(dstrail, port, log, DSTRAIL_STREAM_WORKERS="thread")
    try:
        create(port, alice, "in-a-thread")
        wait_until(lambda: _arrived(receiver, start, _size(dstrail)), "the event")
    finally:
        _stop(server)
    assert delivery_pids(log) == []  # no child process
    assert "stream workers started" in log.read_text()


def test_serve_with_delivery_off_delivers_nothing(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    _add(dstrail, admin, receiver)
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(dstrail, port, log, DSTRAIL_STREAM_WORKERS="off")
    try:
        create(port, alice, "nobody-delivers-me")
        time.sleep(1.0)  # with delivery on, it would have arrived within 0.1 s
    finally:
        _stop(server)
    assert receiver.records() == []
    assert "stream workers started" not in log.read_text()


def test_an_unknown_delivery_mode_is_refused_saying_what_is_accepted(
    dstrail: Dstrail, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(BIN / "dstrail"), "serve", "--port", str(free_port()), *storage_flags(dstrail)],
        env=environment(DSTRAIL_STREAM_WORKERS="sometimes"), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "stream_workers" in result.stderr
    assert "accepted: process, thread, off" in result.stderr
