"""The console's filter resolved against the clock and the trail: its window, and the names,
users, projects and runs that what was typed stands for, as an ``AuditFilter``.

What is not accepted is a ``Problem`` (nothing is read for it: the page keeps the last view);
what matches nothing is a warning (the page answers, with fewer or no events); what a typed
name stood for is a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from dstrail.audit.query import parse_kinds
from dstrail.domain.audit_filter import AuditFilter
from dstrail.errors import InvalidInput
from dstrail.services import datasources as datasource_service
from dstrail.services import name_search
from dstrail.store import Repositories
from dstrail.web.filters import (
    DEFAULT_KINDS,
    PRESETS,
    ConsoleFilter,
    Problem,
    read_console_filter,
)
from dstrail.web.times import window_of

MAX_LISTED: Final = 8
"""How many names a note lists before it says how many more."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning or a note about one field (its input's id), with names to suggest."""

    field: str
    message: str
    suggestions: tuple[str, ...] = ()
    typed: str = ""
    """What was typed, for a miss (the value each suggestion replaces)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A console filter resolved: the ``AuditFilter`` (None when a problem stops the read),
    and what to tell the reader about each field."""

    audit_filter: AuditFilter | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    notes: list[Notice] = field(default_factory=list)
    matches_nothing: bool = False
    """A name, user, project or run that stands for nothing: no event can match."""

    @property
    def readable(self) -> AuditFilter | None:
        """The filter to read with, None when there is nothing to read."""
        return None if self.matches_nothing else self.audit_filter


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _names(
    tx: Repositories, typed: Sequence[str], warnings: list[Notice], notes: list[Notice]
) -> tuple[tuple[str, ...], bool]:
    """The names the typed ones stand for; and whether every one of them stood for none."""
    if not typed:
        return (), False
    found: list[str] = []
    for match in name_search.match_names(tx, typed):
        if match.how == "none":
            warnings.append(
                Notice("name", f"No data source has ever been named “{match.typed}”.",
                       match.close, match.typed)
            )  # fmt: skip
            continue
        found += match.names
        if match.how == "part":
            notes.append(
                Notice("name", f"“{match.typed}” stands for the names that contain it: "
                       f"{_listed(match.names)}.")
            )  # fmt: skip
        elif match.how == "pattern":
            notes.append(Notice("name", f"“{match.typed}” stands for {_listed(match.names)}."))
        elif match.names != (match.typed,):
            notes.append(Notice("name", f"“{match.typed}” is {_listed(match.names)}."))
    return tuple(dict.fromkeys(found)), not found


def _user(
    tx: Repositories, typed: str, warnings: list[Notice], notes: list[Notice]
) -> tuple[str, ...] | None:
    users = name_search.users_matching(tx, typed)
    if not users:
        close = name_search.close_to(typed, name_search.usernames(tx))
        warnings.append(Notice("user", f"No user is named “{typed}” or has that id.", close, typed))
        return None
    if [u.username for u in users] != [typed]:
        notes.append(Notice("user", f"User “{typed}” is {', '.join(u.username for u in users)}."))
    return tuple(user.id for user in users)


def _project(
    tx: Repositories, typed: str, warnings: list[Notice], notes: list[Notice]
) -> tuple[str, ...] | None:
    projects = name_search.projects_matching(tx, typed)
    if not projects:
        close = name_search.close_to(typed, name_search.project_names(tx))
        warnings.append(
            Notice("project", f"No project is named “{typed}” or has that id.", close, typed)
        )
        return None
    if len(projects) > 1:
        notes.append(
            Notice("project", f"{len(projects)} projects are named “{typed}”: the events of all "
                   "of them are shown (give a project's id for one).")
        )  # fmt: skip
    return tuple(project.id for project in projects)


def _run(
    tx: Repositories, typed: str, problems: list[Problem], warnings: list[Notice]
) -> tuple[str, ...] | None:
    runs = name_search.runs_matching(tx, typed)
    if runs is None:
        problems.append(
            Problem("run", f"Run: “{typed}” is not a run id nor its first characters (at least "
                    f"{name_search.MIN_RUN_PREFIX} of 0-9 and a-f)")
        )  # fmt: skip
        return ()
    if not runs:
        warnings.append(Notice("run", f"No run has an id that is or starts with “{typed}”."))
        return None
    return tuple(run.id for run in runs)


def _data_sources(tx: Repositories, ids: Sequence[str], notes: list[Notice]) -> None:
    for ds_id in ids:
        ds = datasource_service.find_any(tx, ds_id)
        if ds is None:
            notes.append(Notice("ds", f"No data source has the id {ds_id} now; its events are "
                                "shown if the trail holds any."))  # fmt: skip
        else:
            state = "" if ds.is_active else " (deleted)"
            notes.append(Notice("ds", f"Data source id {ds_id} is {ds.name}{state}: only its "
                                "events are shown, not those of other data sources named so."))  # fmt: skip


def resolve(
    tx: Repositories,
    console: ConsoleFilter,
    *,
    now_ms: int,
    problems: Sequence[Problem] = (),
) -> Resolved:
    """``console`` as a filter of the trail at ``now_ms``, with its problems (those found
    reading it, ``problems``, and the window's), warnings and notes."""
    found = list(problems)
    warnings: list[Notice] = []
    notes: list[Notice] = []
    window = window_of(console, now_ms=now_ms, problems=found)
    names, no_names = _names(tx, console.names, warnings, notes)
    performed_by = _user(tx, console.user, warnings, notes) if console.user else ()
    project_ids = _project(tx, console.project, warnings, notes) if console.project else ()
    run_ids = _run(tx, console.run, found, warnings) if console.run else ()
    _data_sources(tx, console.ds, notes)
    nothing = no_names or performed_by is None or project_ids is None or run_ids is None
    if found or window is None:
        return Resolved(None, found, warnings, notes, matches_nothing=nothing)
    audit_filter = AuditFilter(
        start_ms=window[0],
        end_ms=window[1],
        data_source_names=names,
        data_source_ids=console.ds,
        event_kinds=parse_kinds(console.kinds, label="kind") or DEFAULT_KINDS,
        performed_by=performed_by or (),
        project_ids=project_ids or (),
        run_ids=run_ids or (),
        object_keys=console.keys,
    )
    return Resolved(audit_filter, found, warnings, notes, matches_nothing=nothing)


def parse_console_filter(params: Mapping[str, Sequence[str]]) -> ConsoleFilter:
    """The form's values from the URL; the first field not accepted is an ``InvalidInput``."""
    console, problems = read_console_filter(params)
    if problems:
        raise InvalidInput(problems[0].message)
    return console


def audit_filter_of(tx: Repositories, console: ConsoleFilter, *, now_ms: int) -> AuditFilter:
    """The console's fields as the trail's filter (the files of a view); ``InvalidInput``
    for a field not accepted and for a name, user, project or run that stands for nothing."""
    resolved = resolve(tx, console, now_ms=now_ms)
    if resolved.problems:
        raise InvalidInput(resolved.problems[0].message)
    if resolved.audit_filter is None or resolved.matches_nothing:
        raise InvalidInput(resolved.warnings[0].message if resolved.warnings else "no window")
    return resolved.audit_filter


__all__ = [
    "PRESETS",
    "Notice",
    "Resolved",
    "audit_filter_of",
    "parse_console_filter",
    "resolve",
]
