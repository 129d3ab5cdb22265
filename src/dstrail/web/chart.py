"""Events over time by kind, as the geometry of a chart (inline SVG, ``_chart.html``) and the
table of its numbers.

Buckets follow the window: minutes or hours for a day or a few (``choose_scale``), days for
months, weeks or months beyond; never "too long". Each kind has a row of its own, scaled to its
own peak, so one deletion shows beside thirty thousand accesses.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
SUB_DAY_STEPS: Final = (
    (MINUTE_MS, "minute"),
    (5 * MINUTE_MS, "5 minutes"),
    (10 * MINUTE_MS, "10 minutes"),
    (15 * MINUTE_MS, "15 minutes"),
    (30 * MINUTE_MS, "30 minutes"),
    (HOUR_MS, "hour"),
    (3 * HOUR_MS, "3 hours"),
    (6 * HOUR_MS, "6 hours"),
    (12 * HOUR_MS, "12 hours"),
)
MAX_BUCKETS: Final = 100
"""The most bars a window is cut into below a day (counted from events)."""
EVENT_COUNTED_MS: Final = 8 * DAY_MS
"""Windows up to this long are bucketed below a day, counted from their events; longer ones
by days (the daily rollup), weeks or months."""
MAX_DAYS: Final = 200
MAX_WEEKS: Final = 160

WIDTH: Final = 960
LEFT: Final = 220
RIGHT: Final = 8
TOP: Final = 6
ROW: Final = 34
BAR: Final = 24
BOTTOM: Final = 40
MIN_BAR: Final = 2.0

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
OTHER_COLOUR: Final = "#455a64"
_ORDER: Final = {kind.value: i for i, kind in enumerate(EventKind)}


@dataclass(frozen=True, slots=True)
class Scale:
    """How a window is cut into bars: a fixed step below a day (counted from events), or
    days, weeks (from Monday) or calendar months (from daily counts)."""

    unit: str
    """``step`` (``step_ms``), ``day``, ``week`` or ``month``."""
    step_ms: int
    label: str
    """One bar per ``label`` (``30 minutes``, ``day``...)."""

    @property
    def from_events(self) -> bool:
        """Whether the counts come from the events (a step below a day), not daily counts."""
        return self.unit == "step"


def choose_scale(start_ms: int, end_ms: int) -> Scale:
    """The bars for a window: the finest step below a day that gives at most
    ``MAX_BUCKETS`` bars for a window up to ``EVENT_COUNTED_MS``; else days, weeks or months."""
    span = end_ms - start_ms + 1
    if span <= EVENT_COUNTED_MS:
        for step, label in SUB_DAY_STEPS:
            if end_ms // step - start_ms // step + 1 <= MAX_BUCKETS:
                return Scale("step", step, label)
    days = end_ms // DAY_MS - start_ms // DAY_MS + 1
    if days <= MAX_DAYS:
        return Scale("day", DAY_MS, "day")
    if days <= MAX_WEEKS * 7:
        return Scale("week", 7 * DAY_MS, "week")
    return Scale("month", 0, "month")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar's time: from ``start_ms`` to ``end_ms`` inclusive, clipped to the window."""

    start_ms: int
    end_ms: int
    aligned_ms: int
    """Where the bucket starts before clipping (a whole step, day, week or month)."""
    x: float
    width: float
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Events of every charted kind in it."""
        return sum(self.counts.values())

    @property
    def start_iso(self) -> str:
        """Its start, ISO-8601."""
        return format_ms(self.start_ms)

    @property
    def end_iso(self) -> str:
        """Its end, ISO-8601."""
        return format_ms(self.end_ms)


@dataclass(frozen=True, slots=True)
class Bar:
    """One kind's count in one bucket."""

    x: float
    y: float
    width: float
    height: float
    count: int
    bucket: int


@dataclass(frozen=True, slots=True)
class KindRow:
    """One kind's row: its bars scaled to its own peak."""

    kind: str
    colour: str
    total: int
    peak: int
    top: float
    bars: list[Bar]


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws, and the table of its numbers."""

    scale: Scale
    buckets: list[Bucket]
    rows: list[KindRow]
    ticks: list[tuple[float, str, str]]
    """(x, label, text anchor) of each time label."""
    start_ms: int
    end_ms: int
    total: int
    width: int = WIDTH
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP

    @property
    def height(self) -> int:
        """The drawing's height: a row a kind, and the time axis."""
        return TOP + max(len(self.rows), 1) * ROW + BOTTOM

    @property
    def axis_y(self) -> int:
        """Where the time axis runs."""
        return TOP + max(len(self.rows), 1) * ROW

    @property
    def kinds(self) -> list[str]:
        """The charted kinds, in row order."""
        return [row.kind for row in self.rows]

    @property
    def start_iso(self) -> str:
        """The window's start, ISO-8601."""
        return format_ms(self.start_ms)

    @property
    def end_iso(self) -> str:
        """The window's end, ISO-8601."""
        return format_ms(self.end_ms)


def _month_start(ms: int) -> int:
    year, month = time.gmtime(ms // 1000)[:2]
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def _next_month(ms: int) -> int:
    year, month = time.gmtime(ms // 1000)[:2]
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def _week_start(ms: int) -> int:
    day = ms // DAY_MS
    return (day - (day + 3) % 7) * DAY_MS  # 1970-01-01 was a Thursday


def bucket_bounds(scale: Scale, start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
    """The buckets of a window, each (first ms, last ms, aligned start), clipped to it."""
    if scale.unit == "month":
        first, advance = _month_start(start_ms), _next_month
    elif scale.unit == "week":
        first, advance = _week_start(start_ms), lambda ms: ms + 7 * DAY_MS
    else:
        first = start_ms - start_ms % scale.step_ms

        def advance(ms: int) -> int:
            return ms + scale.step_ms

    bounds: list[tuple[int, int, int]] = []
    low = first
    while low <= end_ms:
        high = advance(low)
        bounds.append((max(low, start_ms), min(high - 1, end_ms), low))
        low = high
    return bounds


TICK_STEPS: Final = (
    MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS,
    2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS,
)  # fmt: skip
MAX_TICKS: Final = 9


def _month_of(ms: int) -> tuple[int, int, int]:
    year, month, day = time.gmtime(ms // 1000)[:3]
    return year, month, day


def _ticked(scale: Scale, buckets: list[Bucket]) -> list[Bucket]:
    """The buckets that get a time label: at round times, at most about ``MAX_TICKS``."""
    if scale.unit == "step":
        span = buckets[-1].aligned_ms + scale.step_ms - buckets[0].aligned_ms
        every = next(
            (t for t in TICK_STEPS if t >= scale.step_ms and span // t <= MAX_TICKS), DAY_MS
        )
        while span // every > MAX_TICKS:
            every += DAY_MS
        return [b for b in buckets if b.aligned_ms % every == 0] or buckets[:1]
    if scale.unit == "day" and len(buckets) <= MAX_TICKS:
        return buckets
    if scale.unit == "day" and len(buckets) <= 10 * 7:
        return [b for b in buckets if (b.aligned_ms // DAY_MS + 3) % 7 == 0] or buckets[:1]
    if scale.unit in ("day", "week"):
        months: list[Bucket] = []
        seen: set[tuple[int, int]] = set()
        for bucket in buckets:
            year, month, day = _month_of(bucket.aligned_ms)
            if (year, month) not in seen and (day <= 7 if scale.unit == "week" else day == 1):
                seen.add((year, month))
                months.append(bucket)
        every_months = next((k for k in (1, 2, 3, 6, 12) if len(months) // k <= MAX_TICKS), 12)
        return [b for b in months if (_month_of(b.aligned_ms)[1] - 1) % every_months == 0]
    every_months = next((k for k in (1, 2, 3, 6, 12, 24) if len(buckets) // k <= MAX_TICKS), 60)
    return [b for b in buckets if (_month_of(b.aligned_ms)[1] - 1) % every_months == 0] or buckets[
        :1
    ]


def _label(scale: Scale, ms: int, previous: int | None) -> str:
    moment = time.gmtime(ms // 1000)
    if scale.unit == "month":
        return time.strftime("%b %Y", moment)
    if scale.unit in ("day", "week"):
        return time.strftime("%b %d", moment)
    if previous is None or previous // DAY_MS != ms // DAY_MS:
        return time.strftime("%b %d %H:%M", moment)
    return time.strftime("%H:%M", moment)


def _row_order(kind: str) -> tuple[int, int, str]:
    coloured = list(KIND_COLOURS)
    if kind in KIND_COLOURS:
        return (0, coloured.index(kind), kind)
    return (1, _ORDER.get(kind, len(_ORDER)), kind)


def build_chart(
    counts: Iterable[tuple[int, str, int]],
    *,
    scale: Scale,
    start_ms: int,
    end_ms: int,
    kinds: set[str],
) -> Chart:
    """The chart of a window from ``(key, kind, count)`` rows: ``key`` the step bucket
    (``ts_ms // step_ms``) for a step scale, else the UTC day (days since the epoch)."""
    bounds = bucket_bounds(scale, start_ms, end_ms)
    starts = [low for low, _, _ in bounds]
    per_bucket: list[dict[str, int]] = [{} for _ in bounds]
    for key, kind, count in counts:
        if kind not in kinds or not count:
            continue
        ms = key * (scale.step_ms if scale.from_events else DAY_MS)
        if ms + (scale.step_ms if scale.from_events else DAY_MS) <= start_ms or ms > end_ms:
            continue
        index = _index_of(starts, max(ms, start_ms))
        per_bucket[index][kind] = per_bucket[index].get(kind, 0) + count
    plot_left, plot_right = float(LEFT), float(WIDTH - RIGHT)
    slot = (plot_right - plot_left) / len(bounds)
    buckets = [
        Bucket(
            start_ms=low, end_ms=high, aligned_ms=aligned, x=round(plot_left + i * slot, 2),
            width=round(slot, 2), counts=found,
        )
        for i, ((low, high, aligned), found) in enumerate(zip(bounds, per_bucket, strict=True))
    ]  # fmt: skip
    totals: dict[str, int] = {}
    for found in per_bucket:
        for kind, count in found.items():
            totals[kind] = totals.get(kind, 0) + count
    rows: list[KindRow] = []
    for r, kind in enumerate(sorted(totals, key=_row_order)):
        peak = max(found.get(kind, 0) for found in per_bucket)
        top = TOP + r * ROW
        bars = []
        for i, bucket in enumerate(buckets):
            count = bucket.counts.get(kind, 0)
            if not count:
                continue
            height = max(MIN_BAR, BAR * count / peak)
            bars.append(
                Bar(
                    x=round(bucket.x + slot * 0.1, 2), y=round(top + BAR - height, 2),
                    width=round(max(slot * 0.8, 1.0), 2), height=round(height, 2),
                    count=count, bucket=i,
                )
            )  # fmt: skip
        colour = KIND_COLOURS.get(kind, OTHER_COLOUR)
        rows.append(KindRow(kind, colour, totals[kind], peak, float(top), bars))
    ticks: list[tuple[float, str, str]] = []
    last_tick: int | None = None
    for bucket in _ticked(scale, buckets):
        at = bucket.x if scale.from_events else bucket.x + bucket.width / 2
        anchor = "end" if at > WIDTH - RIGHT - 30 else "start" if at < LEFT + 30 else "middle"
        ticks.append((round(at, 2), _label(scale, bucket.aligned_ms, last_tick), anchor))
        last_tick = bucket.aligned_ms
    return Chart(
        scale=scale, buckets=buckets, rows=rows, ticks=ticks, start_ms=start_ms, end_ms=end_ms,
        total=sum(totals.values()),
    )  # fmt: skip


def _index_of(starts: list[int], ms: int) -> int:
    """The bucket holding ``ms`` (``starts`` ascending, ``ms`` at or after the first)."""
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= ms:
            low = middle
        else:
            high = middle - 1
    return low
