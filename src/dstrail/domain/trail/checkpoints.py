"""Checkpoint values: what a checkpoint states, the exact bytes its signature covers, when
appends sign one, and its JSON form. Keys and signing live in ``dstrail.audit.checkpoints``.

The signed message is text, one field a line (see docs/integrity.md)::

    dstrail-audit-checkpoint/v1
    <tree size>
    <root hash, 64 lowercase hex>
    <timestamp, epoch milliseconds>
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final, Protocol

from dstrail.domain.timestamps import format_ms
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

    @property
    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        return checkpoint_message(self.tree_size, self.root_hash, self.timestamp_ms)


def checkpoint_message(tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return f"{MESSAGE_HEADER}\n{tree_size}\n{root_hash.hex()}\n{timestamp_ms}\n".encode()


class CheckpointSigner(Protocol):
    """Signs checkpoints (``dstrail.audit.checkpoints.Ed25519CheckpointSigner``)."""

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
        )


def checkpoint_document(record: CheckpointRecord) -> dict[str, Any]:
    """The JSON form of a checkpoint."""
    return {
        "treeSize": record.tree_size,
        "rootHash": record.root_hash.hex(),
        "timestamp": format_ms(record.timestamp_ms),
        "timestampMs": record.timestamp_ms,
        "keyId": record.key_id,
        "algorithm": ALGORITHM,
        "signature": base64.b64encode(record.signature).decode(),
    }


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
        )
    except (KeyError, ValueError, TypeError, binascii.Error) as error:
        raise InvalidInput(
            f"checkpoint: not accepted ({error.__class__.__name__}: {error}); accepted: "
            "treeSize, rootHash (hex), timestampMs, keyId, signature (base64)"
        ) from None
