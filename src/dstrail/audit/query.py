"""Reading the trail: the one set of filter parameters, parsed once into an ``AuditFilter``,
then pages, chunked streams and per-day counts of exactly that filter.

``AuditParameters`` holds the filters as the audit API names them (the API documents it in
OpenAPI from this model; the CLI derives its options from it). The console maps its own form
fields onto an ``AuditFilter`` with the same parsers; every error names the field as the
caller spelled it (``labels``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from dstrail.domain.audit_filter import (
    AuditFilter,
    BucketCount,
    Cursor,
    DayCount,
    resolve_window,
)
from dstrail.domain.ids import is_object_id
from dstrail.domain.timestamps import DAY_MS, parse_iso
from dstrail.domain.trail import SEQ, TS_MS, EventKind, EventRow, StoredEvent, parse_event_kind
from dstrail.errors import InvalidInput, NotFound
from dstrail.store import Repositories, Store

CHUNK_ROWS: Final = 10_000
"""Rows a query reads and a response writes at a time: a day of a busy trail (~5,500 events a
day at 1M events in six months) is one chunk, so it is answered in one piece; larger windows
stream, ~4 MB of JSON and ~15 MB of transient objects per chunk."""


def _list(alias: str, description: str) -> Any:
    return Field(default_factory=list, alias=alias, description=description)


class AuditParameters(BaseModel):
    """The filters of a read of the trail, named as the audit API names them. Values inside one
    list are OR-ed; different parameters are AND-ed. Domino's five come first."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    start_time: str | None = Field(
        default=None, alias="startTime", description="inclusive, ISO-8601 with Z or an offset"
    )
    end_time: str | None = Field(
        default=None, alias="endTime", description="inclusive, ISO-8601 with Z or an offset"
    )
    data_source_names: list[str] = _list(
        "dataSourceNames", "names as they were when the event happened"
    )
    data_source_ids: list[str] = _list("dataSourceIds", "data source ids")
    event_kinds: list[str] = _list(
        "eventKinds", "Domino's seven kinds by default; extensions only when named"
    )
    performed_by: list[str] = _list("performedBy", "extension: user ids")
    project_ids: list[str] = _list("projectIds", "extension: project ids")
    run_ids: list[str] = _list("runIds", "extension: run ids")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names (the API's aliases), in order."""
        return tuple(field.alias or name for name, field in cls.model_fields.items())

    @classmethod
    def repeatable(cls) -> frozenset[str]:
        """The field names of the list parameters (the key repeats: ``?eventKinds=A&eventKinds=B``)."""
        return frozenset(
            n for n, field in cls.model_fields.items() if field.annotation == list[str]
        )

    @classmethod
    def single_valued(cls) -> tuple[str, ...]:
        """The names of the parameters given at most once (the times)."""
        many = cls.repeatable()
        return tuple(f.alias or n for n, f in cls.model_fields.items() if n not in many)

    def to_filter(self, *, now_ms: int, labels: Mapping[str, str] | None = None) -> AuditFilter:
        """The filter these parameters describe, with the audit API's window rules;
        ``InvalidInput`` naming the parameter (by ``labels``: field name to the caller's
        spelling; default the API's names) and what is accepted."""
        label = _labeller(labels)
        start = parse_time(self.start_time, label=label("start_time"))
        end = parse_time(self.end_time, label=label("end_time"))
        start_ms, end_ms = resolve_window(
            start, end, now_ms=now_ms, labels=(label("start_time"), label("end_time"))
        )
        return AuditFilter(
            start_ms=start_ms,
            end_ms=end_ms,
            data_source_names=distinct(self.data_source_names),
            data_source_ids=parse_ids(self.data_source_ids, label=label("data_source_ids")),
            event_kinds=parse_kinds(self.event_kinds, label=label("event_kinds")),
            performed_by=parse_ids(self.performed_by, label=label("performed_by")),
            project_ids=parse_ids(self.project_ids, label=label("project_ids")),
            run_ids=parse_ids(self.run_ids, label=label("run_ids")),
        )


API_LABELS: Final = {
    name: field.alias or name for name, field in AuditParameters.model_fields.items()
}


def _labeller(labels: Mapping[str, str] | None) -> Callable[[str], str]:
    chosen = API_LABELS if labels is None else labels
    return lambda name: chosen.get(name, API_LABELS[name])


# -- parsing one field ------------------------------------------------------------------------


def parse_time(value: str | None, *, label: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 time, None when not given."""
    return None if value is None else parse_iso(value, field=label)


def distinct(values: Sequence[str]) -> tuple[str, ...]:
    """The non-empty values, each once, in order."""
    return tuple(dict.fromkeys(value for value in values if value != ""))


def parse_ids(values: Sequence[str], *, label: str) -> tuple[str, ...]:
    """Ids (24 lowercase hex characters), each once."""
    ids = distinct(values)
    for value in ids:
        if not is_object_id(value):
            raise InvalidInput(f"{label}: {value!r} is not an id (24 lowercase hex characters)")
    return ids


def parse_kinds(values: Sequence[str], *, label: str) -> tuple[EventKind, ...]:
    """Event kinds, each once."""
    kinds: list[EventKind] = []
    for value in values:
        try:
            kinds.append(parse_event_kind(value))
        except ValueError as error:
            raise InvalidInput(f"{label}: {error}") from None
    return tuple(dict.fromkeys(kinds))


def reject_unknown(given: Sequence[str], accepted: Sequence[str]) -> None:
    """``InvalidInput`` for a parameter name outside ``accepted``."""
    for name in given:
        if name not in accepted:
            raise InvalidInput(f"unknown parameter {name!r}; accepted: {', '.join(accepted)}")


def reject_repeated(given: Sequence[str], once: Sequence[str]) -> None:
    """``InvalidInput`` for a single-valued parameter given more than once."""
    for name in once:
        count = list(given).count(name)
        if count > 1:
            raise InvalidInput(f"{name}: give it once, not {count} times")


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """Up to a page of events, newest first, and where the next page starts (None: no more)."""

    rows: list[EventRow]
    next: Cursor | None


def read_page(
    tx: Repositories,
    audit_filter: AuditFilter,
    *,
    after: Cursor | None,
    size: int,
    oldest_first: bool = False,
) -> Page:
    """One page of matching events strictly past ``after`` (keyset paging), newest first or
    (``oldest_first``) oldest first."""
    rows = tx.audit.page(audit_filter, after=after, limit=size + 1, oldest_first=oldest_first)
    if len(rows) <= size:
        return Page(rows=rows, next=None)
    rows = rows[:size]
    return Page(rows=rows, next=Cursor.after(rows[-1]))


def read_page_before(
    tx: Repositories,
    audit_filter: AuditFilter,
    *,
    before: Cursor | None,
    size: int,
    oldest_first: bool = False,
) -> list[EventRow]:
    """The page that comes just before ``before`` in the order shown (``None``: the last
    page, the far end of the window), in that order: read the other way, then turned."""
    rows = tx.audit.page(audit_filter, after=before, limit=size, oldest_first=not oldest_first)
    rows.reverse()
    return rows


def count_matching(tx: Repositories, audit_filter: AuditFilter) -> int:
    """How many events match the filter: a narrowed filter counted with its index, a window
    of kinds from the daily rollup and its two edge days (``window_counts``)."""
    if audit_filter.start_ms > audit_filter.end_ms:
        return 0
    if audit_filter.narrowed:
        return tx.audit.count(audit_filter)
    kinds = {kind.value for kind in audit_filter.kinds_to_read}
    return sum(c.events for c in window_counts(tx, audit_filter) if c.event_kind in kinds)


_MAX_TIES: Final = 100_000


def count_ahead(
    tx: Repositories, audit_filter: AuditFilter, row: EventRow, *, oldest_first: bool = False
) -> int:
    """How many matching events come before ``row`` in the order shown: the newer ones
    (``oldest_first``: the older ones); the position of a page that starts at ``row``."""
    ts, seq = row[TS_MS], row[SEQ]
    if oldest_first:
        strictly = replace(audit_filter, end_ms=min(audit_filter.end_ms, ts - 1))
    else:
        strictly = replace(audit_filter, start_ms=max(audit_filter.start_ms, ts + 1))
    same_ms = replace(audit_filter, start_ms=ts, end_ms=ts)
    tied = tx.audit.page(same_ms, limit=_MAX_TIES)
    ahead = sum(1 for other in tied if (other[SEQ] < seq if oldest_first else other[SEQ] > seq))
    return count_matching(tx, strictly) + ahead


def events_since(
    tx: Repositories, audit_filter: AuditFilter, *, after_seq: int, limit: int
) -> list[EventRow]:
    """Matching events recorded after event ``after_seq``, in the order recorded."""
    return tx.audit.since(audit_filter, after_seq=after_seq, limit=limit)


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
        after = Cursor.after(rows[-1])


def find_event(tx: Repositories, seq: int) -> StoredEvent:
    """One event by its sequence number; ``NotFound`` when there is none."""
    event = tx.audit.by_sequence(seq)
    if event is None:
        raise NotFound(f"no event with sequence number {seq}")
    return event


def trail_size(tx: Repositories) -> int:
    """How many events the trail holds."""
    return tx.audit.size()


def names_in_trail(tx: Repositories, text: str, *, limit: int) -> list[str]:
    """Data source names containing ``text``, letter case ignored: those in the trail and
    every name ever given to a data source (deleted ones included); those that start with it
    first, each part sorted."""
    folded = text.casefold()
    found = [name for name in data_source_names(tx) if folded in name.casefold()]
    found.sort(key=lambda name: not name.casefold().startswith(folded))
    return found[:limit]


def data_source_names(tx: Repositories) -> list[str]:
    """Every data source name the trail or the data sources know (deleted ones included),
    sorted."""
    names = set(tx.audit.names_seen("", limit=None))
    names |= set(tx.data_sources.names_ever_used("", limit=None))
    names.discard("")
    return sorted(names)


def bucket_counts(
    tx: Repositories, audit_filter: AuditFilter, *, bucket_ms: int
) -> list[BucketCount]:
    """Events per ``bucket_ms`` (buckets since the epoch) and kind, for exactly the filter,
    counted from the events (for windows of a few days: the rollup counts whole days)."""
    return tx.audit.bucket_counts(audit_filter, bucket_ms=bucket_ms)


def window_counts(tx: Repositories, audit_filter: AuditFilter) -> list[DayCount]:
    """Events per UTC day and kind for exactly the filter.

    Without name, id, user, project or run filters the whole days inside the window come from
    the ``audit_daily_counts`` rollup and only the two partial edge days are counted from
    events; a narrowed filter is counted with one bounded GROUP BY.
    """
    if audit_filter.narrowed:
        return tx.audit.daily_counts_matching(audit_filter)
    first, last = audit_filter.start_ms // DAY_MS, audit_filter.end_ms // DAY_MS
    edges = {first, last}
    counts = [
        c for c in tx.audit.daily_counts(first_day=first, last_day=last) if c.day not in edges
    ]
    for day in sorted(edges):
        edge = replace(
            audit_filter,
            start_ms=max(audit_filter.start_ms, day * DAY_MS),
            end_ms=min(audit_filter.end_ms, (day + 1) * DAY_MS - 1),
        )
        counts += tx.audit.daily_counts_matching(edge)
    return counts
