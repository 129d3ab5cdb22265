"""The audit trail pages: the filtered list with its chart, one event, suggestions, downloads.
Each page and file that shows events is recorded as a read of the trail (``AuditTrailRead``,
surface ``console``); name suggestions show no event and are not."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.api.downloads import filtered_export, six_month_file
from dstrail.audit.query import find_event, names_in_trail, read_page, window_counts
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import Cursor
from dstrail.domain.trail import (
    DOMINO_KINDS,
    MAX_SEQ,
    PLATFORM_KINDS,
    EventKind,
    EventRow,
    StoredEvent,
)
from dstrail.errors import DstrailError, Forbidden, InvalidInput, NotFound
from dstrail.services import datasources as datasource_service
from dstrail.services.auth import Caller, require_audit_reader
from dstrail.services.trail_reads import Surface, TrailReader, filter_document
from dstrail.web.chart import Chart, build_chart
from dstrail.web.deps import SignedInDep
from dstrail.web.filters import PRESETS, ConsoleFilter, audit_filter_of, parse_console_filter
from dstrail.web.pages import page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


_SUMMARY_KEYS = (
    "operation",
    "objectKey",
    "prefix",
    "runType",
    "projectName",
    "isEveryone",
    "newOwnerUsername",
    "addedUserIds",
    "removedUserIds",
    "changedFields",
    "reason",
)


class EventView(StoredEvent):
    """A stored event as the list and the detail page show it (its metadata parsed once)."""

    @cached_property
    def details(self) -> dict[str, str]:
        """The metadata, parsed."""
        parsed: dict[str, str] = orjson.loads(self.metadata)
        return parsed

    @property
    def username(self) -> str:
        """Who did it, by name."""
        return self.details.get("performedByUsername", "")

    @property
    def summary(self) -> str:
        """The details that matter most, in a few words."""
        details = self.details
        return " ".join(f"{key}={details[key]}" for key in _SUMMARY_KEYS if details.get(key))


def event_view(row: EventRow) -> EventView:
    """An event row for templates."""
    return EventView._make(row)


def _reader(request: Request, dstrail: Dstrail, signed_in: SignedInDep) -> TrailReader:
    """The signed-in user as a reader of the trail; ``Forbidden`` for others, recorded."""
    reader = TrailReader(
        store=dstrail.store, clock=dstrail.clock, actor=signed_in.user, surface=Surface.CONSOLE,
        origin={"path": request.url.path},
    )  # fmt: skip
    try:
        require_audit_reader(Caller(user=signed_in.user))
    except Forbidden:
        query = request.query_params
        reader.refused({key: query.getlist(key) for key in query})
        raise
    return reader


def _console_filter(request: Request) -> ConsoleFilter:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return parse_console_filter(params)


@router.get("/audit")
def audit_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Events newest first, filtered by the URL, with a chart and cursor paging."""
    reader = _reader(request, dstrail, signed_in)
    now = dstrail.clock()
    console = ConsoleFilter()
    context: dict[str, Any] = {
        "events": [],
        "next_cursor": None,
        "chart": None,
        "error": None,
        "total": None,
        "presets": PRESETS,
        "kinds": list(EventKind),
        "domino_kinds": DOMINO_KINDS,
        "platform_kinds": PLATFORM_KINDS,
        "paged": False,
        "window": None,
        "pinned": None,
    }
    status_code = 200
    try:
        console = _console_filter(request)
        cursor_param = request.query_params.get("cursor")
        after = Cursor.decode(cursor_param) if cursor_param else None
        with dstrail.store.read() as tx:
            audit_filter = audit_filter_of(tx, console, now_ms=now)
            events = read_page(tx, audit_filter, after=after, size=PAGE_SIZE)
            counts = window_counts(tx, audit_filter)
        asked = filter_document(audit_filter, limit=PAGE_SIZE, cursor=after)
        reader.record(asked, rows=len(events.rows))
        chart: Chart | None = build_chart(
            counts,
            start_ms=audit_filter.start_ms,
            end_ms=audit_filter.end_ms,
            kinds={k.value for k in audit_filter.event_kinds},
        )
        context.update(
            next_cursor=events.next.encode() if events.next else None,
            events=[event_view(row) for row in events.rows],
            chart=chart,
            total=sum(c.events for c in counts if c.event_kind in audit_filter.event_kinds),
            paged=after is not None,
            window=(audit_filter.start_ms, audit_filter.end_ms),
            pinned=console.pinned(audit_filter.start_ms, audit_filter.end_ms),
        )
    except DstrailError as error:
        context["error"] = error.message
        status_code = error.status_code
    return page(
        request,
        dstrail,
        "audit.html",
        {"filter": console, **context},
        user=signed_in.user,
        session=signed_in.session,
        status_code=status_code,
    )


@router.get("/audit/events/{seq}")
def event_page(seq: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """One event: every field and all its metadata."""
    reader = _reader(request, dstrail, signed_in)
    if not seq.isdigit() or not 1 <= int(seq) <= MAX_SEQ:
        raise NotFound(f"no event with sequence number {seq!r}")
    with dstrail.store.read() as tx:
        row = find_event(tx, int(seq))
        ds = datasource_service.find_any(tx, row.data_source_id)
    reader.record({"seq": row.seq}, rows=1)
    return page(
        request,
        dstrail,
        "event.html",
        {"event": event_view(row), "data_source": ds, "back": request.query_params.get("back", "")},
        user=signed_in.user,
        session=signed_in.session,
    )


@router.get("/audit/names")
def name_suggestions(dstrail: DstrailDep, signed_in: SignedInDep, q: str = "") -> JSONResponse:
    """Data source names starting with ``q``: those in the trail and every name ever used
    (deleted data sources included); names, no events, so not a recorded read."""
    require_audit_reader(Caller(user=signed_in.user))
    prefix = q.rsplit(",", 1)[-1].strip()[:128]
    with dstrail.store.read() as tx:
        names = names_in_trail(tx, prefix, limit=20)
    return JSONResponse(names, headers={"Cache-Control": "no-store"})


def _filtered_export(
    request: Request, dstrail: Dstrail, reader: TrailReader, file_format: str
) -> Response:
    console = _console_filter(request)
    with dstrail.store.read() as tx:
        audit_filter = audit_filter_of(tx, console, now_ms=dstrail.clock())
    return filtered_export(reader, audit_filter, file_format=file_format)


@router.get("/audit/export.csv")
def export_csv(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as CSV (streamed; formula-like cells neutralised)."""
    return _filtered_export(request, dstrail, _reader(request, dstrail, signed_in), "csv")


@router.get("/audit/export.jsonl")
def export_jsonl(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as JSON lines (streamed)."""
    return _filtered_export(request, dstrail, _reader(request, dstrail, signed_in), "jsonl")


@router.get("/audit/six-months.{extension}")
def six_months(
    extension: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """Domino's six-month download (its seven kinds): a text file or a JSON file."""
    reader = _reader(request, dstrail, signed_in)
    if extension in ("txt", "json"):
        return six_month_file(reader, as_json=extension == "json")
    raise InvalidInput(f"{extension!r} is not a download; accepted: txt, json")
