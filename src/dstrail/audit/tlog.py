"""The trail as a C2SP transparency log: its latest checkpoint as a signed note, with the
cosignatures its witnesses returned (``GET /api/dstrail/v1/tlog/checkpoint``)."""

from __future__ import annotations

from dstrail.errors import NotFound
from dstrail.store import Repositories


def checkpoint_note(tx: Repositories) -> str:
    """The latest C2SP checkpoint (one with an origin) and its stored cosignatures, as a
    signed note; ``NotFound`` before the first one."""
    record = tx.integrity.latest_note_checkpoint()
    if record is None:
        raise NotFound(
            "no C2SP checkpoint yet: the next events appended are checkpointed in that form "
            "(checkpoints signed before are in /api/datasource/v1/audit/integrity)"
        )
    return record.note(tx.transparency.cosignatures_of(record.tree_size)).encode()
