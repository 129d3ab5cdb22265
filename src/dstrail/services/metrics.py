"""What ``/metrics`` reports, read in one transaction: events by kind, the trail's size and
each stream destination's lag and delivery state."""

from __future__ import annotations

from dataclasses import dataclass

from dstrail.services.streams import DestinationStatus, status_of
from dstrail.store import Repositories


@dataclass(frozen=True, slots=True)
class TrailMetrics:
    """The trail and its streams at one moment."""

    events_by_kind: dict[str, int]
    trail_size: int
    streams: list[DestinationStatus]


def trail_metrics(tx: Repositories, *, now_ms: int) -> TrailMetrics:
    """Read them (for a scraper the entry point has already let in)."""
    return TrailMetrics(
        events_by_kind=tx.audit.counts_by_kind(),
        trail_size=tx.audit.size(),
        streams=[status_of(tx, d, now_ms=now_ms) for d in tx.streams.all()],
    )
