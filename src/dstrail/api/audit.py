"""The audit API (Domino's contract) and the trail's downloads."""

from __future__ import annotations

import itertools
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from dstrail.api.deps import AuditReaderDep, DstrailDep
from dstrail.api.downloads import filtered_export, six_month_file, streamed
from dstrail.api.errors import error_responses
from dstrail.audit.query import (
    CHUNK_ROWS,
    DOMINO_PARAMETERS,
    EXTENSION_PARAMETERS,
    build_filter,
    decode_cursor,
    encode_cursor,
    iter_chunks,
)
from dstrail.audit.serialize import (
    json_array,
    stream_json_array,
    stream_json_lines,
)
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import format_ms
from dstrail.errors import InvalidInput
from dstrail.store import Cursor, EventRow

router = APIRouter(tags=["audit"])

MAX_LIMIT = 10_000
_NO_STORE = {"Cache-Control": "no-store"}
_AUDIT_ERRORS = error_responses(400, 401, 403, family="audit")

StartTime = Annotated[
    str | None, Query(alias="startTime", description="inclusive, ISO-8601 with Z or an offset")
]
EndTime = Annotated[
    str | None, Query(alias="endTime", description="inclusive, ISO-8601 with Z or an offset")
]
Names = Annotated[
    list[str] | None,
    Query(alias="dataSourceNames", description="names as they were when the event happened"),
]
Ids = Annotated[list[str] | None, Query(alias="dataSourceIds")]
Kinds = Annotated[
    list[str] | None,
    Query(alias="eventKinds", description="Domino's seven kinds by default; extensions if named"),
]
PerformedBy = Annotated[list[str] | None, Query(alias="performedBy", description="user ids")]
ProjectIds = Annotated[list[str] | None, Query(alias="projectIds")]
RunIds = Annotated[list[str] | None, Query(alias="runIds")]


def _parameters(request: Request, accepted: tuple[str, ...]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in accepted:
            raise InvalidInput(f"unknown parameter {key!r}; accepted: {', '.join(accepted)}")
        params.setdefault(key, []).append(value)
    return params


def _filter(request: Request, dstrail: DstrailDep, accepted: tuple[str, ...]) -> AuditFilter:
    return build_filter(_parameters(request, accepted), now_ms=dstrail.clock())


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(f"limit: {value!r} is not accepted; accepted: 1 to {MAX_LIMIT}")
    return int(value)


@router.get(
    "/api/datasource/v1/audit",
    responses=_AUDIT_ERRORS,
    summary="Data source audit events, newest first (also answered with a trailing slash)",
    response_description="a bare JSON array of events (dataSourceId, dataSourceName, "
    "dataSourceType, eventKind, metadata, performedBy, timestamp)",
)
@router.get(
    "/api/datasource/v1/audit/",
    responses=_AUDIT_ERRORS,
    summary="Data source audit events, newest first",
    response_description="a bare JSON array of events (dataSourceId, dataSourceName, "
    "dataSourceType, eventKind, metadata, performedBy, timestamp)",
)
def read_audit(
    request: Request,
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    start_time: StartTime = None,
    end_time: EndTime = None,
    data_source_names: Names = None,
    data_source_ids: Ids = None,
    event_kinds: Kinds = None,
    performed_by: PerformedBy = None,
    project_ids: ProjectIds = None,
    run_ids: RunIds = None,
    limit: Annotated[
        str | None,
        Query(
            description=f"extension: at most this many (1-{MAX_LIMIT}), "
            'with a Link rel="next" header when more remain'
        ),
    ] = None,
    cursor: Annotated[str | None, Query(description="extension: from a Link header")] = None,
) -> Response:
    """Domino's ``GET /api/datasource/v1/audit``: window defaults of 24 hours, inclusive."""
    accepted = (*DOMINO_PARAMETERS, *EXTENSION_PARAMETERS, "limit", "cursor")
    audit_filter = _filter(request, dstrail, accepted)
    page_size = _limit(limit)
    after = decode_cursor(cursor) if cursor is not None else None
    if page_size is None:
        if after is not None:
            raise InvalidInput("cursor: only accepted together with limit")
        chunks = iter_chunks(dstrail.store, audit_filter)
        first = next(chunks, [])
        if len(first) < CHUNK_ROWS:
            # All of it fits in one chunk: one body with its length, no streaming (each piece
            # of a StreamingResponse is a thread hop and a write).
            return Response(json_array(first), media_type="application/json", headers=_NO_STORE)
        return streamed(stream_json_array(itertools.chain([first], chunks)), "application/json")
    with dstrail.store.read() as tx:
        rows = tx.audit.page(audit_filter, after=after, limit=page_size + 1)
    headers = dict(_NO_STORE)
    if len(rows) > page_size:
        rows = rows[:page_size]
        headers["Link"] = f'<{_next_url(request, audit_filter, rows[-1])}>; rel="next"'
    return Response(json_array(rows), media_type="application/json", headers=headers)


def _next_url(request: Request, audit_filter: AuditFilter, last: EventRow) -> str:
    """The same query from after ``last``, its window pinned so later pages do not drift."""
    moving = ("cursor", "startTime", "endTime")
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in moving]
    params.append(("startTime", format_ms(audit_filter.start_ms)))
    params.append(("endTime", format_ms(audit_filter.end_ms)))
    params.append(("cursor", encode_cursor(Cursor(ts_ms=last[6], seq=last[7]))))
    return f"{request.url.path}?{urlencode(params)}"


@router.get(
    "/api/datasource/v1/audit/export",
    responses=_AUDIT_ERRORS,
    summary="The filtered view as a CSV or JSON-lines file",
)
def export_audit(
    request: Request,
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    format: Annotated[str, Query(description="csv or jsonl")] = "csv",
    start_time: StartTime = None,
    end_time: EndTime = None,
    data_source_names: Names = None,
    data_source_ids: Ids = None,
    event_kinds: Kinds = None,
    performed_by: PerformedBy = None,
    project_ids: ProjectIds = None,
    run_ids: RunIds = None,
) -> StreamingResponse:
    """Any filtered view, streamed; CSV cells that start like a formula are neutralised."""
    audit_filter = _filter(request, dstrail, (*DOMINO_PARAMETERS, *EXTENSION_PARAMETERS, "format"))
    return filtered_export(dstrail.store, audit_filter, file_format=format, now_ms=dstrail.clock())


@router.get(
    "/v4/datasource/audit/download",
    responses=_AUDIT_ERRORS,
    summary="Domino's six-month download: a text file, or JSON with jsonFile=true",
)
def download_six_months(
    request: Request,
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    json_file: Annotated[str, Query(alias="jsonFile", description="true or false")] = "false",
) -> StreamingResponse:
    """The last six months (183 days) of Domino's seven kinds."""
    _parameters(request, ("jsonFile",))
    if json_file not in ("true", "false"):
        raise InvalidInput(f"jsonFile: {json_file!r} is not accepted; accepted: true, false")
    return six_month_file(dstrail.store, as_json=json_file == "true", now_ms=dstrail.clock())


@router.get(
    "/v4/datasource/audit/download/runs",
    responses=_AUDIT_ERRORS,
    summary="Every event of the given runs, as JSON lines",
)
def download_runs(
    request: Request,
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    run_ids: Annotated[list[str], Query(alias="runIds")],
) -> StreamingResponse:
    """All events of those runs, whenever they happened (any kind)."""
    params = _parameters(request, ("runIds",))
    audit_filter = build_filter(
        {"runIds": params.get("runIds", []), "startTime": ["1970-01-01T00:00:00Z"]},
        now_ms=dstrail.clock(),
    )
    if not audit_filter.run_ids:
        raise InvalidInput("runIds: give at least one run id")
    return streamed(
        stream_json_lines(iter_chunks(dstrail.store, audit_filter)),
        "application/x-ndjson",
        filename="datasource-audit-runs.jsonl",
    )
