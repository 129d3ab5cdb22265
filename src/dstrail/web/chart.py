"""Events per UTC day by kind, as the geometry of a stacked bar chart (drawn as inline SVG by
``_chart.html``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from dstrail.domain.audit_filter import DayCount
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import EventKind

MAX_DAYS = 400
WIDTH = 960
HEIGHT = 180
LEFT = 40
BOTTOM = 22
TOP = 8

KIND_COLOURS: dict[str, str] = {
    EventKind.CREATE_DATA_SOURCE.value: "#2f7d32",
    EventKind.DELETE_DATA_SOURCE.value: "#c62828",
    EventKind.CHANGE_OF_PERMISSIONS.value: "#ef6c00",
    EventKind.CHANGE_OF_OWNERSHIP.value: "#6a1b9a",
    EventKind.ACCESS_DATA_SOURCE.value: "#1565c0",
    EventKind.ASSOCIATED_TO_PROJECT.value: "#00838f",
    EventKind.DISSOCIATED_FROM_PROJECT.value: "#827717",
    EventKind.UPDATE_DATA_SOURCE.value: "#5d4037",
    EventKind.UPDATE_CREDENTIALS.value: "#ad1457",
    EventKind.ACCESS_REFUSED.value: "#000000",
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One kind's part of one day's column."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws."""

    bars: list[Bar]
    ticks: list[tuple[float, str]]
    y_max: int
    total: int
    legend: list[tuple[str, str, int]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM
    top: int = TOP


def _day_label(day: int) -> str:
    return time.strftime("%b %d", time.gmtime(day * DAY_MS // 1000))


def build_chart(
    counts: Iterable[DayCount], *, start_ms: int, end_ms: int, kinds: set[str]
) -> Chart | None:
    """The chart of ``(day, kind, count)`` rows for the window; ``None`` when it is too long."""
    first, last = start_ms // DAY_MS, end_ms // DAY_MS
    days = last - first + 1
    if days > MAX_DAYS:
        return None
    per_day: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for day, kind, count in counts:
        if kind not in kinds or not first <= day <= last:
            continue
        per_day.setdefault(day, {})[kind] = per_day.get(day, {}).get(kind, 0) + count
        totals[kind] = totals.get(kind, 0) + count
    y_max = max((sum(d.values()) for d in per_day.values()), default=0)
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / days
    bars: list[Bar] = []
    for day, by_kind in sorted(per_day.items()):
        x = LEFT + (day - first) * slot
        y = float(HEIGHT - BOTTOM)
        for kind in KIND_COLOURS:
            count = by_kind.get(kind, 0)
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            bars.append(
                Bar(
                    x=round(x + slot * 0.1, 2),
                    y=round(y, 2),
                    width=round(max(slot * 0.8, 1.0), 2),
                    height=round(h, 2),
                    colour=KIND_COLOURS[kind],
                    title=f"{_day_label(day)} (UTC): {count} {kind}",
                )
            )
    step = max(1, days // 8)
    ticks = [
        (round(LEFT + (d + 0.5) * slot, 2), _day_label(first + d)) for d in range(0, days, step)
    ]
    legend = [
        (kind, colour, totals[kind]) for kind, colour in KIND_COLOURS.items() if kind in totals
    ]
    return Chart(bars=bars, ticks=ticks, y_max=y_max, total=sum(totals.values()), legend=legend)
