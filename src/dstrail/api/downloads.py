"""The trail's files, one definition for the audit API and the console: formats, file names,
Domino's six-month window, and streaming as an attachment, each read recorded
(``AuditTrailRead``, ``dstrail.services.trail_reads``)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from dstrail.audit.query import iter_chunks
from dstrail.audit.serialize import (
    ExportShape,
    metadata_keys,
    stream_csv,
    stream_json_array,
    stream_json_lines,
    stream_text,
)
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.errors import InvalidInput
from dstrail.services.names import ExportNames
from dstrail.services.trail_reads import StreamedRead, TrailReader, filter_document

SIX_MONTHS_MS = 183 * DAY_MS
"""Domino's download window: the last six months."""

EXPORT_FORMATS = ("csv", "jsonl")


class RecordedStream(StreamingResponse):
    """A streamed read of the trail: ``read`` records it as its last event is sent, or, when
    the response stops early (the client went away, or reading failed), with the events sent
    by then (``StreamedRead.cut``)."""

    def __init__(
        self,
        body: Iterator[bytes],
        read: StreamedRead,
        *,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(body, media_type=media_type, headers=headers)
        self.read = read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.read.recorded:
                with anyio.CancelScope(shield=True):  # a disconnect cancels the response's task
                    await run_in_threadpool(self.read.cut)


def streamed(
    body: Iterator[bytes], read: StreamedRead, media_type: str, *, filename: str | None = None
) -> StreamingResponse:
    """A streamed, uncached, recorded read (``body`` made of ``read.rows``); an attachment
    named ``filename`` when given."""
    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return RecordedStream(body, read, media_type=media_type, headers=headers)


def export_shape(
    reader: TrailReader, audit_filter: AuditFilter, *, file_format: str, metadata_columns: bool
) -> ExportShape:
    """What the export adds to the stored fields: ``seq``, the name columns (``NAME_COLUMNS``)
    and, when asked, one column per metadata key. A CSV's header must name every key before
    the first row, so its keys come from a first pass over the same filter."""
    keys: tuple[str, ...] | None = None
    if metadata_columns:
        keys = (
            metadata_keys(iter_chunks(reader.store, audit_filter)) if file_format == "csv" else ()
        )
    return ExportShape(added=ExportNames(reader.store), metadata_keys=keys)


def filtered_export(
    reader: TrailReader,
    audit_filter: AuditFilter,
    *,
    file_format: str,
    metadata_columns: bool = False,
) -> StreamingResponse:
    """Exactly ``audit_filter``'s events as CSV (formula-like cells neutralised) or JSON lines,
    each with its ``seq`` and the names of its ids (``export_shape``)."""
    if file_format not in EXPORT_FORMATS:
        raise InvalidInput(
            f"format: {file_format!r} is not accepted; accepted: {', '.join(EXPORT_FORMATS)}"
        )
    shape = export_shape(
        reader, audit_filter, file_format=file_format, metadata_columns=metadata_columns
    )
    detail = {"format": file_format}
    if metadata_columns:
        detail["metadataColumns"] = "true"
    read = reader.streamed(filter_document(audit_filter), detail=detail)
    chunks = read.rows(iter_chunks(reader.store, audit_filter))
    stamp = format_ms(reader.clock())[:19].replace(":", "")
    if file_format == "csv":
        return streamed(
            stream_csv(chunks, shape=shape), read, "text/csv; charset=utf-8",
            filename=f"dstrail-audit-{stamp}.csv",
        )  # fmt: skip
    return streamed(
        stream_json_lines(chunks, shape=shape), read, "application/x-ndjson",
        filename=f"dstrail-audit-{stamp}.jsonl",
    )  # fmt: skip


def six_month_file(reader: TrailReader, *, as_json: bool) -> StreamingResponse:
    """Domino's download: the last six months of its seven kinds, as JSON or readable text."""
    now_ms = reader.clock()
    audit_filter = AuditFilter(start_ms=now_ms - SIX_MONTHS_MS, end_ms=now_ms)
    read = reader.streamed(
        filter_document(audit_filter), detail={"format": "json" if as_json else "text"}
    )
    chunks = read.rows(iter_chunks(reader.store, audit_filter))
    stamp = format_ms(now_ms)[:10]
    if as_json:
        return streamed(
            stream_json_array(chunks), read, "application/json",
            filename=f"datasource-audit-{stamp}.json",
        )  # fmt: skip
    return streamed(
        stream_text(chunks), read, "text/plain; charset=utf-8",
        filename=f"datasource-audit-{stamp}.txt",
    )  # fmt: skip
