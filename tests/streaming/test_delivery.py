"""The workers deliver each destination's events after its cursor, at least once and in order,
on both databases: a webhook receiver (``receivers.WebhookReceiver``) checks every signature
with the ``standardwebhooks`` package."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dstrail.context import Dstrail
from dstrail.domain.streams import Destination
from dstrail.domain.trail import EventKind
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec, new_webhook_secret
from dstrail.streaming.worker import StreamWorkers, WorkerSettings
from tests.streaming.receivers import WebhookReceiver
from tests.support import Login, create_dataset

FAST = WorkerSettings(
    poll_seconds=0.02,
    lease_seconds=2.0,
    refresh_seconds=0.05,
    backoff_first_seconds=0.05,
    backoff_max_seconds=0.2,
)


def real_clock() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(secret=new_webhook_secret()).start()
    yield started
    started.stop()


def add(
    dstrail: Dstrail, admin: Login, name: str, receiver: WebhookReceiver, **spec: Any
) -> Destination:
    with dstrail.store.write() as tx:
        return stream_service.add_destination(
            tx, dstrail.vault, actor=admin.user, now_ms=dstrail.clock(),
            spec=DestinationSpec(
                name=name, kind="webhook", config={"url": receiver.url}, secret=receiver.secret,
                **spec,
            ),
        ).destination  # fmt: skip


def destination(dstrail: Dstrail, name: str) -> Destination:
    with dstrail.store.read() as tx:
        found = tx.streams.by_name(name)
    assert found is not None
    return found


def trail_size(dstrail: Dstrail) -> int:
    with dstrail.store.read() as tx:
        return tx.audit.size()


@pytest.fixture
def workers(dstrail: Dstrail) -> Iterator[StreamWorkers]:
    running = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    running.start()
    yield running
    running.stop()


def wait_until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_event_arrives_once_in_order_signed_with_what_proves_it(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver
) -> None:
    for index in range(5):
        create_dataset(dstrail, alice, f"files-{index}")
    with dstrail.store.write() as tx:
        checkpoint = tx.integrity.checkpoint(now_ms=dstrail.clock())
    add(dstrail, admin, "siem", receiver, from_seq=1)
    create_dataset(dstrail, alice, "after-the-checkpoint")
    size = trail_size(dstrail)
    running = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    running.start()
    try:
        records = receiver.wait_for(size)
        wait_until(lambda: destination(dstrail, "siem").cursor == size)
    finally:
        running.stop()
    assert [r["seq"] for r in records] == list(range(1, size + 1))
    assert receiver.rejected == 0
    with dstrail.store.read() as tx:
        stored = tx.integrity.events_after(0, limit=size)
    for record, row in zip(records, stored, strict=True):
        assert record["leafHash"] == row[11].hex()
        assert (record["eventKind"], record["dataSourceName"]) == (row[3], row[1])
        covered = record["seq"] <= checkpoint.tree_size
        assert ("checkpoint" in record) is covered
        if covered:
            assert record["checkpoint"] == {
                "treeSize": checkpoint.tree_size, "rootHash": checkpoint.root_hash.hex(),
                "origin": dstrail.signer.origin,
            }  # fmt: skip
    assert records[-1]["dataSourceName"] == "after-the-checkpoint"
    state = destination(dstrail, "siem").state
    assert (state.delivered, state.last_error) == (size, "")
    assert state.lease_owner == ""  # given up on stop
    assert len(set(receiver.message_ids)) == len(receiver.message_ids)


def test_a_destination_starts_with_the_next_event_by_default(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver,
    workers: StreamWorkers,
) -> None:  # fmt: skip
    create_dataset(dstrail, alice, "before")
    add(dstrail, admin, "siem", receiver)
    create_dataset(dstrail, alice, "after")
    receiver.wait_for(2)
    time.sleep(0.2)
    records = receiver.records()
    # its own creation is the first event it gets
    assert [(r["eventKind"], r["dataSourceName"]) for r in records] == [
        ("StreamDestinationAdded", ""), ("CreateDataSource", "after"),
    ]  # fmt: skip
    assert [r["seq"] for r in records] == [trail_size(dstrail) - 1, trail_size(dstrail)]


def test_a_failing_receiver_is_retried_keeps_its_backlog_and_the_others_go_on(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver,
    workers: StreamWorkers,
) -> None:  # fmt: skip
    healthy = WebhookReceiver(secret=new_webhook_secret()).start()
    try:
        receiver.failing = True
        start = add(dstrail, admin, "down", receiver).cursor
        add(dstrail, admin, "up", healthy)
        for index in range(4):
            create_dataset(dstrail, alice, f"while-down-{index}")
        size = trail_size(dstrail)
        healthy.wait_for(5)  # its own creation and the four
        wait_until(lambda: destination(dstrail, "down").state.last_error != "")
        down = destination(dstrail, "down")
        assert down.cursor == start  # nothing delivered: the cursor stays
        assert "answered 500" in down.state.last_error
        receiver.failing = False
        records = receiver.wait_for(size - start)
    finally:
        healthy.stop()
    assert [r["seq"] for r in records] == list(range(start + 1, size + 1))
    wait_until(lambda: destination(dstrail, "down").state.last_error == "")


def test_filters_pause_resume_and_replay(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver,
    workers: StreamWorkers,
) -> None:  # fmt: skip
    add(
        dstrail, admin, "filtered", receiver,
        event_kinds=(EventKind.CREATE_DATA_SOURCE.value,), data_source_names=("wanted",),
    )  # fmt: skip
    create_dataset(dstrail, alice, "unwanted")
    create_dataset(dstrail, alice, "wanted")
    [wanted] = receiver.wait_for(1)
    assert wanted["dataSourceName"] == "wanted"
    wait_until(lambda: destination(dstrail, "filtered").cursor == trail_size(dstrail))

    with dstrail.store.write() as tx:
        stream_service.set_paused(tx, name="filtered", paused=True, actor=admin.user, now_ms=1)
    time.sleep(0.2)  # the paused destination's task has ended
    with dstrail.store.write() as tx:
        stream_service.replay(
            tx, name="filtered", from_seq=1, from_time_ms=None, actor=admin.user, now_ms=1
        )
    time.sleep(0.3)
    assert len(receiver.records()) == 1  # paused: nothing, even after a replay
    with dstrail.store.write() as tx:
        stream_service.set_paused(tx, name="filtered", paused=False, actor=admin.user, now_ms=1)
    records = receiver.wait_for(2)
    assert [r["dataSourceName"] for r in records] == ["wanted", "wanted"]  # the replay
    assert records[0]["seq"] == records[1]["seq"]


def test_two_worker_processes_never_deliver_one_destination_at_once(
    dstrail: Dstrail, admin: Login, alice: Login, receiver: WebhookReceiver
) -> None:
    start = add(dstrail, admin, "siem", receiver).cursor
    first = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    second = StreamWorkers(dstrail.store, dstrail.vault, clock=real_clock, settings=FAST)
    first.start()
    second.start()
    try:
        for index in range(30):
            create_dataset(dstrail, alice, f"ds-{index}")
            time.sleep(0.01)
        records = receiver.wait_for(31)
        holder = destination(dstrail, "siem").state.lease_owner
        assert holder in (first.owner, second.owner)
        first.stop()  # whichever held it, the other takes over once the lease runs out
        create_dataset(dstrail, alice, "after-the-first-stopped")
        records = receiver.wait_for(32)
    finally:
        first.stop()
        second.stop()
    assert [r["seq"] for r in records] == list(range(start + 1, start + 33))
