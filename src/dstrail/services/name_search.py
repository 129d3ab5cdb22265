"""What a person typed into a filter, found: users, projects, runs and data source names.

Letter case is ignored; a data source name may hold ``*`` (any characters), and a name that
matches none exactly finds the names that contain it; a run may be given by the first
characters of its id. A miss comes with the closest names, to suggest.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from dstrail.audit.query import data_source_names
from dstrail.domain.ids import is_object_id
from dstrail.domain.projects import Project, Run
from dstrail.domain.users import User
from dstrail.store import Repositories

MIN_RUN_PREFIX: Final = 4
"""The fewest characters of a run id that find runs by their beginning."""
MAX_RUNS: Final = 50
"""The most runs one shortened run id stands for."""
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True, slots=True)
class NameMatch:
    """The data source names one typed name stands for, and how they were found."""

    typed: str
    names: tuple[str, ...]
    how: str
    """``exact`` (letter case ignored), ``pattern`` (with ``*``), ``part`` (names that contain
    it) or ``none``."""
    close: tuple[str, ...] = ()
    """For ``none``: the known names closest to what was typed."""


def close_to(typed: str, known: Sequence[str], *, count: int = 3) -> tuple[str, ...]:
    """The known values closest to ``typed`` (letter case ignored), the closest first."""
    folded = {value.casefold(): value for value in known}
    return tuple(
        folded[value]
        for value in difflib.get_close_matches(typed.casefold(), list(folded), n=count, cutoff=0.6)
    )


def match_name(typed: str, known: Sequence[str]) -> NameMatch:
    """The names of ``known`` that ``typed`` stands for."""
    folded = typed.casefold()
    if "*" in typed:
        pattern = re.compile(".*".join(re.escape(part) for part in folded.split("*")), re.DOTALL)
        found = tuple(name for name in known if pattern.fullmatch(name.casefold()))
        how = "pattern"
    else:
        found = tuple(name for name in known if name.casefold() == folded)
        how = "exact"
        if not found:
            found = tuple(name for name in known if folded in name.casefold())
            how = "part"
    if found:
        return NameMatch(typed=typed, names=found, how=how)
    return NameMatch(typed=typed, names=(), how="none", close=close_to(typed, known))


def match_names(tx: Repositories, typed: Sequence[str]) -> list[NameMatch]:
    """What each typed data source name stands for, among every name the trail or the data
    sources know (deleted ones included)."""
    known = data_source_names(tx)
    return [match_name(value, known) for value in typed]


def users_matching(tx: Repositories, typed: str) -> list[User]:
    """The user with this id, or the users with this username (letter case ignored)."""
    if is_object_id(typed):
        user = tx.users.by_id(typed)
        if user is not None:
            return [user]
    exact = tx.users.by_username(typed)
    if exact is not None:
        return [exact]
    folded = typed.casefold()
    return [user for user in tx.users.all() if user.username.casefold() == folded]


def usernames(tx: Repositories) -> list[str]:
    """Every username, sorted."""
    return sorted(user.username for user in tx.users.all())


def projects_matching(tx: Repositories, typed: str) -> list[Project]:
    """The project with this id, or every project with this name (letter case ignored)."""
    if is_object_id(typed):
        project = tx.projects.by_id(typed)
        if project is not None:
            return [project]
    return tx.projects.named_like(typed)


def project_names(tx: Repositories) -> list[str]:
    """Every project's name, sorted."""
    return tx.projects.all_names()


def runs_matching(tx: Repositories, typed: str) -> list[Run] | None:
    """The run with this id, or the runs whose id starts with these characters (at least
    ``MIN_RUN_PREFIX``, at most ``MAX_RUNS`` runs); ``None`` when ``typed`` is no id nor the
    beginning of one."""
    text = typed.lower()
    if not _HEX.match(text) or len(text) > 24 or len(text) < MIN_RUN_PREFIX:
        return None
    if is_object_id(text):
        run = tx.runs.by_id(text)
        return [run] if run is not None else []
    return tx.runs.starting_with(text, limit=MAX_RUNS)
