"""C2SP transparency state: the witnesses this log submits its checkpoints to, the
cosignatures they returned, and (when this instance witnesses for others) the latest
checkpoint of each log it cosigned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dstrail.domain.trail.note import NoteSignature
from dstrail.errors import Conflict
from dstrail.store.schema import audit_cosignatures, audit_witnesses, witnessed_logs

_W = audit_witnesses.c
_C = audit_cosignatures.c
_L = witnessed_logs.c


@dataclass(frozen=True, slots=True)
class WitnessRow:
    """A witness as configured, and how submitting to it last went."""

    name: str
    vkey: str
    url: str
    added_at_ms: int
    added_by: str
    cosigned_size: int
    last_error: str
    last_attempt_ms: int | None


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    """A log this instance witnesses: its vkey and the latest checkpoint cosigned for it."""

    origin: str
    vkey: str
    tree_size: int
    root_hash: bytes | None
    checkpoint: str | None
    updated_at_ms: int | None


def _witness(row: Sequence[Any]) -> WitnessRow:
    name, vkey, url, added_at, added_by, size, error, attempt = row
    return WitnessRow(name, vkey, url, int(added_at), added_by, int(size), error, attempt)


class TransparencyRepository:
    """Reads and writes witnesses, cosignatures and witnessed logs."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # -- cosignatures of this log's checkpoints ------------------------------------------------

    def cosignatures_of(self, tree_size: int) -> list[NoteSignature]:
        """The cosignatures stored for the checkpoint of ``tree_size``, by witness name."""
        rows = self._db.execute(
            select(_C.witness, _C.key_id, _C.signature)
            .where(_C.tree_size == tree_size)
            .order_by(_C.witness, _C.key_id)
        )
        return [NoteSignature(name, bytes.fromhex(key), bytes(sig)) for name, key, sig in rows]

    def add_cosignature(self, tree_size: int, signature: NoteSignature, timestamp: int) -> None:
        """Keep a witness's cosignature of a checkpoint (once per witness key: another process
        storing the same one at the same time is no error)."""
        try:
            with self._db.begin_nested():
                self._db.execute(insert(audit_cosignatures).values(
                    tree_size=tree_size, witness=signature.name, key_id=signature.key_id.hex(),
                    timestamp=timestamp, signature=signature.signature,
                ))  # fmt: skip
        except IntegrityError:
            pass  # stored already (by this witness key for this checkpoint)

    def cosigned_sizes(self, *, at_least: int) -> tuple[int | None, int | None]:
        """The smallest and the largest tree size of at least ``at_least`` events whose
        checkpoint a witness cosigned (``None``, ``None``: none)."""
        smallest, largest = self._db.execute(
            select(func.min(_C.tree_size), func.max(_C.tree_size)).where(_C.tree_size >= at_least)
        ).one()
        return smallest, largest

    # -- the witnesses this log asks -----------------------------------------------------------

    def witnesses(self) -> list[WitnessRow]:
        """Every configured witness, by name."""
        rows = self._db.execute(
            select(_W.name, _W.vkey, _W.url, _W.added_at, _W.added_by, _W.cosigned_size,
                   _W.last_error, _W.last_attempt_at).order_by(_W.name)
        )  # fmt: skip
        return [_witness(row) for row in rows]

    def add_witness(self, *, name: str, vkey: str, url: str, now_ms: int, actor_id: str) -> None:
        """Configure a witness; ``Conflict`` when one has that name."""
        try:
            with self._db.begin_nested():
                self._db.execute(insert(audit_witnesses).values(
                    name=name, vkey=vkey, url=url, added_at=now_ms, added_by=actor_id,
                    cosigned_size=0, last_error="",
                ))  # fmt: skip
        except IntegrityError:
            raise Conflict(f"a witness is already named {name!r}") from None

    def remove_witness(self, name: str) -> bool:
        """Forget a witness (its cosignatures stay); whether there was one."""
        return self._db.execute(delete(audit_witnesses).where(_W.name == name)).rowcount == 1

    def note_submission(
        self, name: str, *, cosigned_size: int | None, error: str, now_ms: int
    ) -> None:
        """How a submission to a witness went: its new size, or why it failed."""
        values: dict[str, Any] = {"last_error": error[:1000], "last_attempt_at": now_ms}
        if cosigned_size is not None:
            values["cosigned_size"] = cosigned_size
        self._db.execute(update(audit_witnesses).where(_W.name == name).values(**values))

    # -- the logs this instance witnesses ------------------------------------------------------

    def witnessed(self, origin: str, *, for_update: bool = False) -> WitnessedLog | None:
        """A log this instance witnesses, by origin."""
        query = select(
            _L.origin, _L.vkey, _L.tree_size, _L.root_hash, _L.checkpoint, _L.updated_at
        ).where(_L.origin == origin)
        row = self._db.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            return None
        origin_, vkey, size, root, text, updated = row
        return WitnessedLog(
            origin_, vkey, int(size), bytes(root) if root is not None else None, text, updated
        )

    def witnessed_logs(self) -> list[WitnessedLog]:
        """Every log this instance witnesses, by origin."""
        origins = self._db.execute(select(_L.origin).order_by(_L.origin)).scalars().all()
        return [log for origin in origins if (log := self.witnessed(origin)) is not None]

    def add_witnessed(self, *, origin: str, vkey: str) -> None:
        """Start witnessing a log; ``Conflict`` when it is witnessed already."""
        try:
            with self._db.begin_nested():
                self._db.execute(insert(witnessed_logs).values(origin=origin, vkey=vkey))
        except IntegrityError:
            raise Conflict(f"the log {origin!r} is witnessed already") from None

    def set_witnessed(
        self, origin: str, *, tree_size: int, root_hash: bytes, checkpoint: str, now_ms: int
    ) -> None:
        """The latest checkpoint cosigned for a log (the caller holds its row lock)."""
        self._db.execute(update(witnessed_logs).where(_L.origin == origin).values(
            tree_size=tree_size, root_hash=root_hash, checkpoint=checkpoint, updated_at=now_ms,
        ))  # fmt: skip
