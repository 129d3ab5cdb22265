"""Domino's lookup by name (``GET /v4/datasource/name/{name}``): the data source for code that
will use it, recorded as ``AccessDataSource`` (``getDataSource``) in the data path's
transactions, with what its document names: users, its place in each project and, for a
SysAdmin, the projects themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Project
from dstrail.domain.users import User
from dstrail.errors import NotFound
from dstrail.services.access import (
    AccessClaim,
    Operation,
    decide_access,
    read_ahead,
    record_access,
    run_access,
)
from dstrail.services.auth import Caller, CallerCredentials, authenticate
from dstrail.store import Repositories, Store


@dataclass(frozen=True, slots=True)
class AdminView:
    """What a SysAdmin's lookup adds: the data source's projects and their last activity
    (the newest event of the trail naming each; None for none)."""

    projects: dict[str, Project]
    last_active_ms: dict[str, int | None]


@dataclass(frozen=True, slots=True)
class LookedUp:
    """A looked-up data source and everything its document names."""

    data_source: DataSource
    users: dict[str, User]
    """The owner, the creator, who added it to each project, and each project's owner."""
    admin: AdminView | None


def look_up(
    tx: Repositories, *, caller: Caller, name: str, claim: AccessClaim, now_ms: int
) -> LookedUp:
    """The active data source named ``name``; records ``getDataSource`` (or the refusal)."""
    ds = tx.data_sources.active_by_name(name)
    if ds is None:
        raise NotFound(f"Datasource with name {name} does not exist")
    details = {"operation": Operation.GET_DATA_SOURCE}
    run = decide_access(tx, caller=caller, data_source=ds, claim=claim, details=details)
    record_access(
        tx, grant_to=caller.user, data_source=ds, run=run, claim=claim, details=details,
        now_ms=now_ms,
    )  # fmt: skip
    links = ds.project_links
    admin = None
    if caller.user.is_admin and links:
        project_ids = [link.project_id for link in links]
        admin = AdminView(
            projects=tx.projects.by_ids(project_ids),
            last_active_ms=tx.audit.last_event_ms_of_projects(project_ids),
        )
    named = {ds.owner_id, ds.added_by, *(link.added_by for link in links)}
    if admin is not None:
        named |= {project.owner_id for project in admin.projects.values()}
    users = {caller.user.id: caller.user}
    missing = sorted(named - set(users) - {""})
    if missing:
        users.update(tx.users.by_ids(missing))
    return LookedUp(data_source=ds, users=users, admin=admin)


def look_up_by_name(
    store: Store,
    *,
    credentials: CallerCredentials,
    name: str,
    claim: AccessClaim,
    signing_key: str,
    clock: Callable[[], int],
) -> LookedUp:
    """``look_up`` in the data path's transactions."""

    def decide(tx: Repositories) -> LookedUp:
        caller = authenticate(tx, credentials, signing_key=signing_key)
        return look_up(tx, caller=caller, name=name, claim=claim, now_ms=clock())

    ahead = read_ahead(api_key=credentials.api_key, claim=claim, name=name)
    return run_access(store, decide, read_ahead=ahead, clock=clock)
