"""The audit page's filters: the console's URL parameters, turned into an ``AuditFilter``.

Parameters (all optional, shareable in a URL): ``range`` (``24h``, ``7d``, ``30d``, ``6mo`` or
``custom``), ``start`` and ``end`` (for ``custom``: ISO-8601; without an offset they are UTC),
``name`` (data source names, repeated or comma separated), ``kind`` (event kinds, repeated; none
means every kind, dstrail's extensions included), ``user`` (username or id), ``project`` (name or
id), ``run`` (run id) and ``cursor`` (a keyset position from a "next page" link).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from dstrail.api.downloads import SIX_MONTHS_MS
from dstrail.audit.query import distinct, parse_ids, parse_kinds, parse_time
from dstrail.domain.audit_filter import AuditFilter, resolve_window
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import DATA_SOURCE_KINDS, EventKind
from dstrail.errors import InvalidInput
from dstrail.services.projects import find_project
from dstrail.services.users import find_user
from dstrail.store import Repositories

PRESETS: dict[str, tuple[str, int]] = {
    "24h": ("Last 24 hours", DAY_MS),
    "7d": ("Last 7 days", 7 * DAY_MS),
    "30d": ("Last 30 days", 30 * DAY_MS),
    "6mo": ("Last 6 months", SIX_MONTHS_MS),
}
DEFAULT_RANGE = "7d"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")

DEFAULT_KINDS: tuple[EventKind, ...] = tuple(k for k in EventKind if k in DATA_SOURCE_KINDS)
"""What the console shows when no kind is ticked: every data source event, extensions
included; platform changes (users, keys, projects, runs) only when ticked."""


@dataclass(frozen=True, slots=True)
class ConsoleFilter:
    """The filters as the form shows them (strings, as typed)."""

    range: str = DEFAULT_RANGE
    start: str = ""
    end: str = ""
    names: tuple[str, ...] = field(default=())
    kinds: tuple[str, ...] = field(default=())
    user: str = ""
    project: str = ""
    run: str = ""

    @property
    def narrowed(self) -> bool:
        """Whether filters beyond the window and kinds are set."""
        return bool(self.names or self.user or self.project or self.run)

    def pinned(self, start_ms: int, end_ms: int) -> ConsoleFilter:
        """The same filters over a fixed window, so downloads and later pages match the view."""
        return replace(self, range="custom", start=format_ms(start_ms), end=format_ms(end_ms))

    def with_range(self, value: str) -> str:
        """The query string of these filters with another time range (a preset)."""
        return replace(self, range=value).query()

    def query(self, **extra: str) -> str:
        """The URL query string of these filters (plus ``extra``)."""
        pairs: list[tuple[str, str]] = [("range", self.range)]
        if self.range == "custom":
            pairs += [("start", self.start), ("end", self.end)]
        if self.names:
            pairs.append(("name", ",".join(self.names)))
        pairs += [("kind", kind) for kind in self.kinds]
        pairs += [
            (key, value)
            for key, value in (("user", self.user), ("project", self.project), ("run", self.run))
            if value
        ]
        pairs += list(extra.items())
        return urlencode(pairs)


def parse_console_filter(params: Mapping[str, Sequence[str]]) -> ConsoleFilter:
    """The form's values from the URL; unknown ``range`` values are an ``InvalidInput``."""

    def one(key: str) -> str:
        values = params.get(key, ())
        return values[-1].strip() if values else ""

    names: list[str] = []
    for value in params.get("name", ()):
        names += [part.strip() for part in value.split(",") if part.strip()]
    window = one("range") or ("custom" if one("start") or one("end") else DEFAULT_RANGE)
    if window not in PRESETS and window != "custom":
        raise InvalidInput(
            f"range: {window!r} is not accepted; accepted: {', '.join(PRESETS)}, custom"
        )
    return ConsoleFilter(
        range=window,
        start=one("start"),
        end=one("end"),
        names=tuple(dict.fromkeys(names)),
        kinds=tuple(dict.fromkeys(k for k in params.get("kind", ()) if k)),
        user=one("user"),
        project=one("project"),
        run=one("run"),
    )


def _iso(value: str, name: str) -> str | None:
    """A custom range's start or end as typed, made ISO-8601 (a date alone is midnight UTC,
    the end its last millisecond; no offset means UTC); None when empty."""
    if not value:
        return None
    text = value.strip()
    if not _DATE.match(text):
        return text  # let the parser name what is wrong with it
    if len(text) == 10:
        text += "T23:59:59.999" if name == "end" else "T00:00:00"
    has_offset = text.endswith(("Z", "z")) or "+" in text[10:] or "-" in text[10:]
    return text if has_offset else text + "Z"


def _window(console: ConsoleFilter, *, now_ms: int) -> tuple[int, int]:
    if console.range != "custom":
        return now_ms - PRESETS[console.range][1], now_ms
    if not console.start and not console.end:
        raise InvalidInput("custom range: give a start, an end, or both (UTC)")
    return resolve_window(
        parse_time(_iso(console.start, "start"), label="start"),
        parse_time(_iso(console.end, "end"), label="end"),
        now_ms=now_ms,
        labels=("start", "end"),
    )


def audit_filter_of(tx: Repositories, console: ConsoleFilter, *, now_ms: int) -> AuditFilter:
    """The console's fields mapped onto the trail's filter; ``InvalidInput`` or ``NotFound``
    naming the console's field that is wrong. No kind chosen means every kind."""
    start_ms, end_ms = _window(console, now_ms=now_ms)
    performed_by: tuple[str, ...] = ()
    if console.user:
        user = find_user(tx, console.user)
        if user is None:
            raise InvalidInput(f"user: no user named {console.user!r}")
        performed_by = (user.id,)
    return AuditFilter(
        start_ms=start_ms,
        end_ms=end_ms,
        data_source_names=distinct(console.names),
        event_kinds=parse_kinds(console.kinds, label="kind") or DEFAULT_KINDS,
        performed_by=performed_by,
        project_ids=(find_project(tx, console.project).id,) if console.project else (),
        run_ids=parse_ids([console.run], label="run"),
    )
