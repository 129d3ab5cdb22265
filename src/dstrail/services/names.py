"""Names for the ids events carry: usernames, project names and run labels, resolved in bulk
for a page (or a chunk) of events, so that people read names where the stored metadata holds
ids. The stored metadata is never changed; names are looked up when an event is shown or
exported, and an id nobody knows keeps no name (the id is shown alone).

``names_for(tx, rows)`` resolves every id a page of events names; ``Names.columns`` gives the
name columns of the exports (``NAME_COLUMNS``) and ``Names.of(key, value)`` the names of one
metadata value that holds ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import orjson

from dstrail.domain.trail import METADATA, EventRow
from dstrail.store import Repositories, Store

USER_ID_KEYS: Final = frozenset(
    {
        "addedUserIds",
        "removedUserIds",
        "userId",
        "userIds",
        "ownerId",
        "newOwnerId",
        "previousOwnerId",
        "credentialUserId",
        "collaboratorIds",
    }
)
"""Metadata keys whose value is a user id, or user ids separated by commas."""
PROJECT_ID_KEYS: Final = frozenset({"projectId", "projectIds"})
"""Metadata keys whose value is a project id (or ids separated by commas)."""
RUN_ID_KEYS: Final = frozenset({"runId", "runIds", "claimedRunId"})
"""Metadata keys whose value is a run id (or ids separated by commas)."""

NAME_COLUMNS: Final = (
    "projectId",
    "projectName",
    "runId",
    "runLabel",
    "addedUsernames",
    "removedUsernames",
)
"""The columns the exports add for names (after the stored fields): an event's project and
run with their names, and the users a change of permissions added and removed, by name."""

SHORT_ID = 8
"""How many of a run id's last characters its label shows (the first ones of an ObjectId are
its creation time, shared by runs started in the same second)."""
_BATCH = 500


def split_ids(value: str) -> list[str]:
    """The ids of a metadata value: one id, or several separated by commas."""
    return [part.strip() for part in value.split(",") if part.strip()]


def run_label(run_type: str, run_id: str) -> str:
    """A run as people name it: its type and the end of its id (``Batch …a91c4e2f``)."""
    short = run_id if len(run_id) <= SHORT_ID else "…" + run_id[-SHORT_ID:]
    return f"{run_type} {short}".strip()


@dataclass(frozen=True, slots=True)
class Names:
    """Names by id: usernames, project names and run labels (ids nobody knows are absent)."""

    users: Mapping[str, str] = field(default_factory=dict)
    projects: Mapping[str, str] = field(default_factory=dict)
    runs: Mapping[str, str] = field(default_factory=dict)
    asked: frozenset[str] = frozenset()
    """Every id looked up so far (found or not), so that a later chunk does not ask again."""

    def user(self, user_id: str) -> str:
        """The username of ``user_id``; "" when unknown."""
        return self.users.get(user_id, "")

    def project(self, project_id: str) -> str:
        """The name of ``project_id``; "" when unknown."""
        return self.projects.get(project_id, "")

    def run(self, run_id: str) -> str:
        """The label of ``run_id`` (``Batch …a91c4e2f``); "" when unknown."""
        return self.runs.get(run_id, "")

    def of(self, key: str, value: str) -> str:
        """The names of a metadata value that holds ids (``bob, carol`` for
        ``addedUserIds``); "" when ``key`` holds no ids or none of them is known."""
        if key in USER_ID_KEYS:
            lookup = self.users
        elif key in PROJECT_ID_KEYS:
            lookup = self.projects
        elif key in RUN_ID_KEYS:
            lookup = self.runs
        else:
            return ""
        ids = split_ids(value)
        if not any(i in lookup for i in ids):
            return ""
        return ", ".join(lookup.get(i, i) for i in ids)

    def columns(self, metadata: Mapping[str, str]) -> dict[str, str]:
        """The ``NAME_COLUMNS`` of one event: its project and run, with their names (the
        project name the event stored when the project is gone), and the usernames a change
        of permissions added and removed."""
        project_id = str(metadata.get("projectId", ""))
        run_id = str(metadata.get("runId", ""))
        run = self.run(run_id)
        if run_id and not run and metadata.get("runType"):
            run = run_label(str(metadata["runType"]), run_id)
        return {
            "projectId": project_id,
            "projectName": self.project(project_id) or str(metadata.get("projectName", "")),
            "runId": run_id,
            "runLabel": run,
            "addedUsernames": self._usernames(metadata.get("addedUserIds", "")),
            "removedUsernames": self._usernames(metadata.get("removedUserIds", "")),
        }

    def _usernames(self, value: object) -> str:
        return ", ".join(self.users.get(i, i) for i in split_ids(str(value)))


def _unasked(
    metadata: Iterable[Mapping[str, str]], known: Names
) -> tuple[set[str], set[str], set[str]]:
    """The user, project and run ids this metadata holds that ``known`` has not asked for."""
    users: set[str] = set()
    projects: set[str] = set()
    runs: set[str] = set()
    for details in metadata:
        for key, value in details.items():
            if key in USER_ID_KEYS:
                users.update(split_ids(str(value)))
            elif key in PROJECT_ID_KEYS:
                projects.update(split_ids(str(value)))
            elif key in RUN_ID_KEYS:
                runs.update(split_ids(str(value)))
    return users - known.asked, projects - known.asked, runs - known.asked


def _batches(ids: set[str]) -> Iterable[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _BATCH):
        yield ordered[start : start + _BATCH]


def _resolve(tx: Repositories, wanted: tuple[set[str], set[str], set[str]], known: Names) -> Names:
    users, projects, runs = wanted
    if not (users or projects or runs):
        return known
    found_users = dict(known.users)
    for batch in _batches(users):
        found_users.update({uid: u.username for uid, u in tx.users.by_ids(batch).items()})
    found_projects = dict(known.projects)
    for batch in _batches(projects):
        found_projects.update(tx.projects.names(batch))
    found_runs = dict(known.runs)
    for batch in _batches(runs):
        found_runs.update(
            {rid: run_label(r.run_type.value, rid) for rid, r in tx.runs.by_ids(batch).items()}
        )
    return Names(
        users=found_users,
        projects=found_projects,
        runs=found_runs,
        asked=known.asked | users | projects | runs,
    )


def names_of_metadata(
    tx: Repositories, metadata: Iterable[Mapping[str, str]], *, known: Names | None = None
) -> Names:
    """The names of every id in these events' (parsed) metadata, added to ``known``: only
    ids not asked before are looked up."""
    known = known or Names()
    return _resolve(tx, _unasked(metadata, known), known)


def names_for(tx: Repositories, rows: Iterable[EventRow], *, known: Names | None = None) -> Names:
    """The names of every user, project and run these events' metadata names by id."""
    return names_of_metadata(tx, (orjson.loads(row[METADATA]) for row in rows), known=known)


class ExportNames:
    """The name columns of an export (``NAME_COLUMNS``), a chunk at a time: each chunk's ids
    not seen before are looked up in a short read of their own (``ChunkColumns`` of
    ``dstrail.audit.serialize``)."""

    columns: tuple[str, ...] = NAME_COLUMNS

    def __init__(self, store: Store) -> None:
        self._store = store
        self._names = Names()

    def values(
        self, chunk: list[EventRow], metadata: list[dict[str, str]]
    ) -> list[Mapping[str, str]]:
        """The name columns of each row of ``chunk``."""
        del chunk
        wanted = _unasked(metadata, self._names)
        if any(wanted):
            with self._store.read() as tx:
                self._names = _resolve(tx, wanted, self._names)
        return [self._names.columns(details) for details in metadata]
