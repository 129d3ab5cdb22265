"""The trail event as Domino's audit API returns it: seven fields, in one definition.

``event_documents`` is the one mapping from a stored row to the document and
``row_of_document`` its inverse; every output (the audit API, downloads, CSV, text, bundles,
the console) builds on them. The canonical leaf bytes (``encoding``) hold the same seven
fields in one literal of their own, for speed; a test holds the two together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from dstrail.domain.timestamps import format_ms, parse_iso
from dstrail.domain.trail.event import EventRow, StoredEvent
from dstrail.errors import InvalidInput

API_FIELDS: Final = (
    "dataSourceId",
    "dataSourceName",
    "dataSourceType",
    "eventKind",
    "metadata",
    "performedBy",
    "timestamp",
)
"""The seven fields of an event document, in ``EVENT_COLUMNS`` order (the sequence number
is not one of them)."""


def event_documents(rows: Iterable[EventRow]) -> list[dict[str, Any]]:
    """The document of each row; metadata passes through as the stored JSON text.

    Hot: the audit API makes every row it returns here. Unpacking a row by name in the
    comprehension is the fastest way to read it, and the timestamp comes from the
    table-driven ``format_ms``.
    """
    fragment = orjson.Fragment
    timestamp = format_ms
    return [
        {
            "dataSourceId": data_source_id,
            "dataSourceName": data_source_name,
            "dataSourceType": data_source_type,
            "eventKind": event_kind,
            "metadata": fragment(metadata),
            "performedBy": performed_by,
            "timestamp": timestamp(ts_ms),
        }
        for (
            data_source_id,
            data_source_name,
            data_source_type,
            event_kind,
            metadata,
            performed_by,
            ts_ms,
            _seq,
        ) in rows
    ]


def event_document(row: EventRow) -> dict[str, Any]:
    """The document of one row (``event_documents`` of it)."""
    return event_documents((row,))[0]


def row_of_document(document: Mapping[str, Any], seq: int) -> EventRow:
    """The stored row of a document (as the API returned it) that had sequence number
    ``seq``; ``InvalidInput`` naming what is missing or does not parse."""
    try:
        values = {
            column: document[name]
            for column, name in zip(StoredEvent._fields[: len(API_FIELDS)], API_FIELDS, strict=True)
        }
    except (KeyError, TypeError) as error:
        raise InvalidInput(f"event: missing {error}; accepted: {', '.join(API_FIELDS)}") from None
    values["metadata"] = orjson.dumps(values["metadata"]).decode()
    values["ts_ms"] = parse_iso(str(values["ts_ms"]), field="timestamp")
    return StoredEvent(**values, seq=seq)
