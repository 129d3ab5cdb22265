"""``native``: the event as the audit API returns it (Domino's seven fields), with what a
receiver needs to prove it later: ``seq``, ``leafHash`` (hex) and, once a signed checkpoint
covers the event, ``checkpoint {treeSize, rootHash}`` (hex). One JSON object per record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from dstrail.domain.streams import StreamRecord
from dstrail.domain.trail import EVENT_COLUMNS, CheckpointRecord, SealedRow, event_documents
from dstrail.streaming.formats import event_id

assert EVENT_COLUMNS[6:8] == ("ts_ms", "seq"), "a SealedRow: 8 event columns, then 4 more"


def encode(rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None) -> list[StreamRecord]:
    """One native record per row."""
    documents = event_documents(row[:8] for row in rows)
    records = []
    for row, document in zip(rows, documents, strict=True):
        ts_ms, seq, leaf = row[6], row[7], row[11]
        body: dict[str, Any] = {**document, "seq": seq, "leafHash": leaf.hex() if leaf else None}
        if checkpoint is not None and checkpoint.tree_size >= seq:
            body["checkpoint"] = {
                "treeSize": checkpoint.tree_size,
                "rootHash": checkpoint.root_hash.hex(),
            }
        records.append(
            StreamRecord(
                seq=seq,
                event_id=event_id(leaf, seq),
                timestamp_ms=ts_ms,
                body=orjson.dumps(body),
            )
        )
    return records
