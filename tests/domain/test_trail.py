"""The trail event's one home: its columns, its document both ways, its canonical bytes."""

from __future__ import annotations

import orjson
import pytest

from dstrail.domain.trail import (
    API_FIELDS,
    EVENT_COLUMNS,
    SEALED_COLUMNS,
    EventKind,
    NewAuditEvent,
    StoredEvent,
    canonical_event,
    event_document,
    event_documents,
    event_leaf,
    row_of_document,
    stored_columns,
)
from dstrail.domain.trail.merkle import leaf_hash
from dstrail.errors import InvalidInput

NEW = NewAuditEvent(
    event_kind=EventKind.ACCESS_DATA_SOURCE,
    data_source_id="64e67c6005e8b2388f992546",
    data_source_name="s3-ds",
    data_source_type="S3Config",
    performed_by="64e6371105e8b2388f9924d2",
    performed_by_username="sample-user",
    timestamp_ms=1_692_653_405_439,
    metadata={"runId": "64e6632005e8b2388f9924eb", "projectId": "64e6371205e8b2388f9924d4"},
    run_id="64e6632005e8b2388f9924eb",
    project_id="64e6371205e8b2388f9924d4",
)


def stored(seq: int = 42) -> StoredEvent:
    values = stored_columns(seq, NEW)
    return StoredEvent(**{name: values[name] for name in EVENT_COLUMNS})


def test_the_document_maps_each_column_by_name() -> None:
    row = stored()
    document = event_document(row)
    assert {**document, "metadata": None} == {
        "dataSourceId": NEW.data_source_id,
        "dataSourceName": NEW.data_source_name,
        "dataSourceType": NEW.data_source_type,
        "eventKind": "AccessDataSource",
        "metadata": None,
        "performedBy": NEW.performed_by,
        "timestamp": "2023-08-21T21:30:05.439Z",
    }
    assert list(event_document(row)) == list(API_FIELDS)
    assert orjson.loads(orjson.dumps(event_document(row)))["metadata"] == {
        "performedByUsername": "sample-user",
        **NEW.metadata,
    }


def test_row_of_document_is_the_inverse_of_the_document() -> None:
    row = stored(7)
    document = orjson.loads(orjson.dumps(event_documents([row])[0]))
    assert row_of_document(document, 7) == row
    with pytest.raises(InvalidInput, match="timestamp"):
        row_of_document({k: v for k, v in document.items() if k != "timestamp"}, 7)


def test_canonical_bytes_are_the_document_plus_seq_and_milliseconds_sorted() -> None:
    row = stored(9)
    document = orjson.loads(orjson.dumps(event_document(row)))
    expected = {**document, "seq": 9, "timestampMs": NEW.timestamp_ms}
    canonical = canonical_event(row)
    assert orjson.loads(canonical) == expected
    assert canonical == orjson.dumps(expected, option=orjson.OPT_SORT_KEYS)
    assert event_leaf(row) == leaf_hash(canonical)
    assert event_leaf(row, seq=10) != event_leaf(row)


def test_a_new_event_is_stored_with_its_leaf_and_filter_columns() -> None:
    values = stored_columns(3, NEW)
    assert set(values) == set(SEALED_COLUMNS)
    assert values["leaf_hash"] == event_leaf(stored(3))
    assert (values["performed_by_username"], values["run_id"], values["project_id"]) == (
        "sample-user",
        NEW.run_id,
        NEW.project_id,
    )
