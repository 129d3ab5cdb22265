"""``native``: the event as the audit API returns it (Domino's seven fields), with what a
receiver needs to prove it later: ``seq``, ``leafHash`` (hex) and, once a signed checkpoint
covers the event, ``checkpoint {treeSize, rootHash}`` (hex), with its ``origin`` when it is a
C2SP checkpoint. One JSON object per record."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from dstrail.domain.streams import StreamRecord
from dstrail.domain.trail import (
    EVENT_COLUMNS,
    LEAF_HASH,
    SEQ,
    TS_MS,
    CheckpointRecord,
    SealedRow,
    event_documents,
)
from dstrail.streaming.formats import event_id

assert EVENT_COLUMNS[6:8] == ("ts_ms", "seq"), "a SealedRow: 8 event columns, then 4 more"


def encode(rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None) -> list[StreamRecord]:
    """One native record per row.

    Hot (a drain makes every record here): each API document gets its three fields added in
    place, and the checkpoint is serialised once for the batch."""
    dumps = orjson.dumps
    covered_up_to = checkpoint.tree_size if checkpoint is not None else 0
    cited = (
        orjson.Fragment(
            dumps(
                {"treeSize": checkpoint.tree_size, "rootHash": checkpoint.root_hash.hex()}
                | ({"origin": checkpoint.origin} if checkpoint.origin else {})
            )
        )
        if checkpoint is not None
        else None
    )
    documents = event_documents(row[:8] for row in rows)
    records = []
    for row, document in zip(rows, documents, strict=True):
        ts_ms, seq, leaf = row[TS_MS], row[SEQ], row[LEAF_HASH]
        uid = event_id(leaf, seq)
        document["seq"] = seq
        document["leafHash"] = uid if leaf is not None else None
        if cited is not None and covered_up_to >= seq:
            document["checkpoint"] = cited
        records.append(StreamRecord(seq, uid, ts_ms, dumps(document)))
    return records
