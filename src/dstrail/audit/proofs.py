"""Integrity reads: checkpoints and the proofs that tie events and tree sizes to them.

Each takes the caller's read transaction and checks its arguments against the tree as it is
(an ``InvalidInput`` names the parameter and the accepted range; ``NotFound`` when there is
nothing to prove against yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dstrail.domain.trail import (
    ENCODING_VERSION,
    CheckpointRecord,
    StoredEvent,
    checkpoint_document,
    event_document,
)
from dstrail.errors import InvalidInput, NotFound
from dstrail.store import Repositories


def _document_or_none(record: CheckpointRecord | None) -> dict[str, Any] | None:
    return checkpoint_document(record) if record is not None else None


def _hexes(nodes: list[bytes]) -> list[str]:
    return [node.hex() for node in nodes]


def _check_size(tx: Repositories, tree_size: int, *, field: str) -> None:
    size, _ = tx.integrity.head()
    if not 0 <= tree_size <= size:
        raise InvalidInput(f"{field}: {tree_size} is not accepted; accepted: 0 to {size}")


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Event ``seq`` is leaf ``seq - 1`` of the tree of ``tree_size`` events."""

    event: StoredEvent
    tree_size: int
    leaf_hash: bytes | None
    audit_path: list[bytes]
    root_hash: bytes
    checkpoint: CheckpointRecord | None

    def document(self) -> dict[str, Any]:
        """The JSON form (docs/integrity.md)."""
        seq = self.event.seq
        return {
            "seq": seq,
            "leafIndex": seq - 1,
            "treeSize": self.tree_size,
            "encoding": ENCODING_VERSION,
            "event": {**event_document(self.event), "metadata": orjson.loads(self.event.metadata)},
            "leafHash": self.leaf_hash.hex() if self.leaf_hash else None,
            "auditPath": _hexes(self.audit_path),
            "rootHash": self.root_hash.hex(),
            "checkpoint": _document_or_none(self.checkpoint),
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of ``second`` events extends the tree of ``first`` events."""

    first: int
    second: int
    first_root: bytes
    second_root: bytes
    proof: list[bytes]
    first_checkpoint: CheckpointRecord | None
    second_checkpoint: CheckpointRecord | None

    def document(self) -> dict[str, Any]:
        """The JSON form (docs/integrity.md)."""
        return {
            "first": self.first,
            "second": self.second,
            "firstRootHash": self.first_root.hex(),
            "secondRootHash": self.second_root.hex(),
            "proof": _hexes(self.proof),
            "firstCheckpoint": _document_or_none(self.first_checkpoint),
            "secondCheckpoint": _document_or_none(self.second_checkpoint),
        }


def find_checkpoint(
    tx: Repositories, *, tree_size: int | None = None, hint: str = ""
) -> CheckpointRecord:
    """The latest checkpoint, or the one of exactly ``tree_size`` events (``hint``: what to
    do when there is none yet)."""
    if tree_size is None:
        record = tx.integrity.latest_checkpoint()
        if record is None:
            raise NotFound("no checkpoint yet" + (f"; {hint}" if hint else ""))
        return record
    record = tx.integrity.checkpoint_at(tree_size)
    if record is None:
        raise NotFound(f"no checkpoint of tree size {tree_size}")
    return record


def covering_checkpoint(tx: Repositories, *, seq: int) -> CheckpointRecord | None:
    """The latest checkpoint when it covers event ``seq`` (None: no checkpoint does yet, so
    ``prove_inclusion`` without a tree size would find nothing to prove against)."""
    record = tx.integrity.latest_checkpoint()
    return record if record is not None and record.tree_size >= seq else None


def prove_inclusion(tx: Repositories, *, seq: int, tree_size: int | None = None) -> InclusionProof:
    """Event ``seq`` in the tree of ``tree_size`` events (default: the latest checkpoint,
    which must cover it)."""
    event = tx.audit.by_sequence(seq)
    if event is None:
        raise NotFound(f"no event with seq {seq}")
    if tree_size is None:
        checkpoint = tx.integrity.latest_checkpoint()
        if checkpoint is None or checkpoint.tree_size < seq:
            raise NotFound(f"no checkpoint covers seq {seq} yet; give treeSize")
        size = checkpoint.tree_size
    else:
        _check_size(tx, tree_size, field="treeSize")
        checkpoint = tx.integrity.checkpoint_at(tree_size)
        size = tree_size
    if seq > size:
        raise InvalidInput(f"seq: {seq} is not in a tree of {size} events")
    return InclusionProof(
        event=event,
        tree_size=size,
        leaf_hash=tx.integrity.leaf_hashes([seq]).get(seq),
        audit_path=tx.integrity.inclusion_proof(seq, size),
        root_hash=checkpoint.root_hash if checkpoint is not None else tx.integrity.root(size),
        checkpoint=checkpoint,
    )


def prove_consistency(
    tx: Repositories, *, first: int, second: int | None = None
) -> ConsistencyProof:
    """The tree of ``second`` events (default: the latest checkpoint's) extends ``first``'s."""
    if second is None:
        second = find_checkpoint(tx, hint="give second").tree_size
    if first > second:
        raise InvalidInput(f"first: {first} is larger than second ({second})")
    _check_size(tx, second, field="second")
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=tx.integrity.root(first),
        second_root=tx.integrity.root(second),
        proof=tx.integrity.consistency_proof(first, second),
        first_checkpoint=tx.integrity.checkpoint_at(first),
        second_checkpoint=tx.integrity.checkpoint_at(second),
    )
