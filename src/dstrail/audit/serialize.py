"""Turning stored event rows into Domino's JSON shape, CSV and readable text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from dstrail.domain.timestamps import format_ms
from dstrail.store import EventRow

API_FIELDS = (
    "dataSourceId",
    "dataSourceName",
    "dataSourceType",
    "eventKind",
    "metadata",
    "performedBy",
    "timestamp",
)


def event_document(row: EventRow) -> dict[str, Any]:
    """The seven API fields; metadata passes through as stored JSON text."""
    return {
        "dataSourceId": row[0],
        "dataSourceName": row[1],
        "dataSourceType": row[2],
        "eventKind": row[3],
        "metadata": orjson.Fragment(row[4]),
        "performedBy": row[5],
        "timestamp": format_ms(row[6]),
    }


def json_array(rows: Iterable[EventRow]) -> bytes:
    """A JSON array of the rows' documents, in one ``orjson`` call.

    The hot path of the audit API: ``event_document`` inlined (no call a row), metadata
    passed through as stored text, timestamps from the table-driven ``format_ms``.
    """
    fragment = orjson.Fragment
    timestamp = format_ms
    return orjson.dumps(
        [
            {
                "dataSourceId": row[0],
                "dataSourceName": row[1],
                "dataSourceType": row[2],
                "eventKind": row[3],
                "metadata": fragment(row[4]),
                "performedBy": row[5],
                "timestamp": timestamp(row[6]),
            }
            for row in rows
        ]
    )


def json_array_body(rows: Iterable[EventRow]) -> bytes:
    """Comma-joined JSON objects (no brackets) for a chunk of rows."""
    return json_array(rows)[1:-1]


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
            yield b"\n".join(orjson.dumps(event_document(row)) for row in chunk) + b"\n"


CSV_COLUMNS = (
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
        for row in chunk:
            metadata = orjson.loads(row[4])
            writer.writerow(
                [
                    csv_safe(cell)
                    for cell in (
                        format_ms(row[6]),
                        row[3],
                        row[1],
                        row[0],
                        row[2],
                        row[5],
                        str(metadata.get("performedByUsername", "")),
                        orjson.dumps(metadata).decode(),
                    )
                ]
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def text_line(row: EventRow) -> str:
    """One readable line: when, what, which data source, who, and the details."""
    metadata: dict[str, str] = orjson.loads(row[4])
    who = metadata.pop("performedByUsername", "")
    details = " ".join(f"{key}={value}" for key, value in metadata.items())
    return (
        f"{format_ms(row[6])} {row[3]} dataSource={row[1]} ({row[2]}, {row[0]}) "
        f"by={who} ({row[5]}){' ' + details if details else ''}"
    )


def stream_text(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """One readable line an event."""
    for chunk in chunks:
        if chunk:
            yield ("\n".join(text_line(row) for row in chunk) + "\n").encode()
