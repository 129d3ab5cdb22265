"""The audit trail pages: the filtered list with its chart, one event, suggestions, downloads.
Each page and file that shows events is recorded as a read of the trail (``AuditTrailRead``,
surface ``console``); name suggestions show no event and are not."""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.api.downloads import filtered_export, six_month_file
from dstrail.audit import proofs, tlog_proof
from dstrail.audit.query import find_event, names_in_trail
from dstrail.context import Dstrail
from dstrail.domain.trail import (
    MAX_SEQ,
    EventRow,
    StoredEvent,
    event_document,
    note,
)
from dstrail.domain.trail.tlog_proof import EXTENSION
from dstrail.errors import Forbidden, InvalidInput, NotFound
from dstrail.services import datasources as datasource_service
from dstrail.services.auth import Caller, require_audit_reader
from dstrail.services.names import Names, names_for
from dstrail.services.trail_reads import Surface, TrailReader
from dstrail.web.deps import SignedInDep
from dstrail.web.filters import ConsoleFilter
from dstrail.web.pages import page
from dstrail.web.resolution import audit_filter_of, parse_console_filter

router = APIRouter(include_in_schema=False)


_SUMMARY_KEYS = {
    "operation": "operation",
    "objectKey": "objectKey",
    "prefix": "prefix",
    "projectId": "project",
    "runId": "run",
    "isEveryone": "isEveryone",
    "newOwnerUsername": "newOwner",
    "addedUserIds": "added",
    "removedUserIds": "removed",
    "changedFields": "changedFields",
    "reason": "reason",
}
"""The metadata keys the list shows, with the label each is shown under."""


class SummaryPart(NamedTuple):
    """One detail of the list's summary: its label, the text shown (names where the value
    holds ids) and the ids behind the names ("" when the text is the value itself)."""

    label: str
    text: str
    ids: str


class EventView(StoredEvent):
    """A stored event as the list and the detail page show it (its metadata parsed once);
    ``names``: the names of the ids it holds (``event_view``)."""

    names: Names = Names()

    @cached_property
    def details(self) -> dict[str, str]:
        """The metadata, parsed."""
        parsed: dict[str, str] = orjson.loads(self.metadata)
        return parsed

    @property
    def username(self) -> str:
        """Who did it, by name."""
        return self.details.get("performedByUsername", "")

    def named(self, key: str) -> str:
        """The names behind a metadata value that holds ids; "" for other values."""
        value = self.details.get(key, "")
        named = self.names.of(key, value) if value else ""
        if not named and key == "projectId":
            return self.details.get("projectName", "")
        return named

    @property
    def summary_parts(self) -> list[SummaryPart]:
        """The details that matter most, names in place of ids."""
        details = self.details
        parts = []
        for key, label in _SUMMARY_KEYS.items():
            value = details.get(key)
            if value:
                named = self.named(key)
                parts.append(SummaryPart(label, named or value, value if named else ""))
        return parts

    @property
    def summary(self) -> str:
        """The details that matter most, in a few words (names in place of ids)."""
        return " ".join(f"{part.label}={part.text}" for part in self.summary_parts)

    @property
    def raw_json(self) -> str:
        """The event as the audit API returns it, indented."""
        document = {**event_document(self), "metadata": self.details}
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def event_view(row: EventRow, names: Names | None = None) -> EventView:
    """An event row for templates, with the names of its ids (``names_for``)."""
    view = EventView._make(row)
    if names is not None:
        view.names = names
    return view


def trail_reader(request: Request, dstrail: Dstrail, signed_in: SignedInDep) -> TrailReader:
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


@router.get("/audit/events/{seq}")
def event_page(seq: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """One event: every field and all its metadata."""
    reader = trail_reader(request, dstrail, signed_in)
    if not seq.isdigit() or not 1 <= int(seq) <= MAX_SEQ:
        raise NotFound(f"no event with sequence number {seq!r}")
    with dstrail.store.read() as tx:
        row = find_event(tx, int(seq))
        ds = datasource_service.find_any(tx, row.data_source_id)
        names = names_for(tx, [row])
        covering = proofs.covering_checkpoint(tx, seq=row.seq)
    reader.record({"seq": row.seq}, rows=1)
    return page(
        request,
        dstrail,
        "event.html",
        {
            "event": event_view(row, names),
            "data_source": ds,
            "back": request.query_params.get("back", ""),
            "checkpoint": covering,
            "proof_extension": EXTENSION,
        },
        user=signed_in.user,
        session=signed_in.session,
    )


def _seq_of(seq: str) -> int:
    if not seq.isdigit() or not 1 <= int(seq) <= MAX_SEQ:
        raise NotFound(f"no event with sequence number {seq!r}")
    return int(seq)


@router.get("/audit/events/{seq}/inclusion.json")
def inclusion_proof(
    seq: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """The event's inclusion proof against the latest checkpoint, as
    ``GET /api/datasource/v1/audit/integrity/inclusion`` answers it (a recorded read)."""
    reader = trail_reader(request, dstrail, signed_in)
    number = _seq_of(seq)
    with dstrail.store.read() as tx:
        proof = proofs.prove_inclusion(tx, seq=number)
    reader.record({"seq": number}, rows=1, detail={"format": "inclusion"})
    return Response(
        orjson.dumps(proof.document(), option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/audit/events/{seq}/proof" + EXTENSION)
def offline_proof(
    seq: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """The event's offline proof (C2SP tlog-proof), as
    ``GET /api/datasource/v1/audit/integrity/proof`` answers it (a recorded read)."""
    reader = trail_reader(request, dstrail, signed_in)
    number = _seq_of(seq)
    with dstrail.store.read() as tx:
        made = tlog_proof.prove_event(tx, seq=number)
    reader.record({"seq": number}, rows=1, detail={"format": "tlog-proof"})
    return Response(
        made.encode(),
        media_type=note.TEXT_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="dstrail-event-{number}{EXTENSION}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/audit/names")
def name_suggestions(dstrail: DstrailDep, signed_in: SignedInDep, q: str = "") -> JSONResponse:
    """Data source names containing ``q`` (letter case ignored; those starting with it
    first): those in the trail and every name ever used (deleted data sources included);
    names, no events, so not a recorded read."""
    require_audit_reader(Caller(user=signed_in.user))
    prefix = q.rsplit(",", 1)[-1].strip()[:128]
    with dstrail.store.read() as tx:
        names = names_in_trail(tx, prefix, limit=20)
    return JSONResponse(names, headers={"Cache-Control": "no-store"})


def _filtered_export(
    request: Request, dstrail: Dstrail, reader: TrailReader, file_format: str
) -> Response:
    console = _console_filter(request)
    metadata_columns = request.query_params.get("metadataColumns", "")
    if metadata_columns not in ("", "true"):
        raise InvalidInput(
            "one column per metadata key: tick the box, or leave it unticked "
            f"(metadataColumns={metadata_columns!r} is not understood)"
        )
    with dstrail.store.read() as tx:
        audit_filter = audit_filter_of(tx, console, now_ms=dstrail.clock())
    return filtered_export(
        reader, audit_filter, file_format=file_format, metadata_columns=metadata_columns == "true"
    )


@router.get("/audit/export.csv")
def export_csv(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as CSV (streamed; formula-like cells neutralised)."""
    return _filtered_export(request, dstrail, trail_reader(request, dstrail, signed_in), "csv")


@router.get("/audit/export.jsonl")
def export_jsonl(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Exactly the filtered view as JSON lines (streamed)."""
    return _filtered_export(request, dstrail, trail_reader(request, dstrail, signed_in), "jsonl")


@router.get("/audit/six-months.{extension}")
def six_months(
    extension: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """Domino's six-month download (its seven kinds): a text file or a JSON file."""
    reader = trail_reader(request, dstrail, signed_in)
    if extension in ("txt", "json"):
        return six_month_file(reader, as_json=extension == "json")
    raise InvalidInput(f"{extension!r} is not a download; accepted: txt, json")
