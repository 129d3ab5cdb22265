"""SPEC 2 and 7: a change and its event commit together or not at all; the trail only grows;
sequence numbers are dense and follow commit order, also under concurrent writers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import DBAPIError

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, Permissions
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.errors import Conflict, NotFound
from dstrail.services import datasources as ds_service
from dstrail.services.credentials import CredentialVault
from tests.support import Login, SettableClock, audit_count


class Boom(RuntimeError):
    """A crash in the middle of a change."""


def spec(name: str, **changes: object) -> ds_service.DataSourceCreate:
    values: dict[str, object] = {
        "name": name,
        "data_source_type": "S3Config",
        "auth_type": "AWSIAMBasic",
        "credential_type": CredentialType.SHARED,
        "config": {"bucket": "b"},
        "permissions": Permissions(is_everyone=False),
        "credentials": {"accessKeyID": "a", "secretAccessKey": "b"},
    }
    values.update(changes)
    return ds_service.DataSourceCreate(**values)  # type: ignore[arg-type]


def vault(dstrail: Dstrail) -> CredentialVault:
    return CredentialVault(dstrail.keys.encryption_key)


def sequences(dstrail: Dstrail) -> list[int]:
    with dstrail.store.read() as tx:
        return [row[0] for row in tx.connection.exec_driver_sql("SELECT seq FROM audit_events")]


def numbers(count: int) -> list[int]:
    """The sequence numbers of a dense trail of ``count`` events."""
    return list(range(1, count + 1))


def test_a_crash_after_the_change_leaves_nothing(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    base = audit_count(dstrail)  # making alice recorded her creation and her key
    with pytest.raises(Boom), dstrail.store.write() as tx:
        created = ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("half-done"), actor=alice.user, now_ms=clock()
        )
        assert tx.data_sources.by_id(created.id) is not None
        tx.audit.append_deferred()  # its event written too (else only before the commit)
        assert tx.audit.size() == base + 1
        raise Boom
    with dstrail.store.read() as tx:
        assert tx.data_sources.by_id(created.id) is None
        assert tx.data_sources.all(include_deleted=True) == []
        assert tx.data_sources.credential_holders(created.id) == []
        assert tx.audit.size() == base
    assert sorted(sequences(dstrail)) == numbers(base)
    # the name was never taken, and the next event takes the next number
    with dstrail.store.write() as tx:
        ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("half-done"), actor=alice.user, now_ms=clock()
        )
    assert sorted(sequences(dstrail)) == numbers(base + 1)


def test_a_refused_second_step_undoes_the_first(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    base = audit_count(dstrail)
    with dstrail.store.write() as tx:
        kept = ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("kept"), actor=alice.user, now_ms=clock()
        )
    with pytest.raises(NotFound), dstrail.store.write() as tx:
        ds_service.set_permissions(
            tx,
            data_source_id=kept.id,
            permissions=Permissions(is_everyone=True),
            actor=alice.user,
            now_ms=clock(),
        )
        tx.audit.append_deferred()
        assert tx.audit.size() == base + 2
        ds_service.transfer_ownership(
            tx, data_source_id=kept.id, new_owner_id="f" * 24, actor=alice.user, now_ms=clock()
        )
    with dstrail.store.read() as tx:
        assert tx.data_sources.by_id(kept.id) == kept
        assert tx.audit.size() == base + 1
    assert sorted(sequences(dstrail)) == numbers(base + 1)


def test_a_conflict_inside_a_transaction_keeps_nothing_of_it(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    base = audit_count(dstrail)
    with pytest.raises(Conflict), dstrail.store.write() as tx:
        ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("twice"), actor=alice.user, now_ms=clock()
        )
        ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("twice"), actor=bob.user, now_ms=clock()
        )
    assert audit_count(dstrail) == base
    with dstrail.store.read() as tx:
        assert tx.data_sources.all(include_deleted=True) == []


def test_events_cannot_be_updated_or_deleted(
    dstrail: Dstrail, clock: SettableClock, alice: Login
) -> None:
    base = audit_count(dstrail)
    with dstrail.store.write() as tx:
        ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("append-only"), actor=alice.user, now_ms=clock()
        )
    seq = base + 1
    with dstrail.store.read() as tx:
        before = tx.audit.by_sequence(seq)
    assert before is not None
    for statement in (
        f"UPDATE audit_events SET data_source_name = 'rewritten' WHERE seq = {seq}",
        "UPDATE audit_events SET ts_ms = 0",
        f"DELETE FROM audit_events WHERE seq = {seq}",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), dstrail.store.write() as tx:
            tx.connection.exec_driver_sql(statement)
    with dstrail.store.read() as tx:
        assert tx.audit.by_sequence(seq) == before
        assert tx.audit.size() == base + 1


def test_sequences_are_dense_in_commit_order(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    base = audit_count(dstrail)
    with dstrail.store.write() as tx:
        ds = ds_service.create_data_source(
            tx, vault(dstrail), spec=spec("seq-ds"), actor=alice.user, now_ms=clock()
        )
    for step in range(3):
        clock.advance(1)
        with dstrail.store.write() as tx:
            ds = ds_service.set_permissions(
                tx,
                data_source_id=ds.id,
                permissions=Permissions(is_everyone=step % 2 == 0),
                actor=alice.user,
                now_ms=clock(),
            ).data_source
        # a failed transaction in between takes no number
        with pytest.raises(Boom), dstrail.store.write() as tx:
            ds_service.transfer_ownership(
                tx, data_source_id=ds.id, new_owner_id=bob.id, actor=alice.user, now_ms=clock()
            )
            raise Boom
    with dstrail.store.write() as tx:
        ds_service.delete_data_source(tx, data_source_id=ds.id, actor=alice.user, now_ms=clock())
    assert sorted(sequences(dstrail)) == numbers(base + 5)
    with dstrail.store.read() as tx:
        mine = range(base + 1, base + 6)
        kinds = [row[3] for row in (tx.audit.by_sequence(seq) for seq in mine) if row]
        assert tx.audit.size() == base + 5
    assert kinds == [
        EventKind.CREATE_DATA_SOURCE,
        *[EventKind.CHANGE_OF_PERMISSIONS] * 3,
        EventKind.DELETE_DATA_SOURCE,
    ]


def test_concurrent_writers_get_dense_sequences(dstrail: Dstrail, clock: SettableClock) -> None:
    threads, per_thread = 6, 15
    order: list[tuple[int, int, int]] = []  # (seq, thread, i) as each commit returns
    lock = threading.Lock()
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(number: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with dstrail.store.write() as tx:
                    seq = tx.audit.append(
                        NewAuditEvent(
                            event_kind=EventKind.ACCESS_DATA_SOURCE,
                            data_source_id=f"{number:024x}",
                            data_source_name=f"thread-{number}",
                            data_source_type="S3Config",
                            performed_by=f"{number:024x}",
                            performed_by_username=f"t{number}",
                            timestamp_ms=clock(),
                            metadata={"i": str(i)},
                        )
                    )
                with lock:
                    order.append((seq, number, i))
        except BaseException as error:  # surfaced below
            failures.append(error)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    total = threads * per_thread
    assert sorted(sequences(dstrail)) == list(range(1, total + 1))
    assert sorted(seq for seq, _, _ in order) == list(range(1, total + 1))
    assert audit_count(dstrail) == total
    for number in range(threads):
        mine = [seq for seq, thread, _ in sorted(order, key=lambda o: o[2]) if thread == number]
        assert mine == sorted(mine), "a writer's later commit got an earlier number"
    with dstrail.store.read() as tx:
        for seq, number, i in order:
            row = tx.audit.by_sequence(seq)
            assert row is not None
            assert row[1] == f"thread-{number}"
            assert f'"i":"{i}"' in row[4]


def test_racing_creates_of_one_name_leave_one_data_source_and_one_event(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    base = audit_count(dstrail)
    racers = 6
    start = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def racer(number: int) -> None:
        start.wait()
        try:
            with dstrail.store.write() as tx:
                ds_service.create_data_source(
                    tx,
                    vault(dstrail),
                    spec=spec("race-ds"),
                    actor=(alice if number % 2 else bob).user,
                    now_ms=clock(),
                )
            outcome = "created"
        except Conflict:
            outcome = "conflict"
        except BaseException as error:
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["conflict"] * (racers - 1) + ["created"]
    with dstrail.store.read() as tx:
        assert [ds.name for ds in tx.data_sources.all(include_deleted=True)] == ["race-ds"]
        assert tx.audit.size() == base + 1
    assert sorted(sequences(dstrail)) == numbers(base + 1)
