"""How events are written for a destination, one module each; ``encode`` finds the one of a
destination's format.

Each module exposes ``encode(rows, checkpoint) -> list[StreamRecord]``: one record per event,
in order, each with its ``seq`` and its stable id (``event_id``: the leaf hash, hex).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from dstrail.domain.streams import StreamFormat, StreamRecord
from dstrail.domain.trail import CheckpointRecord, SealedRow


class Encoder(Protocol):
    """``encode`` of a format module."""

    def __call__(
        self, rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None
    ) -> list[StreamRecord]: ...


_MODULES = {
    StreamFormat.NATIVE: "native",
    StreamFormat.OCSF: "ocsf",
    StreamFormat.CEF: "cef",
}


def encode(
    format_: StreamFormat, rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None
) -> list[StreamRecord]:
    """The records of ``rows`` in ``format_``; ``checkpoint``: the newest signed one, which
    covers the events up to its tree size."""
    module = importlib.import_module(f"{__name__}.{_MODULES[format_]}")
    encoder: Encoder = module.encode
    return encoder(rows, checkpoint)


def event_id(leaf_hash: bytes | None, seq: int) -> str:
    """An event's stable id: its leaf hash in hex (the seq, for a row without one)."""
    return leaf_hash.hex() if leaf_hash is not None else f"seq-{seq}"
