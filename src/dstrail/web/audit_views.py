"""The audit trail pages: the filtered list with its chart, one event, suggestions, downloads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.api.downloads import filtered_export, six_month_file
from dstrail.audit.query import decode_cursor, encode_cursor
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.events import DOMINO_KINDS, EventKind
from dstrail.domain.timestamps import DAY_MS
from dstrail.errors import DstrailError, InvalidInput, NotFound
from dstrail.services.auth import Caller, require_audit_reader
from dstrail.store import Cursor, EventRow, Repositories
from dstrail.web.chart import Chart, build_chart
from dstrail.web.deps import SignedInDep
from dstrail.web.filters import PRESETS, ConsoleFilter, audit_filter_of, parse_console_filter
from dstrail.web.pages import page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class EventView:
    """One event as the list and the detail page show it."""

    seq: int
    ts_ms: int
    kind: str
    data_source_id: str
    data_source_name: str
    data_source_type: str
    performed_by: str
    username: str
    metadata: dict[str, str]

    @property
    def summary(self) -> str:
        """The details that matter most, in a few words."""
        m = self.metadata
        parts = [
            f"{key}={m[key]}"
            for key in (
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
            if m.get(key)
        ]
        return " ".join(parts)


def event_view(row: EventRow) -> EventView:
    """An event row for templates."""
    metadata: dict[str, str] = orjson.loads(row[4])
    return EventView(
        seq=row[7],
        ts_ms=row[6],
        kind=row[3],
        data_source_id=row[0],
        data_source_name=row[1],
        data_source_type=row[2],
        performed_by=row[5],
        username=metadata.get("performedByUsername", ""),
        metadata=metadata,
    )


def _reader(signed_in: SignedInDep) -> Caller:
    caller = Caller(user=signed_in.user)
    require_audit_reader(caller)
    return caller


def _console_filter(request: Request) -> ConsoleFilter:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return parse_console_filter(params)


def window_counts(
    tx: Repositories, audit_filter: AuditFilter, *, narrowed: bool
) -> list[tuple[int, str, int]]:
    """Events per UTC day and kind for exactly the filtered view.

    Without name/user/project/run filters the whole days inside the window come from the
    ``audit_daily_counts`` rollup and only the two partial edge days are counted from events;
    a narrowed view is counted with one bounded GROUP BY.
    """
    if narrowed:
        return tx.audit.daily_counts_matching(audit_filter)
    first, last = audit_filter.start_ms // DAY_MS, audit_filter.end_ms // DAY_MS
    edges = {first, last}
    counts = [c for c in tx.audit.daily_counts(first_day=first, last_day=last) if c[0] not in edges]
    for day in sorted(edges):
        edge = replace(
            audit_filter,
            start_ms=max(audit_filter.start_ms, day * DAY_MS),
            end_ms=min(audit_filter.end_ms, (day + 1) * DAY_MS - 1),
        )
        counts += tx.audit.daily_counts_matching(edge)
    return counts


@router.get("/audit")
def audit_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Events newest first, filtered by the URL, with a chart and cursor paging."""
    _reader(signed_in)
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
        "paged": False,
        "window": None,
        "pinned": None,
    }
    status_code = 200
    try:
        console = _console_filter(request)
        cursor_param = request.query_params.get("cursor")
        after = decode_cursor(cursor_param) if cursor_param else None
        with dstrail.store.read() as tx:
            audit_filter = audit_filter_of(tx, console, now_ms=now)
            rows = tx.audit.page(audit_filter, after=after, limit=PAGE_SIZE + 1)
            counts = window_counts(tx, audit_filter, narrowed=console.narrowed)
        chart: Chart | None = build_chart(
            counts,
            start_ms=audit_filter.start_ms,
            end_ms=audit_filter.end_ms,
            kinds={k.value for k in audit_filter.event_kinds},
        )
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            context["next_cursor"] = encode_cursor(Cursor(ts_ms=rows[-1][6], seq=rows[-1][7]))
        context.update(
            events=[event_view(row) for row in rows],
            chart=chart,
            total=sum(c[2] for c in counts if c[1] in {k.value for k in audit_filter.event_kinds}),
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
    _reader(signed_in)
    if not seq.isdigit():
        raise NotFound(f"no event with sequence number {seq!r}")
    with dstrail.store.read() as tx:
        row = tx.audit.by_sequence(int(seq))
        if row is None:
            raise NotFound(f"no event with sequence number {seq}")
        ds = tx.data_sources.by_id(row[0])
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
    (deleted data sources included)."""
    _reader(signed_in)
    prefix = q.rsplit(",", 1)[-1].strip()[:128]
    with dstrail.store.read() as tx:
        names = set(tx.audit.names_seen(prefix, limit=20))
        names |= set(tx.data_sources.names_ever_used(prefix, limit=20))
    return JSONResponse(sorted(names)[:20], headers={"Cache-Control": "no-store"})


def _filtered_export(request: Request, dstrail: Dstrail, file_format: str) -> Response:
    console = _console_filter(request)
    now = dstrail.clock()
    with dstrail.store.read() as tx:
        audit_filter = audit_filter_of(tx, console, now_ms=now)
    return filtered_export(dstrail.store, audit_filter, file_format=file_format, now_ms=now)


@router.get("/audit/export.csv")
def export_csv(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as CSV (streamed; formula-like cells neutralised)."""
    _reader(signed_in)
    return _filtered_export(request, dstrail, "csv")


@router.get("/audit/export.jsonl")
def export_jsonl(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as JSON lines (streamed)."""
    _reader(signed_in)
    return _filtered_export(request, dstrail, "jsonl")


@router.get("/audit/six-months.{extension}")
def six_months(extension: str, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Domino's six-month download (its seven kinds): a text file or a JSON file."""
    _reader(signed_in)
    if extension in ("txt", "json"):
        return six_month_file(dstrail.store, as_json=extension == "json", now_ms=dstrail.clock())
    raise InvalidInput(f"{extension!r} is not a download; accepted: txt, json")
