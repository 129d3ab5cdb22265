"""How long the trail is kept: the policy, who may change it how, and which events a purge
may remove.

A policy keeps everything (the default) or keeps ``days`` days hot. A locked policy is in
compliance mode, as S3 Object Lock's: it can be lengthened but never shortened, unlocked or
removed, by anyone. Purges remove whole UTC months: an event goes once the month it happened
in has entirely left the policy's window, so nothing younger than ``days`` days is ever removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dstrail.domain.timestamps import DAY_MS

MIN_DAYS = 1
MAX_DAYS = 36_500
DAYS_RULE = (
    f"a whole number of days from {MIN_DAYS} to {MAX_DAYS:,}, or 'forever' to keep everything"
)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """``days`` None: keep everything. ``set_at``/``set_by``: the last change (0, '' never)."""

    days: int | None
    locked: bool
    set_at: int = 0
    set_by: str = ""

    def describe(self) -> str:
        """The policy in words."""
        kept = "keep everything" if self.days is None else f"keep {self.days} days hot"
        return kept + (" (locked: it can be lengthened, never shortened)" if self.locked else "")


def parse_days(value: object) -> int | None:
    """The days a user gave (a number, or 'forever'); ``ValueError`` saying what is accepted."""
    if isinstance(value, str) and value.strip().lower() in ("forever", "all", "keep-all"):
        return None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"days: {value!r} is not accepted; accepted: {DAYS_RULE}")
    text = str(value).strip()
    if not text.isdigit() or not MIN_DAYS <= int(text) <= MAX_DAYS:
        raise ValueError(f"days: {str(value)[:40]!r} is not accepted; accepted: {DAYS_RULE}")
    return int(text)


def refusal(current: RetentionPolicy, *, days: int | None, lock: bool) -> str | None:
    """Why ``current`` may not become (``days``, ``lock``), or None when it may. A lock only
    ever tightens: once set, the policy may only keep events longer, and stays locked."""
    if not current.locked:
        return None
    if not lock:
        return f"the policy is locked ({current.describe()}): it cannot be unlocked"
    if current.days is None and days is not None:
        return "the policy is locked to keep everything: it cannot be shortened"
    if current.days is not None and days is not None and days < current.days:
        return (
            f"the policy is locked at {current.days} days: it can be lengthened, "
            f"never shortened (asked: {days})"
        )
    return None


def month_start(ms: int) -> int:
    """The first millisecond of the UTC month of ``ms``."""
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return int(datetime(when.year, when.month, 1, tzinfo=UTC).timestamp() * 1000)


def next_month_start(ms: int) -> int:
    """The first millisecond of the UTC month after that of ``ms``."""
    when = datetime.fromtimestamp(month_start(ms) / 1000, tz=UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def month_label(ms: int) -> str:
    """``YYYY-MM`` of the UTC month of ``ms``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def purge_cutoff(days: int, now_ms: int) -> int:
    """Events before this instant may be purged under a ``days``-day policy: the start of the
    UTC month in which the window begins (every month before it has left the window whole)."""
    return month_start(now_ms - days * DAY_MS)


def next_purge_at(days: int, now_ms: int) -> int:
    """When the next month leaves the window: the cutoff moves on then."""
    return next_month_start(now_ms - days * DAY_MS) + days * DAY_MS
