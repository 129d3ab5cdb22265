"""The audit trail page: the query box and the form, the chart, the event table with its
position, columns, order and pages, and the live view that adds events as they are recorded.

Each page that shows events is a recorded read (``AuditTrailRead``, surface ``console``). The
live view (``GET /audit/live``) records one read per batch of events it hands out; a batch
made only of the live view's own reads is held back until another event joins it (so that two
people watching the trail's reads never feed each other's view forever).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.audit.query import events_since
from dstrail.domain.trail import (
    DOMINO_KINDS,
    EVENT_KIND,
    METADATA,
    PLATFORM_KINDS,
    SEQ,
    TS_MS,
    EventKind,
    EventRow,
)
from dstrail.services.names import names_for
from dstrail.services.trail_reads import filter_document
from dstrail.store import Repositories
from dstrail.web.audit_views import event_view, trail_reader
from dstrail.web.deps import SignedInDep
from dstrail.web.filters import COLUMNS, PAGE_SIZES, PRESETS, WORDS, ConsoleFilter, Problem
from dstrail.web.filters import read_console_filter as read_filter
from dstrail.web.pages import page, templates
from dstrail.web.resolution import Notice, Resolved, resolve
from dstrail.web.times import ACCEPTED_TIMES
from dstrail.web.trail_page import Paging, TrailView, read_paging, read_view

router = APIRouter(include_in_schema=False)
_NO_STORE: Final = {"Cache-Control": "no-store"}

LIVE_PATH: Final = "/audit/live"
LIVE_INTERVAL_MS: Final = 2_000
"""How often the live view asks for new events."""
_FIELD_INPUTS: Final = {
    "q": "q",
    "range": "range",
    "start": "start",
    "end": "end",
    "name": "name",
    "kind": "kinds",
    "user": "user",
    "project": "project",
    "run": "run",
    "key": "key",
    "ds": "ds",
    "size": "size",
    "order": "order",
    "cursor": "q",
}
"""Where each field's message points: its input (or the fieldset) on the page."""
_INPUT_LABELS: Final = {
    "q": "the search box",
    "range": "Time range",
    "start": "From",
    "end": "To",
    "name": "Data source names",
    "kinds": "Event kinds",
    "user": "User",
    "project": "Project",
    "run": "Run",
    "key": "Object key",
    "ds": "Data source id",
    "size": "Events a page",
    "order": "the order",
}


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _notices(
    problems: Sequence[Problem], resolved: Resolved | None, console: ConsoleFilter
) -> list[dict[str, Any]]:
    """Every message of the page: problems (errors), warnings and notes, each with the id
    its field's input points to (``aria-describedby``) and, for a miss, suggestions."""
    found: list[dict[str, Any]] = []
    for problem in problems:
        found.append({"level": "error", "field": problem.field, "message": problem.message})
    for level, notices in (
        ("warning", resolved.warnings if resolved else []),
        ("note", resolved.notes if resolved else []),
    ):
        for notice in notices:
            found.append(
                {
                    "level": level,
                    "field": notice.field,
                    "message": notice.message,
                    "suggestions": _suggestions(console, notice),
                }
            )
    for number, message in enumerate(found, start=1):
        message["id"] = f"notice-{number}"
        message["input"] = _FIELD_INPUTS.get(message["field"], "q")
        message["label"] = _INPUT_LABELS[message["input"]]
    return found


def _suggestions(console: ConsoleFilter, notice: Notice) -> list[tuple[str, str]]:
    """Links for a miss: the view with the typed value replaced by each close one."""
    links: list[tuple[str, str]] = []
    for suggestion in notice.suggestions:
        if notice.field == "name":
            names = tuple(suggestion if n == notice.typed else n for n in console.names)
            links.append((suggestion, replace(console, names=names).query()))
        elif notice.field == "user":
            links.append((suggestion, replace(console, user=suggestion).query()))
        elif notice.field == "project":
            links.append((suggestion, replace(console, project=suggestion).query()))
    return links


def _described(notices: list[dict[str, Any]]) -> dict[str, str]:
    """For each input, the ids of the messages about it (the query box: every message)."""
    ids: dict[str, list[str]] = {}
    for notice in notices:
        ids.setdefault(notice["input"], []).append(notice["id"])
        if notice["input"] != "q":
            ids.setdefault("q", []).append(notice["id"])
    return {key: " ".join(values) for key, values in ids.items()}


def _last_view(
    tx: Repositories, params: Mapping[str, Sequence[str]], *, now_ms: int
) -> tuple[ConsoleFilter, Resolved] | None:
    """The view the reader came from (``last``: its query string), when it is readable."""
    values = params.get("last", ())
    if not values:
        return None
    last = {key: value for key, value in parse_qs(values[-1]).items() if key != "last"}
    console, problems = read_filter(last)
    if problems:
        return None
    resolved = resolve(tx, console, now_ms=now_ms)
    if resolved.problems or resolved.audit_filter is None:
        return None
    return console, resolved


@router.get("/audit")
def audit_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The trail, filtered by the URL (form fields or query words), with its chart and
    pages. A field that is not accepted is marked, and the last view stays on the page."""
    reader = trail_reader(request, dstrail, signed_in)
    now = dstrail.clock()
    params = _params(request)
    console, problems = read_filter(params)
    paging, paging_problems = read_paging(params)
    problems += paging_problems
    view: TrailView | None = None
    shown = console
    with dstrail.store.read() as tx:
        resolved = resolve(tx, console, now_ms=now, problems=problems)
        if not resolved.problems:
            if resolved.readable is not None:
                view = read_view(tx, console, resolved.readable, paging)
        else:
            last = _last_view(tx, params, now_ms=now)
            if last is not None and last[1].readable is not None:
                shown = last[0]
                view = read_view(tx, shown, last[1].readable, Paging())
    if view is not None:
        reader.record(view.asked, rows=len(view.events))
    notices = _notices(resolved.problems, resolved, console)
    window = view.window if view else None
    context: dict[str, Any] = {
        "filter": console,
        "shown": shown,
        "view": view,
        "notices": notices,
        "described": _described(notices),
        "invalid": {n["input"] for n in notices if n["level"] == "error"},
        "kept_last": bool(resolved.problems) and view is not None,
        "last_query": shown.query(),
        "matches_nothing": resolved.matches_nothing and not resolved.problems,
        "presets": PRESETS,
        "kinds": list(EventKind),
        "domino_kinds": DOMINO_KINDS,
        "platform_kinds": PLATFORM_KINDS,
        "columns": shown.columns,
        "column_keys": list(COLUMNS),
        "page_sizes": PAGE_SIZES,
        "window": window,
        "pinned": shown.pinned(*window) if window else None,
        "words": WORDS,
        "accepted_times": ACCEPTED_TIMES,
        "live_path": LIVE_PATH,
        "live_interval": LIVE_INTERVAL_MS,
    }
    return page(
        request,
        dstrail,
        "audit.html",
        context,
        user=signed_in.user,
        session=signed_in.session,
        status_code=400 if resolved.problems else 200,
    )


def _is_live_read(row: EventRow) -> bool:
    """Whether an event records a batch the live view handed out."""
    if row[EVENT_KIND] != EventKind.TRAIL_READ.value:
        return False
    details: dict[str, str] = orjson.loads(row[METADATA])
    return details.get("path") == LIVE_PATH


@router.get(LIVE_PATH)
def live_events(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The events of the view recorded after event ``since``, as rows of its table
    (``{"html", "rows", "seq"}``: ``seq`` is where to ask from next). A batch is a recorded
    read; a batch of nothing but the live view's own reads waits for another event."""
    reader = trail_reader(request, dstrail, signed_in)
    params = _params(request)
    console, problems = read_filter(params)
    since_text = params.get("since", [""])[-1]
    if not since_text.isdigit():
        problems.append(Problem("since", "since: the sequence number of the newest event shown"))
    if problems:
        return JSONResponse({"error": problems[0].message}, status_code=400)
    since = int(since_text)
    with dstrail.store.read() as tx:
        resolved = resolve(tx, console, now_ms=dstrail.clock())
        audit_filter = resolved.readable
        if resolved.problems or audit_filter is None:
            message = resolved.problems[0].message if resolved.problems else ""
            status = 400 if resolved.problems else 200
            body = {"error": message} if message else {"html": "", "rows": 0, "seq": since}
            return JSONResponse(body, status_code=status)
        limit = console.size
        rows = events_since(tx, audit_filter, after_seq=since, limit=limit)
        held = len(rows) < limit and all(_is_live_read(row) for row in rows)
        names = names_for(tx, rows) if rows and not held else None
    if not rows or held:
        return JSONResponse({"html": "", "rows": 0, "seq": since}, headers=_NO_STORE)
    asked = {**filter_document(audit_filter, limit=limit), "sinceSeq": since}
    reader.record(asked, rows=len(rows))
    newest_first = sorted(rows, key=lambda row: (row[TS_MS], row[SEQ]), reverse=True)
    html = templates.env.get_template("_event_rows.html").render(
        events=[event_view(row, names) for row in newest_first],
        back=console.query(),
        columns=console.columns,
    )
    body = {"html": html, "rows": len(rows), "seq": max(row[SEQ] for row in rows)}
    return JSONResponse(body, headers=_NO_STORE)
