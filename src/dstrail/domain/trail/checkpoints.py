"""Checkpoint values: what a checkpoint states, the exact bytes its signature covers, when
appends sign one, and its JSON form. Keys and signing live in ``dstrail.audit.checkpoints``.

A checkpoint with an ``origin`` is a C2SP ``tlog-checkpoint`` (``note.Checkpoint``): its
signature covers the note text, the origin, size and base64 root one a line, and its key id
is the note key id (4 bytes, hex). One without (signed before dstrail spoke C2SP) covers
its own text, one field a line, and its key id names the key (8 bytes of SHA-256, hex)::

    dstrail-audit-checkpoint/v1
    <tree size>
    <root hash, 64 lowercase hex>
    <timestamp, epoch milliseconds>
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail.note import Checkpoint, Note, NoteSignature
from dstrail.errors import InvalidInput

MESSAGE_HEADER: Final = "dstrail-audit-checkpoint/v1"
ALGORITHM: Final = "Ed25519"


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A signed statement: the first ``tree_size`` events have this Merkle root. The field
    names are the ``audit_checkpoints`` column names."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    key_id: str
    signature: bytes
    origin: str | None = None
    """The log's origin: a C2SP checkpoint. ``None``: the former, dstrail-only form."""

    @property
    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        if self.origin is None:
            return checkpoint_message(self.tree_size, self.root_hash, self.timestamp_ms)
        return self.statement().text().encode()

    def statement(self) -> Checkpoint:
        """What a C2SP checkpoint says: origin, size, root (``InvalidInput`` for one of the
        former form, which has no origin)."""
        if self.origin is None:
            raise InvalidInput(f"checkpoint {self.tree_size}: signed before C2SP, no origin")
        return Checkpoint(self.origin, self.tree_size, self.root_hash)

    def note(self, cosignatures: Sequence[NoteSignature] = ()) -> Note:
        """The checkpoint as a C2SP signed note: the log's signature, then ``cosignatures``."""
        statement = self.statement()
        own = NoteSignature(statement.origin, bytes.fromhex(self.key_id), self.signature)
        return Note(statement.text(), (own, *cosignatures))


def checkpoint_message(tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return f"{MESSAGE_HEADER}\n{tree_size}\n{root_hash.hex()}\n{timestamp_ms}\n".encode()


class CheckpointSigner(Protocol):
    """Signs checkpoints (``dstrail.audit.checkpoints.Ed25519CheckpointSigner``)."""

    @property
    def key_id(self) -> str:
        """The note key id of the key under the origin (4 bytes, hex)."""
        ...

    @property
    def origin(self) -> str:
        """The log's origin, the first line of its checkpoints and its key name."""
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

    def due(self, *, size: int, now_ms: int, last_ms: int) -> bool:
        """Whether the append that makes the tree ``size`` leaves signs a checkpoint."""
        return size % self.every_events == 0 or now_ms - last_ms >= self.every_ms

    def sign(self, *, tree_size: int, root_hash: bytes, now_ms: int) -> CheckpointRecord:
        """A checkpoint of this tree, signed now."""
        return CheckpointRecord(
            tree_size=tree_size,
            root_hash=root_hash,
            timestamp_ms=now_ms,
            key_id=self.signer.key_id,
            signature=self.signer.sign(
                tree_size=tree_size, root_hash=root_hash, timestamp_ms=now_ms
            ),
            origin=self.signer.origin,
        )


def checkpoint_document(record: CheckpointRecord) -> dict[str, Any]:
    """The JSON form of a checkpoint."""
    document: dict[str, Any] = {
        "treeSize": record.tree_size,
        "rootHash": record.root_hash.hex(),
        "timestamp": format_ms(record.timestamp_ms),
        "timestampMs": record.timestamp_ms,
        "keyId": record.key_id,
        "algorithm": ALGORITHM,
        "signature": base64.b64encode(record.signature).decode(),
    }
    if record.origin is not None:
        document["origin"] = record.origin
        document["note"] = record.note().encode()
    return document


def checkpoint_from_document(document: Any) -> CheckpointRecord:
    """The inverse of ``checkpoint_document``; ``InvalidInput`` naming what is wrong."""
    if not isinstance(document, dict):
        raise InvalidInput("checkpoint: expected a JSON object")
    try:
        return CheckpointRecord(
            tree_size=int(document["treeSize"]),
            root_hash=bytes.fromhex(str(document["rootHash"])),
            timestamp_ms=int(document["timestampMs"]),
            key_id=str(document["keyId"]),
            signature=base64.b64decode(str(document["signature"]), validate=True),
            origin=str(document["origin"]) if document.get("origin") is not None else None,
        )
    except (KeyError, ValueError, TypeError, binascii.Error) as error:
        raise InvalidInput(
            f"checkpoint: not accepted ({error.__class__.__name__}: {error}); accepted: "
            "treeSize, rootHash (hex), timestampMs, keyId, signature (base64), origin"
        ) from None
