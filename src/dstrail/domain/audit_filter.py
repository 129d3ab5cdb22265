"""The audit query: filters, the window rules of the audit API, and the keyset cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import DOMINO_KINDS, SEQ, TS_MS, EventKind, EventRow
from dstrail.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What to read from the trail. Lists are OR-ed inside, fields AND-ed together."""

    start_ms: int
    end_ms: int
    data_source_names: tuple[str, ...] = field(default=())
    data_source_ids: tuple[str, ...] = field(default=())
    event_kinds: tuple[EventKind, ...] = field(default=())
    performed_by: tuple[str, ...] = field(default=())
    project_ids: tuple[str, ...] = field(default=())
    run_ids: tuple[str, ...] = field(default=())
    object_keys: tuple[str, ...] = field(default=())
    """Patterns of an access's ``objectKey`` or ``prefix`` (``*``: any characters; letter case
    ignored): the console's ``key:`` word."""

    @property
    def narrowed(self) -> bool:
        """Whether anything beyond the window and the kinds narrows it."""
        return bool(
            self.data_source_names
            or self.data_source_ids
            or self.performed_by
            or self.project_ids
            or self.run_ids
            or self.object_keys
        )

    @property
    def kinds_to_read(self) -> tuple[EventKind, ...]:
        """Named kinds, or Domino's seven: extensions only appear when named."""
        if self.event_kinds:
            return self.event_kinds
        return tuple(kind for kind in EventKind if kind in DOMINO_KINDS)


def resolve_window(
    start_ms: int | None,
    end_ms: int | None,
    *,
    now_ms: int,
    labels: tuple[str, str] = ("startTime", "endTime"),
) -> tuple[int, int]:
    """SPEC 3 window: none: last 24 h; start only: up to now; end only: 24 h before it.
    ``labels``: how the caller names the start and the end, for the error."""
    if start_ms is None and end_ms is None:
        return now_ms - DAY_MS, now_ms
    if end_ms is None:
        assert start_ms is not None
        end_ms = max(now_ms, start_ms)
    if start_ms is None:
        start_ms = end_ms - DAY_MS
    if start_ms > end_ms:
        raise InvalidInput(f"{labels[0]} must not be after {labels[1]}")
    return start_ms, end_ms


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset position: rows strictly older than (timestamp, sequence)."""

    ts_ms: int
    seq: int

    @classmethod
    def after(cls, row: EventRow) -> Cursor:
        """The position just past ``row`` (newest first)."""
        return cls(ts_ms=row[TS_MS], seq=row[SEQ])

    def encode(self) -> str:
        """The ``cursor`` parameter of a next page (API ``Link`` headers and the console)."""
        return f"{self.ts_ms}.{self.seq}"

    @classmethod
    def decode(cls, value: str, *, field: str = "cursor") -> Cursor:
        """A ``cursor`` parameter back to a position; ``InvalidInput`` when malformed."""
        ts, _, seq = value.partition(".")
        if not (ts.lstrip("-").isdigit() and seq.isdigit()):
            raise InvalidInput(f"{field}: {value!r} is not a cursor from a next-page link")
        return cls(ts_ms=int(ts), seq=int(seq))


class DayCount(NamedTuple):
    """How many events of a kind a UTC day holds."""

    day: int
    """Days since the epoch."""
    event_kind: str
    events: int


class BucketCount(NamedTuple):
    """How many events of a kind a time bucket holds."""

    bucket: int
    """``ts_ms // bucket_ms``: buckets since the epoch."""
    event_kind: str
    events: int
