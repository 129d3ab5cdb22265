"""The Merkle tree and signed checkpoints of the audit trail, in SQL.

``extend_tree`` is called by ``AuditRepository.append`` (the one place events are written) in
the same transaction, under the ``audit_head`` row lock that orders appenders. The hashing
itself is pure code in ``dstrail.audit.merkle``; this module only stores and reads hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, select, text

from dstrail.audit import merkle
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store.driver import DriverCursor, Statement, statement
from dstrail.store.schema import audit_checkpoints, audit_events

T = TypeVar("T")


class CheckpointSigner(Protocol):
    """Signs checkpoints; implemented in ``dstrail.audit.checkpoints`` (the store holds no key)."""

    @property
    def key_id(self) -> str:
        """Names the key (a digest of the public key)."""
        ...

    def sign(self, *, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
        """The signature of one checkpoint."""
        ...


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When appends sign a checkpoint: every ``every_events`` events, or on the first append
    when the last checkpoint is ``every_ms`` old."""

    signer: CheckpointSigner
    every_events: int
    every_ms: int


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A signed statement: the first ``tree_size`` events have this Merkle root."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    key_id: str
    signature: bytes


IntegrityRow = tuple[
    str, str, str, str, str, str, int, int, str, str | None, str | None, bytes | None
]
"""An ``EventRow`` (dataSourceId, name, type, kind, metadata JSON, performedBy, ts ms, seq)
followed by the stored performedByUsername, run id, project id and leaf hash."""

_INTEGRITY_COLUMNS = (
    audit_events.c.data_source_id,
    audit_events.c.data_source_name,
    audit_events.c.data_source_type,
    audit_events.c.event_kind,
    audit_events.c.metadata,
    audit_events.c.performed_by,
    audit_events.c.ts_ms,
    audit_events.c.seq,
    audit_events.c.performed_by_username,
    audit_events.c.run_id,
    audit_events.c.project_id,
    audit_events.c.leaf_hash,
)
_CHECKPOINT_COLUMNS = (
    audit_checkpoints.c.tree_size,
    audit_checkpoints.c.root_hash,
    audit_checkpoints.c.timestamp_ms,
    audit_checkpoints.c.key_id,
    audit_checkpoints.c.signature,
)


_SET_HEAD = statement("UPDATE audit_head SET size = :size, frontier = :frontier WHERE id = 1")
_SET_HEAD_AND_CHECKPOINT = statement(
    "UPDATE audit_head SET size = :size, frontier = :frontier, "
    "checkpoint_size = :checkpoint_size, checkpoint_ms = :ms WHERE id = 1"
)
_SET_CHECKPOINT = statement(
    "UPDATE audit_head SET checkpoint_size = :size, checkpoint_ms = :ms WHERE id = 1"
)
_INSERT_CHECKPOINT = statement(
    "INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, signature) "
    "VALUES (:size, :root, :ms, :key_id, :signature)"
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


class Executes(Protocol):
    """Runs (or collects) statements: a ``DriverCursor`` or a ``WriteBatch``."""

    def execute(self, sql: Statement, params: dict[str, Any] | None = None) -> None:
        """Run or collect one statement."""
        ...


def extend_tree(
    db: Executes,
    *,
    size: int,
    frontier: bytes | None,
    leaves: Sequence[tuple[bytes, int]],
    checkpoint_ms: int,
    policy: CheckpointPolicy | None,
) -> list[bytes | None]:
    """Add leaves number ``size + 1``, ``size + 2``... (each a leaf hash and the time of its
    event) to the tree of ``size`` leaves whose frontier is ``frontier``: store the new head
    (size and frontier) and, when due, checkpoints. O(log n) per leaf, reading no old rows.
    The caller holds the head row lock.

    Returns, for each leaf, the hashes of the subtrees it completes (``subtree_hashes``), which
    the caller stores in that event's own row: levels 1, 2... concatenated, None for none."""
    hashes = merkle.unpack_frontier(frontier)
    if len(hashes) != size.bit_count():
        # A loader that wrote events around dstrail left the head without its frontier:
        # refuse rather than extend a tree that no longer matches its events.
        raise DstrailError(
            f"the audit tree head is inconsistent (size {size}, {len(hashes)} frontier "
            "hashes); run `dstrail audit verify` (docs/integrity.md, bulk loaders)"
        )
    checkpoint_size: int | None = None
    subtrees: list[bytes | None] = []
    for leaf, now_ms in leaves:
        hashes, completed = merkle.append_leaf(hashes, size, leaf)
        size += 1
        subtrees.append(b"".join(value for _, _, value in completed) if completed else None)
        if policy is not None and (
            size % policy.every_events == 0 or now_ms - checkpoint_ms >= policy.every_ms
        ):
            _sign(db, policy, size=size, root=merkle.root_of_frontier(hashes), now_ms=now_ms)
            checkpoint_size, checkpoint_ms = size, now_ms
    head = {"frontier": merkle.pack_frontier(hashes), "size": size}
    if checkpoint_size is None:
        db.execute(_SET_HEAD, head)
    else:
        head.update(checkpoint_size=checkpoint_size, ms=checkpoint_ms)
        db.execute(_SET_HEAD_AND_CHECKPOINT, head)
    return subtrees


def _sign(
    db: Executes, policy: CheckpointPolicy, *, size: int, root: bytes, now_ms: int
) -> CheckpointRecord:
    record = CheckpointRecord(
        tree_size=size,
        root_hash=root,
        timestamp_ms=now_ms,
        key_id=policy.signer.key_id,
        signature=policy.signer.sign(tree_size=size, root_hash=root, timestamp_ms=now_ms),
    )
    db.execute(
        _INSERT_CHECKPOINT,
        {
            "size": record.tree_size,
            "root": record.root_hash,
            "ms": record.timestamp_ms,
            "key_id": record.key_id,
            "signature": record.signature,
        },
    )
    return record


def _record(values: Sequence[Any]) -> CheckpointRecord:
    return CheckpointRecord(
        tree_size=int(values[0]),
        root_hash=bytes(values[1]),
        timestamp_ms=int(values[2]),
        key_id=str(values[3]),
        signature=bytes(values[4]),
    )


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
            select(*_CHECKPOINT_COLUMNS).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
        ).first()
        return _record(row) if row else None

    def checkpoint_at(self, tree_size: int) -> CheckpointRecord | None:
        """The checkpoint of exactly ``tree_size`` events."""
        row = self._db.execute(
            select(*_CHECKPOINT_COLUMNS).where(audit_checkpoints.c.tree_size == tree_size)
        ).first()
        return _record(row) if row else None

    def checkpoint_covering(self, seq: int) -> CheckpointRecord | None:
        """The smallest checkpoint that includes event ``seq``."""
        row = self._db.execute(
            select(*_CHECKPOINT_COLUMNS)
            .where(audit_checkpoints.c.tree_size >= seq)
            .order_by(audit_checkpoints.c.tree_size)
            .limit(1)
        ).first()
        return _record(row) if row else None

    def checkpoints(self) -> list[CheckpointRecord]:
        """Every checkpoint, smallest tree first."""
        rows = self._db.execute(
            select(*_CHECKPOINT_COLUMNS).order_by(audit_checkpoints.c.tree_size)
        )
        return [_record(row) for row in rows]

    # The tree ------------------------------------------------------------------------------

    def head(self) -> tuple[int, list[bytes]]:
        """(size, frontier) as the head row says."""
        size, frontier = self._db.execute(
            text("SELECT size, frontier FROM audit_head WHERE id = 1")
        ).one()
        return int(size), merkle.unpack_frontier(frontier)

    def nodes(self, wanted: set[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        """Stored hashes of perfect subtrees (level 0: the events' leaf hashes)."""
        found: dict[merkle.NodeId, bytes] = {}
        leaves = sorted(index + 1 for level, index in wanted if level == 0)
        if leaves:
            rows = self._db.execute(
                select(audit_events.c.seq, audit_events.c.leaf_hash).where(
                    audit_events.c.seq.in_(leaves)
                )
            )
            for seq, value in rows:
                if value is not None:
                    found[(0, int(seq) - 1)] = bytes(value)
        # Node (level L >= 1, index i) is stored by the event that completes it, the last of its
        # leaves: seq (i + 1) * 2^L, at offset (L - 1) * 32 of that row's subtree_hashes.
        inner = {((index + 1) << level): (level, index) for level, index in wanted if level > 0}
        if inner:
            rows = self._db.execute(
                select(audit_events.c.seq, audit_events.c.subtree_hashes).where(
                    audit_events.c.seq.in_(sorted(inner))
                )
            )
            for seq, value in rows:
                level, index = inner[int(seq)]
                start = (level - 1) * merkle.HASH_SIZE
                if value is not None and len(value) >= start + merkle.HASH_SIZE:
                    found[(level, index)] = bytes(value[start : start + merkle.HASH_SIZE])
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

    def _check_size(self, tree_size: int) -> None:
        size, _ = self.head()
        if not 0 <= tree_size <= size:
            raise InvalidInput(f"treeSize: {tree_size} is not accepted; accepted: 0 to {size}")

    def root(self, tree_size: int) -> bytes:
        """The root of the first ``tree_size`` events."""
        self._check_size(tree_size)
        return self._compute(lambda read: merkle.tree_root(tree_size, read))

    def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        """The audit path of event ``seq`` in the tree of ``tree_size`` events."""
        self._check_size(tree_size)
        if not 1 <= seq <= tree_size:
            raise InvalidInput(f"seq: {seq} is not accepted; accepted: 1 to {tree_size}")
        return self._compute(lambda read: merkle.inclusion_proof(seq - 1, tree_size, read))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The proof that the tree of ``second`` events extends that of ``first``."""
        self._check_size(second)
        if not 0 <= first <= second:
            raise InvalidInput(f"first: {first} is not accepted; accepted: 0 to {second}")
        return self._compute(lambda read: merkle.consistency_proof(first, second, read))

    # Reading events for verification and export ------------------------------------------

    def events_after(self, seq: int, *, limit: int) -> list[IntegrityRow]:
        """Up to ``limit`` events with a larger seq, in seq order, with their stored hashes."""
        rows = self._db.execute(
            select(*_INTEGRITY_COLUMNS)
            .where(audit_events.c.seq > seq)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return [tuple(row) for row in rows]

    def leaf_hashes(self, seqs: list[int]) -> dict[int, bytes | None]:
        """The stored leaf hash of each of these events."""
        rows = self._db.execute(
            select(audit_events.c.seq, audit_events.c.leaf_hash).where(audit_events.c.seq.in_(seqs))
        )
        return {int(seq): (bytes(value) if value is not None else None) for seq, value in rows}
