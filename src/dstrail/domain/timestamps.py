"""Time as dstrail stores it (epoch milliseconds, UTC) and as the API writes it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dstrail.errors import InvalidInput

Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_SPACE_OFFSET = re.compile(r"(\d:\d\d(?:\.\d+)?) (\d\d(?::?\d\d)?)$")
ACCEPTED_TIME = "ISO-8601 with Z or an offset, e.g. 2023-08-23T21:40:21.669Z"


def system_clock() -> int:
    """Now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000


_DAY_PREFIXES: dict[int, str] = {}
_HOUR_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SECONDS = [f"{s:02d}" for s in range(60)]
_MILLIS = [f".{ms:03d}Z" for ms in range(1000)]


def format_ms(ms: int) -> str:
    """``2023-08-23T21:40:21.669Z`` for an epoch-millisecond value.

    Hot: the audit API formats every row with it. The date part is computed once a day
    (``strftime``) and the rest comes from small tables, ~5x faster than ``strftime`` a row;
    the output is the same as ``strftime("%Y-%m-%dT%H:%M:%S", gmtime(ms // 1000))``.
    """
    day, ms_of_day = divmod(ms, DAY_MS)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        if len(_DAY_PREFIXES) >= 100_000:
            _DAY_PREFIXES.clear()
        prefix = _DAY_PREFIXES[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    minute, ms_of_minute = divmod(ms_of_day, 60_000)
    second, millis = divmod(ms_of_minute, 1000)
    return prefix + _HOUR_MINUTES[minute] + _SECONDS[second] + _MILLIS[millis]


def parse_iso(value: str, *, field: str) -> int:
    """Epoch milliseconds for an ISO-8601 time that names its offset; else ``InvalidInput``."""
    text = value.strip()
    # An offset typed raw in a URL ("+02:00") arrives with its "+" decoded to a space.
    text = _SPACE_OFFSET.sub(r"\1+\2", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: cannot parse {value!r}; accepted: {ACCEPTED_TIME}") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field}: {value!r} has no time zone; accepted: {ACCEPTED_TIME}")
    return (parsed - _EPOCH) // _ONE_MS


def day_of(ms: int) -> int:
    """The UTC day number (days since the epoch) of a time."""
    return ms // DAY_MS
