"""Appends from two processes' stores on one database, interleaved: each store's PostgreSQL
appends start from the head it last committed (``HeadHint``), which the other store's appends
and checkpoints make stale; the trail must stay dense, in order and verifiable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dstrail.audit.verify import verify_store
from dstrail.context import Dstrail
from dstrail.store import Store
from tests.support import new_event


@pytest.fixture
def other(dstrail: Dstrail) -> Iterator[Store]:
    """A second store on the same database, as another process would open it."""
    store = Store(dstrail.store.url, checkpoints=dstrail.store.checkpoints)
    yield store
    store.dispose()


def _append(store: Store, ts_ms: int, name: str) -> None:
    with store.write() as tx:
        tx.audit.record(new_event(ts_ms, data_source_name=name))


def _seqs_and_names(store: Store) -> list[tuple[int, str]]:
    with store.read() as tx:
        rows = tx.connection.execute(
            text("SELECT seq, data_source_name FROM audit_events ORDER BY seq")
        ).all()
    return [(int(seq), str(name)) for seq, name in rows]


def _verified(dstrail: Dstrail) -> None:
    report = verify_store(dstrail.store, public_key=dstrail.signer.public_raw)
    assert report.ok, report.findings


def test_interleaved_appends_from_two_stores_stay_dense_and_verify(
    dstrail: Dstrail, other: Store
) -> None:
    before = len(_seqs_and_names(dstrail.store))
    now = dstrail.clock()
    order = ["a", "a", "b", "a", "b", "b", "a", "a", "a", "b"]
    for i, who in enumerate(order):
        _append(dstrail.store if who == "a" else other, now + i, f"{who}{i}")
    rows = _seqs_and_names(dstrail.store)[before:]
    assert [seq for seq, _ in rows] == list(range(before + 1, before + len(order) + 1))
    assert [name for _, name in rows] == [f"{who}{i}" for i, who in enumerate(order)]
    _verified(dstrail)


def test_a_checkpoint_signed_elsewhere_is_kept_by_the_next_append(
    dstrail: Dstrail, other: Store
) -> None:
    now = dstrail.clock()
    _append(dstrail.store, now, "first")
    _append(dstrail.store, now + 1, "second")  # the store now holds a hint of its head
    with other.write() as tx:
        signed = tx.integrity.checkpoint(now_ms=now + 2)  # the head's checkpoint fields move
    _append(dstrail.store, now + 3, "third")
    with dstrail.store.read() as tx:
        head = tx.connection.execute(
            text("SELECT size, checkpoint_size, checkpoint_ms FROM audit_head")
        ).one()
        assert tx.integrity.checkpoint_at(signed.tree_size) == signed
    assert int(head.checkpoint_size) >= signed.tree_size  # not rolled back by a stale hint
    assert int(head.checkpoint_ms) >= now + 2
    assert int(head.size) == signed.tree_size + 1
    _verified(dstrail)
