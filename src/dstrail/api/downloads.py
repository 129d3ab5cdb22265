"""The trail's files, one definition for the audit API and the console: formats, file names,
Domino's six-month window, and streaming as an attachment."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from dstrail.audit.query import iter_chunks
from dstrail.audit.serialize import stream_csv, stream_json_array, stream_json_lines, stream_text
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.errors import InvalidInput
from dstrail.store import Store

SIX_MONTHS_MS = 183 * DAY_MS
"""Domino's download window: the last six months."""

EXPORT_FORMATS = ("csv", "jsonl")


def streamed(
    body: Iterator[bytes], media_type: str, *, filename: str | None = None
) -> StreamingResponse:
    """A streamed, uncached response; an attachment named ``filename`` when given."""
    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(body, media_type=media_type, headers=headers)


def filtered_export(
    store: Store, audit_filter: AuditFilter, *, file_format: str, now_ms: int
) -> StreamingResponse:
    """Exactly ``audit_filter``'s events as CSV (formula-like cells neutralised) or JSON lines."""
    chunks = iter_chunks(store, audit_filter)
    stamp = format_ms(now_ms)[:19].replace(":", "")
    if file_format == "csv":
        return streamed(
            stream_csv(chunks), "text/csv; charset=utf-8", filename=f"dstrail-audit-{stamp}.csv"
        )
    if file_format == "jsonl":
        return streamed(
            stream_json_lines(chunks),
            "application/x-ndjson",
            filename=f"dstrail-audit-{stamp}.jsonl",
        )
    raise InvalidInput(
        f"format: {file_format!r} is not accepted; accepted: {', '.join(EXPORT_FORMATS)}"
    )


def six_month_file(store: Store, *, as_json: bool, now_ms: int) -> StreamingResponse:
    """Domino's download: the last six months of its seven kinds, as JSON or readable text."""
    chunks = iter_chunks(store, AuditFilter(start_ms=now_ms - SIX_MONTHS_MS, end_ms=now_ms))
    stamp = format_ms(now_ms)[:10]
    if as_json:
        return streamed(
            stream_json_array(chunks), "application/json", filename=f"datasource-audit-{stamp}.json"
        )
    return streamed(
        stream_text(chunks), "text/plain; charset=utf-8", filename=f"datasource-audit-{stamp}.txt"
    )
