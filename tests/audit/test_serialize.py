"""The audit API's JSON: one array however the rows are chunked, exactly seven fields."""

from __future__ import annotations

import orjson

from dstrail.audit.serialize import json_array, stream_json_array
from dstrail.domain.trail import API_FIELDS, EventRow, event_document


def rows(count: int, start: int = 0) -> list[EventRow]:
    return [
        (
            f"{i:024x}",
            f"ds-{i}",
            "S3Config",
            "AccessDataSource",
            orjson.dumps({"performedByUsername": "alice", "i": str(i)}).decode(),
            "b" * 24,
            1_692_826_821_669 - i,
            10_000 - i,
        )
        for i in range(start, start + count)
    ]


def test_json_array_is_the_documents_of_the_rows() -> None:
    some = rows(3)
    assert orjson.loads(json_array(some)) == [
        orjson.loads(orjson.dumps(event_document(r))) for r in some
    ]
    assert orjson.loads(json_array(some))[0] == {
        "dataSourceId": f"{0:024x}",
        "dataSourceName": "ds-0",
        "dataSourceType": "S3Config",
        "eventKind": "AccessDataSource",
        "metadata": {"performedByUsername": "alice", "i": "0"},
        "performedBy": "b" * 24,
        "timestamp": "2023-08-23T21:40:21.669Z",
    }
    assert list(orjson.loads(json_array(some))[0]) == list(API_FIELDS)
    assert json_array([]) == b"[]"


def test_stream_json_array_is_one_array_for_any_chunking() -> None:
    whole = rows(7)
    for chunking in ([], [whole], [whole[:3], whole[3:]], [whole[:1], [], whole[1:4], whole[4:]]):
        body = b"".join(stream_json_array(chunking))
        assert body == json_array([r for chunk in chunking for r in chunk])
