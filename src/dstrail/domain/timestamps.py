"""Time as dstrail stores it (epoch milliseconds, UTC) and as the API writes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dstrail.errors import InvalidInput

Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
ACCEPTED_TIME = "ISO-8601 with Z or an offset, e.g. 2023-08-23T21:40:21.669Z"


def system_clock() -> int:
    """Now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def format_ms(ms: int) -> str:
    """``2023-08-23T21:40:21.669Z`` for an epoch-millisecond value."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_iso(value: str, *, field: str) -> int:
    """Epoch milliseconds for an ISO-8601 time that names its offset; else ``InvalidInput``."""
    text = value.strip()
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
