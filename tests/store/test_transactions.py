"""Store.write(): commit on success, nothing kept on failure, and the next write starts clean."""

from __future__ import annotations

import orjson
import pytest

from dstrail.audit.recorder import record_event
from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.domain.datasources import DataSource
from dstrail.domain.ids import new_object_id
from dstrail.domain.trail import EventKind, merkle
from dstrail.domain.users import Role, User
from dstrail.store import Repositories
from tests.support import Login, audit_count, create_dataset


def _create(dstrail: Dstrail, actor: Login, name: str) -> None:
    create_dataset(dstrail, actor, name)


def _record_access(
    dstrail: Dstrail, tx: Repositories, ds: DataSource, actor: Login, **metadata: str
) -> None:
    record_event(
        tx,
        kind=EventKind.ACCESS_DATA_SOURCE,
        data_source=ds,
        actor=actor.user,
        now_ms=dstrail.clock(),
        metadata=metadata,
    )


def test_a_failed_write_keeps_nothing_and_the_next_write_commits(
    dstrail: Dstrail, alice: Login
) -> None:
    before = audit_count(dstrail)
    with pytest.raises(RuntimeError, match="crash"), dstrail.store.write() as tx:
        ghost = User(id=new_object_id(), username="ghost", email="", role=Role.USER)
        tx.users.add(ghost, now_ms=0)  # through SQLAlchemy
        with dstrail.store.read() as other:
            assert other.users.by_username("ghost") is None  # not visible before commit
        raise RuntimeError("crash")
    _create(dstrail, alice, "after-failure")
    with dstrail.store.read() as tx:
        assert tx.users.by_username("ghost") is None
        assert tx.data_sources.active_by_name("after-failure") is not None
    assert audit_count(dstrail) == before + 1


def test_an_append_only_block_commits_and_a_failed_one_keeps_no_event(
    dstrail: Dstrail, alice: Login
) -> None:
    _create(dstrail, alice, "ds")
    with dstrail.store.read() as tx:
        ds = tx.data_sources.active_by_name("ds")
    assert ds is not None
    before = audit_count(dstrail)
    with dstrail.store.write() as tx:  # only the driver-cursor append runs here
        _record_access(dstrail, tx, ds, alice)
    assert audit_count(dstrail) == before + 1
    with pytest.raises(RuntimeError), dstrail.store.write() as tx:
        _record_access(dstrail, tx, ds, alice)
        tx.audit.append_deferred()  # written now, not only just before the commit
        raise RuntimeError("crash after the append")
    assert audit_count(dstrail) == before + 1
    with dstrail.store.write() as tx:
        _record_access(dstrail, tx, ds, alice)
    with dstrail.store.read() as tx:
        seq = tx.audit.size()
    assert seq == before + 2  # dense: the rolled-back append left no gap


def test_a_writes_events_are_appended_together_just_before_its_commit(
    dstrail: Dstrail, alice: Login
) -> None:
    """The head lock is taken at the end of the write, for all its events at once, in the
    order they were recorded."""
    _create(dstrail, alice, "ds")
    with dstrail.store.read() as tx:
        ds = tx.data_sources.active_by_name("ds")
    assert ds is not None
    before = audit_count(dstrail)
    with dstrail.store.write() as tx:
        for n in range(3):
            _record_access(dstrail, tx, ds, alice, n=str(n))
        assert tx.audit.recorded == 3
        assert tx.audit.size() == before  # not appended yet
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(before, limit=10)
    assert [(row[7], orjson.loads(row[4])["n"]) for row in rows] == [
        (before + 1, "0"),
        (before + 2, "1"),
        (before + 3, "2"),
    ]
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.text()
    with dstrail.store.read() as tx:  # the subtree hashes written with the rows serve proofs
        size = tx.audit.size()
        leaves = [row[11] for row in tx.integrity.events_after(0, limit=size)]
        root = tx.integrity.root(size)
        assert root == merkle.root_from_leaves(leaf for leaf in leaves if leaf is not None)
        for seq in range(1, size + 1):
            leaf = leaves[seq - 1]
            assert leaf is not None
            path = tx.integrity.inclusion_proof(seq, size)
            assert merkle.verify_inclusion(leaf, seq - 1, size, path, root)
