"""Trails for the tile tests: made through the store, bulk-loaded, or rewritten behind
dstrail's back as a DBA would (``attack`` drops the append-only triggers first); and an
RFC 6962 tree hash written here with ``hashlib`` only, to check dstrail's against."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import insert, select, text

from dstrail.context import Dstrail
from dstrail.domain.trail import EVENT_COLUMNS, StoredEvent, event_leaf, merkle, stored_columns
from dstrail.store.schema import audit_events
from tests.audit.test_integrity_tamper import attack
from tests.support import new_event


def record_events(dstrail: Dstrail, count: int) -> int:
    """Append ``count`` events through the store (one transaction); the trail's size."""
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        for i in range(count):
            tx.audit.record(
                new_event(
                    now - (count - i),
                    data_source_id=f"{i:024x}",
                    data_source_name=f"ds-{i % 7}",
                    metadata={"operation": "objectKey", "objectKey": f"k/{i}", "é": "ü"},
                )
            )
    with dstrail.store.read() as tx:
        return tx.audit.size()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tree_hash(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962 section 2.1, from leaf hashes: hashlib only, none of dstrail's code."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + tree_hash(leaves[:split]) + tree_hash(leaves[split:]))


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1, leaf first: hashlib only."""
    if len(leaves) <= 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*audit_path(index, leaves[:split]), tree_hash(leaves[split:])]
    return [*audit_path(index - split, leaves[split:]), tree_hash(leaves[:split])]


def hashes_of(data: bytes) -> list[bytes]:
    """A tile's bytes as its 32-byte hashes."""
    assert len(data) % 32 == 0
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def stored_leaves(dstrail: Dstrail) -> list[bytes]:
    """Every event's stored leaf hash, in seq order (checked dense from 1)."""
    with dstrail.store.engine.connect() as connection:
        rows = connection.execute(
            select(audit_events.c.seq, audit_events.c.leaf_hash).order_by(audit_events.c.seq)
        ).all()
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    return [bytes(leaf) for _, leaf in rows]


def event_rows(dstrail: Dstrail) -> list[dict[str, Any]]:
    """Every ``audit_events`` row, all columns, in seq order."""
    with dstrail.store.engine.connect() as connection:
        rows = connection.execute(select(audit_events).order_by(audit_events.c.seq))
        return [dict(row._mapping) for row in rows]


def _sealed(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The rows numbered 1, 2... with the leaf and subtree hashes appends would have given
    them, and the tree's frontier."""
    frontier: list[bytes] = []
    sealed = []
    for index, row in enumerate(rows):
        row = {**row, "seq": index + 1}
        row["leaf_hash"] = event_leaf(StoredEvent(*(row[name] for name in EVENT_COLUMNS)))
        frontier, completed = merkle.append_leaf(frontier, index, row["leaf_hash"])
        row["subtree_hashes"] = b"".join(value for _, _, value in completed) or None
        sealed.append(row)
    return sealed, frontier


def rewrite(
    dstrail: Dstrail, rows: list[dict[str, Any]], *, checkpoint_size: int | None = None
) -> None:
    """Replace every event with ``rows``, renumbered and with every hash recomputed from the
    public encoding, and the head to match: all an attacker with the database but not the
    signing key can do. ``checkpoint_size``: the head's record of the last checkpoint (as it
    was by default)."""
    sealed, frontier = _sealed(rows)
    attack(dstrail, "DELETE FROM audit_events")
    with dstrail.store.engine.begin() as connection:
        connection.execute(insert(audit_events), sealed)
        head = {"size": len(sealed), "frontier": merkle.pack_frontier(frontier)}
        if checkpoint_size is None:
            connection.execute(
                text("UPDATE audit_head SET size = :size, frontier = :frontier"), head
            )
        else:
            connection.execute(
                text(
                    "UPDATE audit_head SET size = :size, frontier = :frontier, "
                    "checkpoint_size = :checkpoint_size"
                ),
                {**head, "checkpoint_size": checkpoint_size},
            )


def bulk_load(dstrail: Dstrail, count: int) -> int:
    """Start an empty trail with ``count`` events written straight into its table, with the
    hashes appends would give them (through the store, 65,536 events take minutes); the
    trail's size."""
    with dstrail.store.read() as tx:
        assert tx.audit.size() == 0, "bulk_load starts a trail"
    now = dstrail.clock()
    rows = [
        stored_columns(
            seq,
            new_event(
                now - count + seq, data_source_name=f"ds-{seq % 11}", metadata={"n": f"{seq}"}
            ),
        )
        for seq in range(1, count + 1)
    ]
    sealed, frontier = _sealed(rows)
    with dstrail.store.engine.begin() as connection:
        connection.execute(insert(audit_events), sealed)
        connection.execute(
            text("UPDATE audit_head SET size = :size, frontier = :frontier"),
            {"size": count, "frontier": merkle.pack_frontier(frontier)},
        )
    return count
