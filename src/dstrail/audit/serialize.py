"""The trail's outputs built on the event document: Domino's JSON shape (one array or JSON
lines), CSV and readable text."""

from __future__ import annotations

import csv
import io
import re
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


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROL = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    return _ESCAPES.get(character) or f"\\u{ord(character):04x}"


def escape_text(value: str) -> str:
    """``value`` on one line, its control characters visible and reversible: a backslash is
    doubled, LF, CR and TAB become ``\\n``, ``\\r``, ``\\t``, any other C0 or C1 control
    character (ESC, NUL...), DEL and the Unicode line and paragraph separators ``\\uXXXX``.
    ``unescape_text`` reverses it."""
    return _CONTROL.sub(_escape, value)


_UNESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|(.))")
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def unescape_text(value: str) -> str:
    """The inverse of ``escape_text``."""
    return _UNESCAPE.sub(
        lambda m: chr(int(m.group(1), 16)) if m.group(1) else _UNESCAPES[m.group(2)], value
    )


def text_lines(rows: list[EventRow]) -> Iterator[str]:
    """One readable line an event: when, what, which data source, who, and the details. Every
    value is escaped (``escape_text``), so a value cannot start a line of its own."""
    for row, document in zip(rows, event_documents(rows), strict=True):
        metadata: dict[str, str] = orjson.loads(row[METADATA])
        who = escape_text(metadata.pop("performedByUsername", ""))
        details = " ".join(
            f"{escape_text(key)}={escape_text(value)}" for key, value in metadata.items()
        )
        yield (
            f"{document['timestamp']} {escape_text(document['eventKind'])} "
            f"dataSource={escape_text(document['dataSourceName'])} "
            f"({escape_text(document['dataSourceType'])}, {escape_text(document['dataSourceId'])}) "
            f"by={who} ({escape_text(document['performedBy'])})"
            f"{' ' + details if details else ''}"
        )


def stream_text(chunks: Iterable[list[EventRow]]) -> Iterator[bytes]:
    """One readable line an event."""
    for chunk in chunks:
        if chunk:
            yield ("\n".join(text_lines(chunk)) + "\n").encode()
