"""The canonical encoding of an event: the bytes its Merkle leaf hashes, and the columns an
appended event is stored with.

Canonical bytes: the event's seven document fields (``event_document``) with its metadata as
a JSON object, plus ``seq`` (the dense sequence number) and ``timestampMs`` (the same instant in epoch
milliseconds), as UTF-8 JSON with no whitespace and object keys sorted by code point at every
level (orjson ``OPT_SORT_KEYS``). See docs/integrity.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail.event import EventRow, NewAuditEvent, StoredEvent
from dstrail.domain.trail.merkle import leaf_hash

ENCODING_VERSION: Final = "dstrail-event/v1"


def canonical_event(
    row: EventRow, *, metadata: Mapping[str, Any] | None = None, seq: int | None = None
) -> bytes:
    """The canonical bytes of a stored row. ``metadata``: the row's metadata already parsed
    (else it is parsed from the row); ``seq``: another sequence number than the row's (to
    ask whether a row moved).

    Hot (verification hashes every row): one dict literal, in the canonical key order, rather
    than ``event_document`` completed (which costs ~20 % more a row); a test holds it to the
    document's seven fields.
    """
    data_source_id, name, data_source_type, kind, stored_metadata, by, ts_ms, row_seq = row
    return orjson.dumps(
        {
            "dataSourceId": data_source_id,
            "dataSourceName": name,
            "dataSourceType": data_source_type,
            "eventKind": kind,
            "metadata": orjson.loads(stored_metadata) if metadata is None else metadata,
            "performedBy": by,
            "seq": row_seq if seq is None else seq,
            "timestamp": format_ms(ts_ms),
            "timestampMs": ts_ms,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def event_leaf(
    row: EventRow, *, metadata: Mapping[str, Any] | None = None, seq: int | None = None
) -> bytes:
    """The Merkle leaf hash of a stored row: ``SHA-256(0x00 || canonical bytes)``."""
    return leaf_hash(canonical_event(row, metadata=metadata, seq=seq))


def stored_columns(seq: int, event: NewAuditEvent) -> dict[str, Any]:
    """The ``audit_events`` columns of ``event`` appended as number ``seq``, its leaf hash
    included (``subtree_hashes`` is the tree's, added by the store)."""
    metadata = event.stored_metadata()
    row = StoredEvent(
        data_source_id=event.data_source_id,
        data_source_name=event.data_source_name,
        data_source_type=event.data_source_type,
        event_kind=event.event_kind.value,
        metadata=orjson.dumps(metadata).decode(),
        performed_by=event.performed_by,
        ts_ms=event.timestamp_ms,
        seq=seq,
    )
    return {
        **row._asdict(),
        "performed_by_username": event.performed_by_username,
        "run_id": event.run_id,
        "project_id": event.project_id,
        "leaf_hash": event_leaf(row, metadata=metadata),
    }
