"""The console's time window: a preset that moves with the clock, or a custom range typed as a
date, a date and time in UTC, or a time with its offset."""

from __future__ import annotations

import re
from typing import Final

from dstrail.domain.timestamps import DAY_MS, parse_iso
from dstrail.errors import InvalidInput
from dstrail.web.filters import PRESETS, ConsoleFilter, Problem

ACCEPTED_TIMES: Final = (
    "a date (2024-05-01), a date and time in UTC (2024-05-01 09:30 or 2024-05-01T09:30:15), "
    "or a time with its offset (2024-05-01T09:30+02:00)"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_THEN_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ tT](\d)")
_LABELS: Final = {"start": "From", "end": "To"}


def _iso(text: str, *, end: bool) -> str:
    """A date alone is midnight UTC (the end: its last millisecond); no offset means UTC."""
    if _DATE_ONLY.match(text):
        return text + ("T23:59:59.999Z" if end else "T00:00:00Z")
    text = _DATE_THEN_TIME.sub(r"\1T\2", text)
    has_offset = text.endswith(("Z", "z")) or "+" in text[10:] or "-" in text[10:]
    return text if has_offset else text + "Z"


def parse_console_time(value: str, *, name: str) -> int:
    """Epoch milliseconds of a custom range's start or end (``name``); ``InvalidInput`` in
    the console's words otherwise."""
    label = _LABELS[name]
    try:
        return parse_iso(_iso(value.strip(), end=name == "end"), field=label)
    except InvalidInput:
        raise InvalidInput(
            f"{label}: “{value}” is not a date or time; accepted: {ACCEPTED_TIMES}"
        ) from None


def window_of(
    console: ConsoleFilter, *, now_ms: int, problems: list[Problem]
) -> tuple[int, int] | None:
    """The window of ``console`` at ``now_ms``; None, with the problems added to
    ``problems``, when its custom range is not accepted. A custom range with only a From
    runs to now; with only a To, it is the day before it."""
    if console.range != "custom":
        return now_ms - PRESETS[console.range][1], now_ms
    if not console.start and not console.end:
        problems.append(Problem("start", "Custom range: give a From, a To, or both (UTC)."))
        return None
    bounds: dict[str, int] = {}
    for name, value in (("start", console.start), ("end", console.end)):
        if value:
            try:
                bounds[name] = parse_console_time(value, name=name)
            except InvalidInput as error:
                problems.append(Problem(name, error.message))
    if len(bounds) < bool(console.start) + bool(console.end):
        return None
    start = bounds.get("start")
    end = bounds.get("end")
    if end is None:
        end = max(now_ms, start or now_ms)
    if start is None:
        start = end - DAY_MS
    if start > end:
        problems.append(
            Problem("start", "From is after To: give a From at or before the To (both in UTC).")
        )
        return None
    return start, end
