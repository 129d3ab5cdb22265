"""The audit page's filters and view: the console's URL parameters and query words, as typed.

Parameters (all optional, shareable in a URL): ``range`` (``24h``, ``7d``, ``30d``, ``6mo`` or
``custom``), ``start`` and ``end`` (for ``custom``: a date, a date and time in UTC, or a time
with its offset), ``name`` (data source names, repeated or comma separated; ``*`` for any
characters, letter case ignored), ``kind`` (event kinds, repeated; none means every data source
kind), ``user`` (username or id), ``project`` (name or id), ``run`` (run id or its first
characters), ``key`` (object key or prefix patterns, ``*`` for any characters), ``ds`` (data
source ids), ``q`` (all of these as words: ``kind:AccessDataSource user:alice name:s3-*``);
the view: ``order`` (``newest`` or ``oldest`` first), ``size`` (events a page), ``col`` (the
columns shown, repeated), ``live`` (``1``: new events appear as they are recorded); paging:
``cursor`` (the page after an event), ``before`` (the page before one), ``last`` (``1``: the
last page). ``ConsoleFilter.query`` writes them back, ``ConsoleFilter.words`` as words.

Reading never raises: each field that is not accepted becomes a ``Problem`` naming the field
and what is accepted, in the console's words.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import urlencode

from dstrail.api.downloads import SIX_MONTHS_MS
from dstrail.domain.ids import is_object_id
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import DATA_SOURCE_KINDS, EventKind

PRESETS: dict[str, tuple[str, int]] = {
    "24h": ("Last 24 hours", DAY_MS),
    "7d": ("Last 7 days", 7 * DAY_MS),
    "30d": ("Last 30 days", 30 * DAY_MS),
    "6mo": ("Last 6 months", SIX_MONTHS_MS),
}
DEFAULT_RANGE = "7d"

DEFAULT_KINDS: tuple[EventKind, ...] = tuple(k for k in EventKind if k in DATA_SOURCE_KINDS)
"""What the console shows when no kind is ticked: every data source event, extensions
included; platform changes (users, keys, projects, runs) only when ticked."""

PAGE_SIZES: Final = (25, 50, 100, 200)
DEFAULT_SIZE: Final = 50
ORDERS: Final = ("newest", "oldest")

COLUMNS: Final = {
    "time": "Time (UTC)",
    "kind": "Event",
    "ds": "Data source",
    "user": "By",
    "project": "Project",
    "run": "Run",
    "details": "Details",
}
"""The columns of the event table, by key; the time (the link to the event) is always shown."""
DEFAULT_COLUMNS: Final = tuple(COLUMNS)

WORDS: Final = {
    "kind": "an event kind",
    "name": "a data source name, * for any characters",
    "ds": "a data source id",
    "user": "a username or user id",
    "project": "a project name or id",
    "run": "a run id or its first characters",
    "key": "an object key or prefix, * for any characters",
}
"""The query words, with what each takes."""

_KINDS_FOLDED: Final = {kind.value.casefold(): kind.value for kind in EventKind}


@dataclass(frozen=True, slots=True)
class Problem:
    """A field that is not accepted: which (its input's id) and what is wrong and accepted."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ConsoleFilter:
    """The filters as the form shows them (strings, as typed), and how the view shows them."""

    range: str = DEFAULT_RANGE
    start: str = ""
    end: str = ""
    names: tuple[str, ...] = field(default=())
    kinds: tuple[str, ...] = field(default=())
    user: str = ""
    project: str = ""
    run: str = ""
    keys: tuple[str, ...] = field(default=())
    ds: tuple[str, ...] = field(default=())
    order: str = "newest"
    size: int = DEFAULT_SIZE
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    live: bool = False

    @property
    def narrowed(self) -> bool:
        """Whether filters beyond the window and kinds are set."""
        return bool(self.names or self.user or self.project or self.run or self.keys or self.ds)

    @property
    def oldest_first(self) -> bool:
        """Whether the oldest events come first."""
        return self.order == "oldest"

    @property
    def moving(self) -> bool:
        """Whether the window moves with the clock (a preset: the last 24 hours...)."""
        return self.range != "custom"

    def narrowed_by(self) -> list[str]:
        """What narrows the view, in words (``names``, ``kinds``, ``user``...)."""
        named = (
            ("names", self.names),
            ("kinds", self.kinds),
            ("user", self.user),
            ("project", self.project),
            ("run", self.run),
            ("object keys", self.keys),
            ("data source id", self.ds),
        )
        return [label for label, value in named if value]

    def pinned(self, start_ms: int, end_ms: int) -> ConsoleFilter:
        """The same filters over a fixed window, so downloads match the view."""
        return replace(self, range="custom", start=format_ms(start_ms), end=format_ms(end_ms))

    def zoomed(self, start_ms: int, end_ms: int) -> str:
        """The query string of these filters over the window from ``start_ms`` to ``end_ms``
        (a custom range; the live view ends, a zoomed window does not move)."""
        return replace(self.pinned(start_ms, end_ms), live=False).query()

    def with_range(self, value: str) -> str:
        """The query string of these filters with another time range (a preset)."""
        return replace(self, range=value).query()

    def with_kinds(self, *kinds: str) -> str:
        """The query string of these filters with only these kinds (none: every kind)."""
        return replace(self, kinds=tuple(kinds)).query()

    def with_view(
        self,
        *,
        order: str | None = None,
        size: int | None = None,
        live: bool | None = None,
    ) -> str:
        """The query string of these filters shown another way."""
        return replace(
            self,
            order=self.order if order is None else order,
            size=self.size if size is None else size,
            live=self.live if live is None else live,
        ).query()

    def query(self, **extra: str) -> str:
        """The URL query string of these filters and view (plus ``extra``)."""
        return urlencode(self.pairs(view=True) + list(extra.items()))

    def filter_query(self) -> str:
        """The URL query string of the filters alone (no view, no paging)."""
        return urlencode(self.pairs(view=False))

    def pairs(self, *, view: bool) -> list[tuple[str, str]]:
        """The (name, value) pairs of these filters (and, with ``view``, of the view)."""
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
        pairs += [("key", key) for key in self.keys]
        pairs += [("ds", ds) for ds in self.ds]
        if not view:
            return pairs
        if self.order != "newest":
            pairs.append(("order", self.order))
        if self.size != DEFAULT_SIZE:
            pairs.append(("size", str(self.size)))
        if self.columns != DEFAULT_COLUMNS:
            pairs += [("col", column) for column in self.columns]
        if self.live:
            pairs.append(("live", "1"))
        return pairs

    def hidden_pairs(self, *without: str) -> list[tuple[str, str]]:
        """The (name, value) pairs of these filters and view but those named: what a form
        that has inputs for those carries in hidden fields."""
        return [(key, value) for key, value in self.pairs(view=True) if key not in without]

    def words(self) -> str:
        """These filters as query words (``kind:AccessDataSource user:alice``)."""
        words = [f"kind:{kind}" for kind in self.kinds]
        words += [f"name:{_quoted(name)}" for name in self.names]
        words += [f"ds:{ds}" for ds in self.ds]
        words += [
            f"{key}:{_quoted(value)}"
            for key, value in (("user", self.user), ("project", self.project), ("run", self.run))
            if value
        ]
        words += [f"key:{_quoted(key)}" for key in self.keys]
        return " ".join(words)


def _quoted(value: str) -> str:
    return shlex.quote(value) if any(c.isspace() or c in "\"'\\" for c in value) else value


def _split(values: Sequence[str]) -> list[str]:
    """Values given repeated or comma separated, each trimmed."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_words(text: str) -> tuple[dict[str, list[str]], list[Problem]]:
    """Query words (``field:value``; a value with spaces in quotes) by field; a word
    without a field is part of a data source name."""
    found: dict[str, list[str]] = {}
    problems: list[Problem] = []
    try:
        tokens = shlex.split(text)
    except ValueError:
        return {}, [Problem("q", "Search: a quote is not closed; close it or remove it.")]
    accepted = ", ".join(f"{word}:" for word in WORDS)
    for token in tokens:
        key, colon, value = token.partition(":")
        if not colon:
            found.setdefault("name", []).append(token)
            continue
        key = key.strip().lower()
        if key not in WORDS:
            problems.append(
                Problem("q", f"Search: “{token}” is not a filter word; accepted: {accepted}")
            )
            continue
        if not value.strip():
            problems.append(Problem("q", f"Search: “{token}” needs a value: {key}:{WORDS[key]}"))
            continue
        found.setdefault(key, []).append(value.strip())
    return found, problems


def read_console_filter(
    params: Mapping[str, Sequence[str]],
) -> tuple[ConsoleFilter, list[Problem]]:
    """The form's values and the query words from the URL, and every field not accepted."""
    problems: list[Problem] = []

    def one(key: str) -> str:
        values = params.get(key, ())
        return values[-1].strip() if values else ""

    words: dict[str, list[str]] = {}
    if "q" in params:
        words, problems = parse_words(one("q"))

    def many(key: str) -> list[str]:
        return _split([*params.get(key, ()), *words.get(key, ())])

    def single(key: str) -> str:
        given = words.get(key, [])
        if len(given) > 1:
            problems.append(Problem("q", f"Search: give {key}: once, not {len(given)} times"))
        return given[-1] if given else one(key)

    window = one("range") or ("custom" if one("start") or one("end") else DEFAULT_RANGE)
    if window not in PRESETS and window != "custom":
        choices = ", ".join(f"{label.lower()} ({key})" for key, (label, _) in PRESETS.items())
        problems.append(
            Problem("range", f"Time range: “{window}” is not accepted; accepted: {choices}, custom")
        )
        window = DEFAULT_RANGE
    kinds: list[str] = []
    for value in many("kind"):
        kind = _KINDS_FOLDED.get(value.casefold())
        if kind is None:
            problems.append(
                Problem("kind", f"Event kind: “{value}” is not one; the kinds are listed below")
            )
        else:
            kinds.append(kind)
    ds: list[str] = []
    for value in many("ds"):
        if is_object_id(value.lower()):
            ds.append(value.lower())
        else:
            problems.append(
                Problem(
                    "ds",
                    f"Data source id: “{value}” is not an id (24 characters, 0-9 and a-f, "
                    "as a data source's page shows it)",
                )
            )
    order = one("order") or "newest"
    if order not in ORDERS:
        problems.append(Problem("order", "Order: newest first or oldest first"))
        order = "newest"
    size = DEFAULT_SIZE
    if one("size"):
        if one("size").isdigit() and int(one("size")) in PAGE_SIZES:
            size = int(one("size"))
        else:
            sizes = ", ".join(str(s) for s in PAGE_SIZES)
            problems.append(Problem("size", f"Events a page: {sizes}"))
    columns = tuple(c for c in COLUMNS if c in params.get("col", ()))
    console = ConsoleFilter(
        range=window,
        start=one("start"),
        end=one("end"),
        names=tuple(dict.fromkeys(many("name"))),
        kinds=tuple(dict.fromkeys(kinds)),
        user=single("user"),
        project=single("project"),
        run=single("run"),
        keys=tuple(
            dict.fromkeys(
                k.strip() for k in [*params.get("key", ()), *words.get("key", ())] if k.strip()
            )
        ),
        ds=tuple(dict.fromkeys(ds)),
        order=order,
        size=size,
        columns=(("time", *(c for c in columns if c != "time")) if columns else DEFAULT_COLUMNS),
        live=one("live") == "1",
    )
    return console, problems
