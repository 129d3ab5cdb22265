"""Reading the trail: filters from request parameters, and chunked keyset iteration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from dstrail.domain.audit_filter import AuditFilter, resolve_window
from dstrail.domain.events import EventKind, parse_event_kind
from dstrail.domain.ids import is_object_id
from dstrail.domain.timestamps import parse_iso
from dstrail.errors import InvalidInput
from dstrail.store import Cursor, EventRow, Store

CHUNK_ROWS = 10_000
"""Rows a query reads and a response writes at a time: a day of a busy trail (~5,500 events a
day at 1M events in six months) is one chunk, so it is answered in one piece; larger windows
stream, ~4 MB of JSON and ~15 MB of transient objects per chunk."""

DOMINO_PARAMETERS = ("startTime", "endTime", "dataSourceNames", "dataSourceIds", "eventKinds")
EXTENSION_PARAMETERS = ("performedBy", "projectIds", "runIds")


def build_filter(params: Mapping[str, Sequence[str]], *, now_ms: int) -> AuditFilter:
    """An ``AuditFilter`` from query parameters (each a list of values); ``InvalidInput``
    naming the parameter and what is accepted when one is wrong."""
    start = _one_time(params, "startTime")
    end = _one_time(params, "endTime")
    start_ms, end_ms = resolve_window(start, end, now_ms=now_ms)
    kinds: list[EventKind] = []
    for value in params.get("eventKinds", ()):
        try:
            kinds.append(parse_event_kind(value))
        except ValueError as error:
            raise InvalidInput(f"eventKinds: {error}") from None
    return AuditFilter(
        start_ms=start_ms,
        end_ms=end_ms,
        data_source_names=_values(params, "dataSourceNames"),
        data_source_ids=_ids(params, "dataSourceIds"),
        event_kinds=tuple(dict.fromkeys(kinds)),
        performed_by=_ids(params, "performedBy"),
        project_ids=_ids(params, "projectIds"),
        run_ids=_ids(params, "runIds"),
    )


def _one_time(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    values = params.get(name, ())
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(f"{name}: give it once, not {len(values)} times")
    return parse_iso(values[0], field=name)


def _values(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in params.get(name, ()) if v != ""))


def _ids(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    values = _values(params, name)
    for value in values:
        if not is_object_id(value):
            raise InvalidInput(f"{name}: {value!r} is not an id (24 lowercase hex characters)")
    return values


def iter_chunks(
    store: Store,
    audit_filter: AuditFilter,
    *,
    after: Cursor | None = None,
    limit: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[list[EventRow]]:
    """Matching events newest first, in chunks, each read in its own short transaction,
    so any window streams in constant memory without holding a connection between chunks."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk_rows if remaining is None else min(chunk_rows, remaining)
        with store.read() as tx:
            rows = tx.audit.page(audit_filter, after=after, limit=size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        if remaining is not None:
            remaining -= len(rows)
        after = Cursor(ts_ms=rows[-1][6], seq=rows[-1][7])


def encode_cursor(cursor: Cursor) -> str:
    """The ``cursor`` parameter of a next page."""
    return f"{cursor.ts_ms}.{cursor.seq}"


def decode_cursor(value: str) -> Cursor:
    """A cursor parameter back to a position; ``InvalidInput`` when malformed."""
    ts, _, seq = value.partition(".")
    if not (ts.lstrip("-").isdigit() and seq.isdigit()):
        raise InvalidInput(f"cursor: {value!r} is not a cursor from a Link header")
    return Cursor(ts_ms=int(ts), seq=int(seq))
