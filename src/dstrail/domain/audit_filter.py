"""The audit query: filters and the window rules of the audit API."""

from __future__ import annotations

from dataclasses import dataclass, field

from dstrail.domain.events import DOMINO_KINDS, EventKind
from dstrail.domain.timestamps import DAY_MS
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

    @property
    def kinds_to_read(self) -> tuple[EventKind, ...]:
        """Named kinds, or Domino's seven: extensions only appear when named."""
        if self.event_kinds:
            return self.event_kinds
        return tuple(kind for kind in EventKind if kind in DOMINO_KINDS)


def resolve_window(start_ms: int | None, end_ms: int | None, *, now_ms: int) -> tuple[int, int]:
    """SPEC 3 window: none: last 24 h; start only: up to now; end only: 24 h before it."""
    if start_ms is None and end_ms is None:
        return now_ms - DAY_MS, now_ms
    if end_ms is None:
        assert start_ms is not None
        end_ms = max(now_ms, start_ms)
    if start_ms is None:
        start_ms = end_ms - DAY_MS
    if start_ms > end_ms:
        raise InvalidInput("startTime must not be after endTime")
    return start_ms, end_ms
