"""The trail's outputs built on the event document: Domino's JSON shape (one array or JSON
lines), CSV and readable text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from dstrail.domain.trail import METADATA, SEQ, EventRow, event_documents


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


class ChunkColumns(Protocol):
    """Columns an export adds after the stored fields, computed a chunk at a time (names
    looked up for the ids the chunk's metadata holds)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The added columns, in order."""
        ...

    def values(
        self, chunk: list[EventRow], metadata: list[dict[str, str]]
    ) -> list[Mapping[str, str]]:
        """One map of ``columns`` to values a row of ``chunk`` (``metadata``: each row's,
        parsed)."""
        ...


METADATA_PREFIX: Final = "metadata."
"""The prefix of the one-column-per-metadata-key columns (``metadata.objectKey``)."""


@dataclass(frozen=True, slots=True)
class ExportShape:
    """What an export (the console's files and ``GET /api/datasource/v1/audit/export``) adds
    to the stored fields, always after them: ``seq``, then ``added``'s columns, then, when
    ``metadata_keys`` is given, one column per metadata key (``metadata.<key>``; in JSON
    lines each event's own keys, so the list only matters to CSV's header)."""

    added: ChunkColumns | None = None
    metadata_keys: tuple[str, ...] | None = None

    def added_fields(
        self, chunk: list[EventRow], metadata: list[dict[str, str]]
    ) -> list[dict[str, Any]]:
        """The added fields of each row of ``chunk``: ``seq`` and ``added``'s columns."""
        added = self.added.values(chunk, metadata) if self.added else [{}] * len(chunk)
        return [{"seq": row[SEQ], **values} for row, values in zip(chunk, added, strict=True)]


def metadata_keys(chunks: Iterable[list[EventRow]]) -> tuple[str, ...]:
    """Every metadata key of these events but ``performedByUsername`` (a column already),
    sorted: the header of a CSV with one column per key."""
    keys: set[str] = set()
    for chunk in chunks:
        for row in chunk:
            keys.update(orjson.loads(row[METADATA]))
    keys.discard("performedByUsername")
    return tuple(sorted(keys))


def stream_json_lines(
    chunks: Iterable[list[EventRow]], *, shape: ExportShape | None = None
) -> Iterator[bytes]:
    """One JSON object a line: the stored fields, then ``shape``'s when given."""
    for chunk in chunks:
        if not chunk:
            continue
        documents = event_documents(chunk)
        if shape is not None:
            parsed: list[dict[str, str]] = [orjson.loads(row[METADATA]) for row in chunk]
            flatten = shape.metadata_keys is not None
            for document, extra, details in zip(
                documents, shape.added_fields(chunk, parsed), parsed, strict=True
            ):
                document.update(extra)
                if flatten:
                    document.update(
                        (METADATA_PREFIX + key, value)
                        for key, value in details.items()
                        if key != "performedByUsername"
                    )
        yield b"\n".join(orjson.dumps(document) for document in documents) + b"\n"


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


def csv_header(shape: ExportShape | None) -> tuple[str, ...]:
    """The columns of a CSV: the stored fields, then ``shape``'s (see ``ExportShape``)."""
    if shape is None:
        return CSV_COLUMNS
    added = shape.added.columns if shape.added else ()
    keys = tuple(METADATA_PREFIX + key for key in shape.metadata_keys or ())
    return (*CSV_COLUMNS, "seq", *added, *keys)


def stream_csv(
    chunks: Iterable[list[EventRow]], *, shape: ExportShape | None = None
) -> Iterator[bytes]:
    """A header, then one row an event; formula-like cells are neutralised. ``shape``: the
    columns an export adds after the stored ones."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = csv_header(shape)
    writer.writerow(header)
    keys = (shape.metadata_keys or ()) if shape else ()
    added = header[len(CSV_COLUMNS) : len(header) - len(keys)]  # seq and the added columns
    for chunk in chunks:
        parsed: list[dict[str, str]] = [orjson.loads(row[METADATA]) for row in chunk]
        documents = event_documents(chunk)
        extras = shape.added_fields(chunk, parsed) if shape else [{}] * len(chunk)
        for document, metadata, extra in zip(documents, parsed, extras, strict=True):
            document.update(
                metadata=orjson.dumps(metadata).decode(),
                performedByUsername=str(metadata.get("performedByUsername", "")),
            )
            cells = [csv_safe(document[column]) for column in CSV_COLUMNS]
            if shape is not None:
                cells.extend(csv_safe(str(extra.get(column, ""))) for column in added)
                cells.extend(csv_safe(str(metadata.get(key, ""))) for key in keys)
            writer.writerow(cells)
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
