"""Group commit: units share a commit, a failing unit leaves nothing, callers wait for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import pytest

from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import DataSource
from dstrail.domain.ids import new_object_id
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.domain.users import Role, User
from dstrail.errors import Conflict
from dstrail.store import Repositories
from dstrail.store.group_commit import GroupCommitWriter
from tests.support import Login, audit_count, create_dataset


def _add_user(username: str) -> Callable[[Repositories], str]:
    def work(tx: Repositories) -> str:
        user = User(id=new_object_id(), username=username, email="", role=Role.USER)
        tx.users.add(user, now_ms=0)
        return user.id

    return work


Work = Callable[[Repositories], str]


def _run_as_one_batch(
    writer: GroupCommitWriter, first: Work, others: dict[str, Work]
) -> dict[str, object]:
    """Run ``first``, which holds the writer until ``others`` are queued behind it (in order),
    so that all of them make one batch; each one's result or error, by name."""
    results: dict[str, object] = {}
    queued = threading.Event()

    def hold_the_writer(tx: Repositories) -> str:
        deadline = time.monotonic() + 10
        while writer._queue.qsize() < len(others) and time.monotonic() < deadline:
            time.sleep(0.005)
        queued.set()
        return first(tx)

    def submit(name: str, work: Work) -> None:
        try:
            results[name] = writer.run(work)
        except Exception as error:
            results[name] = error

    threads = [threading.Thread(target=submit, args=("first", hold_the_writer))]
    threads[0].start()
    time.sleep(0.05)
    for name, work in others.items():
        threads.append(threading.Thread(target=submit, args=(name, work)))
        threads[-1].start()
        time.sleep(0.02)  # queued in this order
    for thread in threads:
        thread.join(timeout=20)
    writer.close()
    assert queued.is_set(), "the other units were not queued behind the first one"
    return results


def test_a_failing_unit_leaves_nothing_and_the_rest_of_its_batch_commits(
    dstrail: Dstrail,
) -> None:
    others = {
        name: _add_user(username)
        for name, username in (("a", "ann"), ("dup1", "dana"), ("dup2", "dana"), ("b", "ben"))
    }
    results = _run_as_one_batch(GroupCommitWriter(dstrail.store.write), lambda tx: "held", others)

    assert results["first"] == "held"
    conflicts = [results["dup1"], results["dup2"]]
    assert sum(isinstance(r, Conflict) for r in conflicts) == 1
    assert sum(isinstance(r, str) for r in conflicts) == 1
    with dstrail.store.read() as tx:
        names = sorted(u.username for u in tx.users.all())
    assert names == ["ann", "ben", "dana"]


def test_results_are_durable_when_run_returns(dstrail: Dstrail) -> None:
    user_ids = [dstrail.store.write_grouped(_add_user(f"user{i}")) for i in range(3)]
    with dstrail.store.read() as tx:
        assert sorted(tx.users.by_ids(user_ids)) == sorted(user_ids)


def test_an_error_inside_work_is_raised_to_its_caller(dstrail: Dstrail) -> None:
    def boom(tx: Repositories) -> None:
        tx.users.add(User(id=new_object_id(), username="ghost", email="", role=Role.USER), now_ms=0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        dstrail.store.write_grouped(boom)
    with dstrail.store.read() as tx:
        assert tx.users.by_username("ghost") is None


def _access_event(ds: DataSource, actor: User, marker: str) -> NewAuditEvent:
    return NewAuditEvent(
        event_kind=EventKind.ACCESS_DATA_SOURCE,
        data_source_id=ds.id,
        data_source_name=ds.name,
        data_source_type=ds.data_source_type,
        performed_by=actor.id,
        performed_by_username=actor.username,
        timestamp_ms=1_700_000_000_000,
        metadata={"marker": marker},
    )


def test_a_batch_appends_its_events_at_its_end_and_keeps_none_of_a_failed_unit(
    dstrail: Dstrail, alice: Login
) -> None:
    """Units record events that are appended together before the batch commits; a unit that
    fails after recording one leaves no event, and the batch's others keep theirs, in order.
    The first failure rolls the batch back and runs the others again one savepoint each, where
    the second failure is undone alone."""
    ds = create_dataset(dstrail, alice, "grouped")
    before = audit_count(dstrail)

    def first(tx: Repositories) -> str:
        tx.audit.record(_access_event(ds, alice.user, "first"))
        assert tx.audit.size() == before, "appends wait for the end of the batch"
        return "first"

    def record(marker: str, fail: bool = False) -> Callable[[Repositories], str]:
        def work(tx: Repositories) -> str:
            tx.audit.record(_access_event(ds, alice.user, marker))
            if fail:
                raise RuntimeError("refused after recording")
            return marker

        return work

    others = {
        name: record(name, fail)
        for name, fail in (("second", False), ("failing", True), ("third", False), ("last", True))
    }
    # The store's own grouped transactions (events deferred to the end of the batch).
    results = _run_as_one_batch(GroupCommitWriter(dstrail.store._group_transaction), first, others)

    assert isinstance(results["failing"], RuntimeError)
    assert isinstance(results["last"], RuntimeError)
    assert [results[name] for name in ("first", "second", "third")] == [
        "first",
        "second",
        "third",
    ]
    with dstrail.store.read() as tx:
        rows = tx.audit.page(
            AuditFilter(start_ms=0, end_ms=2**62, event_kinds=(EventKind.ACCESS_DATA_SOURCE,))
        )
    markers = [orjson.loads(row[4]).get("marker") for row in sorted(rows, key=lambda r: r[7])]
    assert [m for m in markers if m] == ["first", "second", "third"]
    assert audit_count(dstrail) == before + 3
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
