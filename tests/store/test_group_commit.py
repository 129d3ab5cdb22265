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
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.events import EventKind, NewAuditEvent
from dstrail.domain.ids import new_object_id
from dstrail.domain.users import Role, User
from dstrail.errors import Conflict
from dstrail.services import datasources as ds_service
from dstrail.services.credentials import CredentialVault
from dstrail.store import Repositories
from dstrail.store.group_commit import GroupCommitWriter
from tests.support import Login, audit_count


def _add_user(username: str) -> Callable[[Repositories], str]:
    def work(tx: Repositories) -> str:
        user = User(id=new_object_id(), username=username, email="", role=Role.USER)
        tx.users.add(user, now_ms=0)
        return user.id

    return work


def test_a_failing_unit_leaves_nothing_and_the_rest_of_its_batch_commits(
    dstrail: Dstrail,
) -> None:
    writer = GroupCommitWriter(dstrail.store.write)
    waiting = 4
    release = threading.Event()

    def hold_the_writer(tx: Repositories) -> str:
        deadline = time.monotonic() + 10
        while writer._queue.qsize() < waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        release.set()
        return "held"

    results: dict[str, object] = {}

    def submit(name: str, work: Callable[[Repositories], str]) -> None:
        try:
            results[name] = writer.run(work)
        except Exception as error:
            results[name] = error

    first = threading.Thread(target=submit, args=("hold", hold_the_writer))
    first.start()
    time.sleep(0.05)
    threads = [
        threading.Thread(target=submit, args=(name, _add_user(username)))
        for name, username in (("a", "ann"), ("dup1", "dana"), ("dup2", "dana"), ("b", "ben"))
    ]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(timeout=20)
    writer.close()

    assert release.is_set(), "the four units were not queued behind the first one"
    assert results["hold"] == "held"
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
    ds = _dataset(dstrail, alice)
    before = audit_count(dstrail)
    # The store's own grouped transactions (events deferred to the end of the batch).
    writer = GroupCommitWriter(dstrail.store._group_transaction)
    queued = threading.Event()

    def hold_the_writer(tx: Repositories) -> str:
        deadline = time.monotonic() + 10
        while writer._queue.qsize() < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        queued.set()
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

    results: dict[str, object] = {}

    def submit(name: str, work: Callable[[Repositories], str]) -> None:
        try:
            results[name] = writer.run(work)
        except Exception as error:
            results[name] = error

    first = threading.Thread(target=submit, args=("first", hold_the_writer))
    first.start()
    time.sleep(0.05)
    threads = []
    for name, fail in (("second", False), ("failing", True), ("third", False), ("last", True)):
        threads.append(threading.Thread(target=submit, args=(name, record(name, fail))))
        threads[-1].start()
        time.sleep(0.02)  # queued in this order
    for thread in [first, *threads]:
        thread.join(timeout=20)
    writer.close()

    assert queued.is_set(), "the four units were not queued behind the first one"
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


def _dataset(dstrail: Dstrail, owner: Login) -> DataSource:
    with dstrail.store.write() as tx:
        return ds_service.create_data_source(
            tx,
            CredentialVault(dstrail.keys.encryption_key),
            spec=ds_service.DataSourceCreate(
                name="grouped",
                data_source_type="DatasetConfig",
                auth_type="NoAuth",
                credential_type=CredentialType.SHARED,
                config={},
                permissions=Permissions(is_everyone=True),
            ),
            actor=owner.user,
            now_ms=dstrail.clock(),
        )
