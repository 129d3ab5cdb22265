"""The Merkle tree and signed checkpoints of the audit trail, in SQL.

``grow_tree`` and ``store_growth`` are called by ``AuditRepository.append`` (the one place
events are written) in the same transaction, under the ``audit_head`` row lock that orders
appenders. The hashing
itself is pure code in ``dstrail.domain.trail.merkle``; this module only stores and reads hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Connection, Table, select, text

from dstrail.domain.trail import (
    SEALED_COLUMNS,
    CheckpointPolicy,
    CheckpointRecord,
    SealedRow,
    merkle,
)
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store.driver import DriverCursor, Statement, plain_rows, statement
from dstrail.store.schema import audit_checkpoints, audit_events, audit_tree_hashes

T = TypeVar("T")


_SEALED_SELECT = tuple(audit_events.c[name] for name in SEALED_COLUMNS)
_CHECKPOINT_SELECT = tuple(audit_checkpoints.c[f.name] for f in fields(CheckpointRecord))


_SET_HEAD = statement("UPDATE audit_head SET size = :size, frontier = :frontier WHERE id = 1")
_SET_HEAD_AND_CHECKPOINT = statement(
    "UPDATE audit_head SET size = :size, frontier = :frontier, "
    "checkpoint_size = :checkpoint_size, checkpoint_ms = :checkpoint_ms WHERE id = 1"
)
_SET_CHECKPOINT = statement(
    "UPDATE audit_head SET checkpoint_size = :size, checkpoint_ms = :ms WHERE id = 1"
)
_INSERT_CHECKPOINT = statement(
    "INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, signature, "
    "origin) VALUES (:tree_size, :root_hash, :timestamp_ms, :key_id, :signature, :origin)"
)
LOCK_HEAD = statement(
    # SQLite: a write transaction already holds the one write lock (BEGIN IMMEDIATE). The
    # frontier comes as hex text, as it does when this read is read ahead (in JSON) with others.
    "SELECT size, hex(frontier) AS frontier_hex, checkpoint_size, checkpoint_ms "
    "FROM audit_head WHERE id = 1",
    postgresql="SELECT size, encode(frontier, 'hex') AS frontier_hex, checkpoint_size, "
    "checkpoint_ms FROM audit_head WHERE id = 1 FOR UPDATE",
)
"""Reads the head row and locks it until the transaction ends: appenders and checkpoints take
their turn here (``Head.of`` reads its row)."""


@dataclass(frozen=True, slots=True)
class Head:
    """The audit head row: the tree's size and frontier, and the last checkpoint."""

    size: int
    frontier: bytes | None
    checkpoint_size: int
    checkpoint_ms: int

    @classmethod
    def of(cls, row: Sequence[Any] | None) -> Head:
        """The head of a ``LOCK_HEAD`` row."""
        assert row is not None, "audit_head has its one row from the first migration"
        size, frontier_hex, checkpoint_size, checkpoint_ms = row
        return cls(
            size=int(size),
            frontier=bytes.fromhex(frontier_hex) if frontier_hex else None,
            checkpoint_size=int(checkpoint_size),
            checkpoint_ms=int(checkpoint_ms),
        )


HINT_REST_AFTER_MISS = 64
"""After a head hint proved stale (another process appended), this many appends read the head
under lock before the hint is tried again: where writers alternate, each miss costs a wasted
statement, so they are kept rare."""


class HeadHint:
    """The audit head as this process last committed it, for PostgreSQL appends: one that
    starts from it skips reading the head under lock (a round trip of its own) and updates the
    head only if it is still as hinted, in the one statement that writes the events; when
    another writer moved it, that statement writes nothing and the append reads the head under
    lock and writes again. A hint is never trusted: a stale one costs one statement."""

    __slots__ = ("_head", "_rest")

    def __init__(self) -> None:
        self._head: Head | None = None
        self._rest = 0

    def take(self) -> Head | None:
        """The hinted head, or None: none known, or resting after a miss."""
        if self._rest:
            self._rest -= 1
            return None
        head, self._head = self._head, None
        return head

    def keep(self, head: Head) -> None:
        """The head as just committed."""
        self._head = head

    def missed(self) -> None:
        """The hint was stale: rest before trusting one again."""
        self._head = None
        self._rest = HINT_REST_AFTER_MISS


class Executes(Protocol):
    """Runs (or collects) statements: a ``DriverCursor`` or a ``WriteBatch``."""

    def execute(self, sql: Statement, params: dict[str, Any] | None = None) -> None:
        """Run or collect one statement."""
        ...


@dataclass(frozen=True, slots=True)
class TreeGrowth:
    """What adding leaves to the tree made: each leaf's ``subtree_hashes`` (levels 1, 2...
    concatenated, None for none), the new head, and the checkpoints signed on the way."""

    subtrees: list[bytes | None]
    head: Head
    checkpoints: list[CheckpointRecord]

    def head_values(self) -> dict[str, Any]:
        """The new head as the parameters of a head update."""
        return {
            "size": self.head.size,
            "frontier": self.head.frontier,
            "checkpoint_size": self.head.checkpoint_size,
            "checkpoint_ms": self.head.checkpoint_ms,
        }


def grow_tree(
    head: Head, leaves: Sequence[tuple[bytes, int]], policy: CheckpointPolicy | None
) -> TreeGrowth:
    """Add leaves number ``size + 1``, ``size + 2``... (each a leaf hash and the time of its
    event) to the tree ``head`` describes, signing checkpoints when due; writes nothing.
    O(log n) per leaf, reading no old rows."""
    hashes = merkle.unpack_frontier(head.frontier)
    size, checkpoint_size, checkpoint_ms = head.size, head.checkpoint_size, head.checkpoint_ms
    if len(hashes) != size.bit_count():
        # A loader that wrote events around dstrail left the head without its frontier:
        # refuse rather than extend a tree that no longer matches its events.
        raise DstrailError(
            f"the audit tree head is inconsistent (size {size}, {len(hashes)} frontier "
            "hashes); run `dstrail audit verify` (docs/integrity.md, bulk loaders)"
        )
    subtrees: list[bytes | None] = []
    checkpoints: list[CheckpointRecord] = []
    for leaf, now_ms in leaves:
        hashes, completed = merkle.append_leaf(hashes, size, leaf)
        size += 1
        subtrees.append(b"".join(value for _, _, value in completed) if completed else None)
        if policy is not None and policy.due(size=size, now_ms=now_ms, last_ms=checkpoint_ms):
            root = merkle.root_of_frontier(hashes)
            checkpoints.append(policy.sign(tree_size=size, root_hash=root, now_ms=now_ms))
            checkpoint_size, checkpoint_ms = size, now_ms
    grown = Head(
        size=size,
        frontier=merkle.pack_frontier(hashes),
        checkpoint_size=checkpoint_size,
        checkpoint_ms=checkpoint_ms,
    )
    return TreeGrowth(subtrees=subtrees, head=grown, checkpoints=checkpoints)


def store_growth(db: Executes, growth: TreeGrowth) -> None:
    """Store the new head and the checkpoints signed of a ``grow_tree``; the caller holds the
    head row lock."""
    for record in growth.checkpoints:
        db.execute(_INSERT_CHECKPOINT, asdict(record))
    if growth.checkpoints:
        db.execute(_SET_HEAD_AND_CHECKPOINT, growth.head_values())
    else:
        db.execute(_SET_HEAD, {"frontier": growth.head.frontier, "size": growth.head.size})


def _sign(
    db: Executes, policy: CheckpointPolicy, *, size: int, root: bytes, now_ms: int
) -> CheckpointRecord:
    record = policy.sign(tree_size=size, root_hash=root, now_ms=now_ms)
    db.execute(_INSERT_CHECKPOINT, asdict(record))
    return record


def _stored_nodes(
    db: Connection, table: Table, wanted: set[merkle.NodeId]
) -> dict[merkle.NodeId, bytes]:
    """The hashes ``wanted`` that rows of ``table`` (``audit_events`` or ``audit_tree_hashes``:
    ``seq``, ``leaf_hash``, ``subtree_hashes``) hold."""
    found: dict[merkle.NodeId, bytes] = {}
    leaves = sorted(index + 1 for level, index in wanted if level == 0)
    seq = table.c.seq
    if leaves:
        # A run of consecutive leaves (a level-0 tile, a proof's range) is one range scan:
        # cheaper than expanding hundreds of IN parameters.
        contiguous = leaves[-1] - leaves[0] + 1 == len(leaves)
        rows = db.execute(
            select(seq, table.c.leaf_hash).where(
                seq.between(leaves[0], leaves[-1]) if contiguous else seq.in_(leaves)
            )
        )
        for number, value in rows:
            if value is not None:
                found[(0, int(number) - 1)] = bytes(value)
    # Node (level L >= 1, index i) is stored by the event that completes it, the last of its
    # leaves: seq (i + 1) * 2^L, at offset (L - 1) * 32 of that row's subtree_hashes.
    inner = {((index + 1) << level): (level, index) for level, index in wanted if level > 0}
    if inner:
        rows = db.execute(select(seq, table.c.subtree_hashes).where(seq.in_(sorted(inner))))
        for number, value in rows:
            level, index = inner[int(number)]
            start = (level - 1) * merkle.HASH_SIZE
            if value is not None and len(value) >= start + merkle.HASH_SIZE:
                found[(level, index)] = bytes(value[start : start + merkle.HASH_SIZE])
    return found


def _record(row: Sequence[Any]) -> CheckpointRecord:
    """A checkpoint of a ``_CHECKPOINT_SELECT`` row (bytea may come as a memoryview)."""
    values = dict(zip((f.name for f in fields(CheckpointRecord)), row, strict=True))
    values["root_hash"] = bytes(values["root_hash"])
    values["signature"] = bytes(values["signature"])
    return CheckpointRecord(**values)


class IntegrityRepository:
    """Reads the tree (roots, proofs, checkpoints) and signs checkpoints on demand."""

    def __init__(self, connection: Connection, policy: CheckpointPolicy | None = None) -> None:
        self._db = connection
        self._policy = policy

    # Checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, *, now_ms: int) -> CheckpointRecord:
        """A checkpoint of the tree as it is: the existing one when nothing was appended since,
        else a new one signed now (under the head lock, so it orders with appends)."""
        with DriverCursor(self._db) as cursor:
            head = Head.of(cursor.first(LOCK_HEAD, {}))
            if head.size == head.checkpoint_size:
                existing = self.checkpoint_at(head.size)
                if existing is not None:
                    return existing
            if self._policy is None:
                raise DstrailError("no checkpoint signing key is configured")
            root = merkle.root_of_frontier(merkle.unpack_frontier(head.frontier))
            record = _sign(cursor, self._policy, size=head.size, root=root, now_ms=now_ms)
            cursor.execute(_SET_CHECKPOINT, {"size": head.size, "ms": now_ms})
        return record

    def latest_checkpoint(self) -> CheckpointRecord | None:
        """The checkpoint of the largest tree."""
        row = self._db.execute(
            select(*_CHECKPOINT_SELECT).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
        ).first()
        return _record(row) if row else None

    def latest_note_checkpoint(self) -> CheckpointRecord | None:
        """The C2SP checkpoint (one with an origin) of the largest tree."""
        row = self._db.execute(
            select(*_CHECKPOINT_SELECT)
            .where(audit_checkpoints.c.origin.isnot(None))
            .order_by(audit_checkpoints.c.tree_size.desc())
            .limit(1)
        ).first()
        return _record(row) if row else None

    def checkpoint_at(self, tree_size: int) -> CheckpointRecord | None:
        """The checkpoint of exactly ``tree_size`` events."""
        row = self._db.execute(
            select(*_CHECKPOINT_SELECT).where(audit_checkpoints.c.tree_size == tree_size)
        ).first()
        return _record(row) if row else None

    def checkpoint_covering(self, seq: int) -> CheckpointRecord | None:
        """The smallest checkpoint that includes event ``seq``."""
        row = self._db.execute(
            select(*_CHECKPOINT_SELECT)
            .where(audit_checkpoints.c.tree_size >= seq)
            .order_by(audit_checkpoints.c.tree_size)
            .limit(1)
        ).first()
        return _record(row) if row else None

    def note_checkpoint_covering(self, seq: int) -> CheckpointRecord | None:
        """The smallest C2SP checkpoint (one with an origin) that includes event ``seq``."""
        row = self._db.execute(
            select(*_CHECKPOINT_SELECT)
            .where(audit_checkpoints.c.tree_size >= seq, audit_checkpoints.c.origin.isnot(None))
            .order_by(audit_checkpoints.c.tree_size)
            .limit(1)
        ).first()
        return _record(row) if row else None

    def checkpoints(self) -> list[CheckpointRecord]:
        """Every checkpoint, smallest tree first."""
        rows = self._db.execute(select(*_CHECKPOINT_SELECT).order_by(audit_checkpoints.c.tree_size))
        return [_record(row) for row in rows]

    # The tree ------------------------------------------------------------------------------

    def head(self) -> tuple[int, list[bytes]]:
        """(size, frontier) as the head row says."""
        size, frontier = self._db.execute(
            text("SELECT size, frontier FROM audit_head WHERE id = 1")
        ).one()
        return int(size), merkle.unpack_frontier(frontier)

    def nodes(self, wanted: set[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        """Stored hashes of perfect subtrees (level 0: the events' leaf hashes): from the
        events' rows, else, for events purged by retention, from the hashes kept of them."""
        found = _stored_nodes(self._db, audit_events, wanted)
        missing = wanted - found.keys()
        if missing:
            found.update(_stored_nodes(self._db, audit_tree_hashes, missing))
        return found

    def _compute(self, compute: Callable[[merkle.NodeReader], T]) -> T:
        stored = self.nodes(merkle.nodes_needed(compute))

        def read(level: int, index: int) -> bytes:
            try:
                return stored[(level, index)]
            except KeyError:
                raise DstrailError(
                    f"the Merkle tree misses node (level {level}, index {index}); "
                    "run `dstrail audit verify`"
                ) from None

        return compute(read)

    def _within(self, tree_size: int) -> None:
        """``InvalidInput`` unless the tree has at least ``tree_size`` events."""
        size, _ = self.head()
        if not 0 <= tree_size <= size:
            raise InvalidInput(f"tree size {tree_size} is outside the trail's 0 to {size} events")

    def root(self, tree_size: int) -> bytes:
        """The root of the first ``tree_size`` events (at most the tree's size)."""
        self._within(tree_size)
        return self._compute(lambda read: merkle.tree_root(tree_size, read))

    def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        """The audit path of event ``seq`` (1 to ``tree_size``) in the tree of ``tree_size``
        events (at most the tree's size)."""
        self._within(tree_size)
        return self._compute(lambda read: merkle.inclusion_proof(seq - 1, tree_size, read))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The proof that the tree of ``second`` events (at most the tree's size) extends that
        of ``first`` (0 to ``second``)."""
        self._within(second)
        return self._compute(lambda read: merkle.consistency_proof(first, second, read))

    # Reading events for verification and export ------------------------------------------

    def events_after(self, seq: int, *, limit: int) -> list[SealedRow]:
        """Up to ``limit`` events with a larger seq, in seq order, with their stored hashes."""
        rows = self._db.execute(
            select(*_SEALED_SELECT)
            .where(audit_events.c.seq > seq)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return cast(list[SealedRow], plain_rows(rows))

    def leaf_hashes(self, seqs: list[int]) -> dict[int, bytes | None]:
        """The stored leaf hash of each of these events."""
        rows = self._db.execute(
            select(audit_events.c.seq, audit_events.c.leaf_hash).where(audit_events.c.seq.in_(seqs))
        )
        return {int(seq): (bytes(value) if value is not None else None) for seq, value in rows}
