"""The audit API (Domino's contract) and the trail's downloads."""

from __future__ import annotations

import itertools
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from dstrail.api.deps import DstrailDep, trail_reader
from dstrail.api.downloads import filtered_export, six_month_file, streamed
from dstrail.api.errors import AUDIT
from dstrail.audit.query import (
    CHUNK_ROWS,
    AuditParameters,
    iter_chunks,
    read_page,
    reject_repeated,
    reject_unknown,
)
from dstrail.audit.serialize import json_array, stream_json_array, stream_json_lines
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.timestamps import format_ms
from dstrail.errors import InvalidInput
from dstrail.services.trail_reads import Surface, TrailReader, filter_document

router = APIRouter(tags=["audit"], responses=AUDIT.responses(400, 401, 403, 503))
"""503: the read could not be recorded (``AuditTrailRead``), so nothing is returned."""

MAX_LIMIT = 10_000
_NO_STORE = {"Cache-Control": "no-store"}
_EVENTS = (
    "a bare JSON array of events (dataSourceId, dataSourceName, dataSourceType, eventKind, "
    "metadata, performedBy, timestamp)"
)
Filters = Annotated[AuditParameters, Query()]
ApiReader = Annotated[TrailReader, Depends(trail_reader(Surface.API))]
ExportReader = Annotated[TrailReader, Depends(trail_reader(Surface.EXPORT))]
DownloadReader = Annotated[TrailReader, Depends(trail_reader(Surface.DOWNLOAD))]


def _audit_filter(
    request: Request, dstrail: DstrailDep, filters: AuditParameters, *others: str
) -> AuditFilter:
    """The filter of ``filters``, once the request names no other parameter than ``others``."""
    given = [key for key, _ in request.query_params.multi_items()]
    reject_unknown(given, (*AuditParameters.names(), *others))
    reject_repeated(given, AuditParameters.single_valued())
    return filters.to_filter(now_ms=dstrail.clock())


@router.get(
    "/api/datasource/v1/audit",
    summary="Data source audit events, newest first (also answered with a trailing slash)",
    response_description=_EVENTS,
)
@router.get(
    "/api/datasource/v1/audit/",
    summary="Data source audit events, newest first",
    response_description=_EVENTS,
)
def read_audit(
    request: Request,
    dstrail: DstrailDep,
    reader: ApiReader,
    filters: Filters,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"extension: at most this many (1-{MAX_LIMIT}), "
            'with a Link rel="next" header when more remain',
        ),
    ] = None,
    cursor: Annotated[str | None, Query(description="extension: from a Link header")] = None,
) -> Response:
    """Domino's ``GET /api/datasource/v1/audit``: window defaults of 24 hours, inclusive.
    Each read is recorded (``AuditTrailRead``); one that cannot be recorded answers 503."""
    audit_filter = _audit_filter(request, dstrail, filters, "limit", "cursor")
    after = Cursor.decode(cursor) if cursor is not None else None
    if limit is None:
        if after is not None:
            raise InvalidInput("cursor: only accepted together with limit")
        asked = filter_document(audit_filter)
        chunks = iter_chunks(dstrail.store, audit_filter)
        first = next(chunks, [])
        if len(first) < CHUNK_ROWS:
            # All of it fits in one chunk: one body with its length, no streaming (each piece
            # of a StreamingResponse is a thread hop and a write).
            reader.record(asked, rows=len(first))
            return Response(json_array(first), media_type="application/json", headers=_NO_STORE)
        read = reader.streamed(asked)
        body = stream_json_array(read.rows(itertools.chain([first], chunks)))
        return streamed(body, read, "application/json")
    with dstrail.store.read() as tx:
        page = read_page(tx, audit_filter, after=after, size=limit)
    reader.record(filter_document(audit_filter, limit=limit, cursor=after), rows=len(page.rows))
    headers = dict(_NO_STORE)
    if page.next is not None:
        headers["Link"] = f'<{_next_url(request, audit_filter, page.next)}>; rel="next"'
    return Response(json_array(page.rows), media_type="application/json", headers=headers)


def _next_url(request: Request, audit_filter: AuditFilter, after: Cursor) -> str:
    """The same query from ``after`` on, its window pinned so later pages do not drift."""
    moving = ("cursor", "startTime", "endTime")
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in moving]
    params.append(("startTime", format_ms(audit_filter.start_ms)))
    params.append(("endTime", format_ms(audit_filter.end_ms)))
    params.append(("cursor", after.encode()))
    return f"{request.url.path}?{urlencode(params)}"


def _files(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a 200 that is a file of one of these types."""
    return {200: {"description": "the file", "content": {t: {} for t in media_types}}}


@router.get(
    "/api/datasource/v1/audit/export",
    summary="The filtered view as a CSV or JSON-lines file",
    response_class=StreamingResponse,
    responses=_files("text/csv", "application/x-ndjson"),
)
def export_audit(
    request: Request,
    dstrail: DstrailDep,
    reader: ExportReader,
    filters: Filters,
    format: Annotated[str, Query(description="csv or jsonl")] = "csv",
    metadata_columns: Annotated[
        str,
        Query(
            alias="metadataColumns",
            description="true: one more column per metadata key (metadata.<key>); default false",
        ),
    ] = "false",
) -> StreamingResponse:
    """Any filtered view, streamed; CSV cells that start like a formula are neutralised.
    After the stored fields each event carries ``seq`` and the names of its ids
    (``projectId``, ``projectName``, ``runId``, ``runLabel``, ``addedUsernames``,
    ``removedUsernames``), then with ``metadataColumns=true`` one column per metadata key."""
    audit_filter = _audit_filter(request, dstrail, filters, "format", "metadataColumns")
    if metadata_columns not in ("true", "false"):
        raise InvalidInput(
            f"metadataColumns: {metadata_columns!r} is not accepted; accepted: true, false"
        )
    return filtered_export(
        reader, audit_filter, file_format=format, metadata_columns=metadata_columns == "true"
    )


@router.get(
    "/v4/datasource/audit/download",
    summary="Domino's six-month download: a text file, or JSON with jsonFile=true",
    response_class=StreamingResponse,
    responses=_files("text/plain", "application/json"),
)
def download_six_months(
    request: Request,
    reader: DownloadReader,
    json_file: Annotated[str, Query(alias="jsonFile", description="true or false")] = "false",
) -> StreamingResponse:
    """The last six months (183 days) of Domino's seven kinds."""
    reject_unknown([key for key, _ in request.query_params.multi_items()], ("jsonFile",))
    if json_file not in ("true", "false"):
        raise InvalidInput(f"jsonFile: {json_file!r} is not accepted; accepted: true, false")
    return six_month_file(reader, as_json=json_file == "true")


@router.get(
    "/v4/datasource/audit/download/runs",
    summary="Every event of the given runs, as JSON lines",
    response_class=StreamingResponse,
    responses=_files("application/x-ndjson"),
)
def download_runs(
    request: Request,
    dstrail: DstrailDep,
    reader: DownloadReader,
    run_ids: Annotated[list[str], Query(alias="runIds")],
) -> StreamingResponse:
    """All events of those runs, whenever they happened (any kind)."""
    reject_unknown([key for key, _ in request.query_params.multi_items()], ("runIds",))
    audit_filter = AuditParameters(run_ids=run_ids, start_time="1970-01-01T00:00:00Z").to_filter(
        now_ms=dstrail.clock()
    )
    if not audit_filter.run_ids:
        raise InvalidInput("runIds: give at least one run id")
    read = reader.streamed(filter_document(audit_filter), detail={"format": "jsonl"})
    return streamed(
        stream_json_lines(read.rows(iter_chunks(dstrail.store, audit_filter))),
        read,
        "application/x-ndjson",
        filename="datasource-audit-runs.jsonl",
    )
