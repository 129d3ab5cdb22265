"""The canonical encoding of an event: the bytes its Merkle leaf hashes.

UTF-8 JSON, no whitespace, object keys sorted by code point at every level (orjson
``OPT_SORT_KEYS``), with exactly these keys: the seven fields the audit API returns
(``dataSourceId``, ``dataSourceName``, ``dataSourceType``, ``eventKind``, ``metadata`` (a string
map), ``performedBy``, ``timestamp`` as the API writes it), plus ``seq`` (the dense sequence
number) and ``timestampMs`` (the same instant in epoch milliseconds). See docs/integrity.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dstrail.audit.merkle import leaf_hash
from dstrail.domain.timestamps import format_ms, parse_iso

ENCODING_VERSION = "dstrail-event/v1"


def canonical_event(
    *,
    seq: int,
    data_source_id: str,
    data_source_name: str,
    data_source_type: str,
    event_kind: str,
    metadata: Mapping[str, Any],
    performed_by: str,
    timestamp_ms: int,
) -> bytes:
    """The canonical bytes of one event."""
    return orjson.dumps(
        {
            "dataSourceId": data_source_id,
            "dataSourceName": data_source_name,
            "dataSourceType": data_source_type,
            "eventKind": event_kind,
            "metadata": metadata,
            "performedBy": performed_by,
            "seq": seq,
            "timestamp": format_ms(timestamp_ms),
            "timestampMs": timestamp_ms,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def event_leaf(
    *,
    seq: int,
    data_source_id: str,
    data_source_name: str,
    data_source_type: str,
    event_kind: str,
    metadata: Mapping[str, Any],
    performed_by: str,
    timestamp_ms: int,
) -> bytes:
    """The Merkle leaf hash of one event: ``SHA-256(0x00 || canonical bytes)``."""
    return leaf_hash(
        canonical_event(
            seq=seq,
            data_source_id=data_source_id,
            data_source_name=data_source_name,
            data_source_type=data_source_type,
            event_kind=event_kind,
            metadata=metadata,
            performed_by=performed_by,
            timestamp_ms=timestamp_ms,
        )
    )


def row_leaf(row: tuple[str, str, str, str, str, str, int, int], seq: int | None = None) -> bytes:
    """The leaf of a stored row (``EventRow`` order: dataSourceId, name, type, kind, metadata
    JSON, performedBy, timestamp ms, seq); ``seq`` overrides the row's own sequence number."""
    return event_leaf(
        seq=row[7] if seq is None else seq,
        data_source_id=row[0],
        data_source_name=row[1],
        data_source_type=row[2],
        event_kind=row[3],
        metadata=orjson.loads(row[4]),
        performed_by=row[5],
        timestamp_ms=row[6],
    )


def document_leaf(document: Mapping[str, Any], seq: int) -> bytes:
    """The leaf of an event as the API returns it (the seven fields), given its ``seq``;
    ``InvalidInput`` when its timestamp does not parse."""
    timestamp_ms = parse_iso(str(document["timestamp"]), field="timestamp")
    return event_leaf(
        seq=seq,
        data_source_id=document["dataSourceId"],
        data_source_name=document["dataSourceName"],
        data_source_type=document["dataSourceType"],
        event_kind=document["eventKind"],
        metadata=document["metadata"],
        performed_by=document["performedBy"],
        timestamp_ms=timestamp_ms,
    )
