"""The trail's outputs built on the event document: Domino's JSON shape (one array or JSON
lines), CSV and readable text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Final

import orjson

from dstrail.domain.trail import METADATA, EventRow, event_documents


def json_array(rows: Iterable[EventRow]) -> bytes:
    """A JSON array of the rows' documents, in one ``orjson`` call (the audit API's hot path:
    metadata passes through as stored text)."""
    return orjson.dumps(event_documents(rows))


def stream_json_array(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """A bare JSON array, produced chunk by chunk; the opening bracket rides on the first
    chunk (each piece is a thread hop and a write under Starlette)."""
    opening = b"["
    for chunk in chunks:
        if not chunk:
            continue
        # One copy of the chunk's bytes (big fresh buffers cost page faults), not two.
        yield opening + memoryview(json_array(chunk))[1:-1]
        opening = b","
    yield b"[]" if opening == b"[" else b"]"


def stream_json_lines(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """One JSON object a line."""
    for chunk in chunks:
        if chunk:
            yield b"\n".join(orjson.dumps(document) for document in event_documents(chunk)) + b"\n"


CSV_COLUMNS: Final = (
    "timestamp",
    "eventKind",
    "dataSourceName",
    "dataSourceId",
    "dataSourceType",
    "performedBy",
    "performedByUsername",
    "metadata",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run: a leading formula character is quoted away."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def stream_csv(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """A header, then one row an event; formula-like cells are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for chunk in chunks:
        for row, document in zip(chunk, event_documents(chunk), strict=True):
            metadata = orjson.loads(row[METADATA])
            document.update(
                metadata=orjson.dumps(metadata).decode(),
                performedByUsername=str(metadata.get("performedByUsername", "")),
            )
            writer.writerow([csv_safe(document[column]) for column in CSV_COLUMNS])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def text_lines(rows: list[EventRow]) -> Iterator[str]:
    """One readable line an event: when, what, which data source, who, and the details."""
    for row, document in zip(rows, event_documents(rows), strict=True):
        metadata: dict[str, str] = orjson.loads(row[METADATA])
        who = metadata.pop("performedByUsername", "")
        details = " ".join(f"{key}={value}" for key, value in metadata.items())
        yield (
            f"{document['timestamp']} {document['eventKind']} "
            f"dataSource={document['dataSourceName']} ({document['dataSourceType']}, "
            f"{document['dataSourceId']}) by={who} ({document['performedBy']})"
            f"{' ' + details if details else ''}"
        )


def stream_text(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """One readable line an event."""
    for chunk in chunks:
        if chunk:
            yield ("\n".join(text_lines(chunk)) + "\n").encode()
