"""Projects."""

from __future__ import annotations

from dataclasses import replace

from dstrail.audit.recorder import record_platform_event
from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import Project
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR, User
from dstrail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dstrail.services.users import require_admin, require_user, user_by_id
from dstrail.store import Repositories

MAX_PROJECT_NAME = 256


def create_project(
    tx: Repositories,
    *,
    actor: User,
    name: str,
    owner: User,
    collaborators: list[User],
    now_ms: int,
) -> Project:
    """A new project owned by ``owner``; names are unique per owner. Records
    ``ProjectCreated`` with its first members, performed by ``actor``."""
    if not name.strip() or len(name) > MAX_PROJECT_NAME:
        raise InvalidInput(f"name: must be 1-{MAX_PROJECT_NAME} characters, not blank")
    project = Project(
        id=new_object_id(),
        name=name,
        owner_id=owner.id,
        collaborator_ids=tuple(sorted({u.id for u in collaborators if u.id != owner.id})),
    )
    tx.projects.add(project, now_ms=now_ms)
    record_platform_event(
        tx, kind=EventKind.PROJECT_CREATED, actor=actor, now_ms=now_ms, project_id=project.id,
        metadata={
            "projectId": project.id, "projectName": project.name, "ownerId": project.owner_id,
            "collaboratorIds": ",".join(project.collaborator_ids),
        },
    )  # fmt: skip
    return project


def find_project(tx: Repositories, reference: str) -> Project:
    """A project by id, or by name when that name is unique."""
    project = tx.projects.by_id(reference)
    if project is not None:
        return project
    matches = tx.projects.by_name(reference)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InvalidInput(f"project: {len(matches)} projects are named {reference!r}; use its id")
    raise NotFound(f"project: no project with id or name {reference!r}")


def create_project_by_ids(
    tx: Repositories,
    *,
    actor: User,
    name: str,
    owner_id: str | None,
    collaborator_ids: list[str],
    now_ms: int,
) -> Project:
    """A project owned by the actor, or (a SysAdmin's) by ``owner_id``; users named by id."""
    if owner_id is not None and owner_id != actor.id:
        require_admin(actor, "creating projects for other users")
    owner = user_by_id(tx, owner_id, field="ownerId") if owner_id else actor
    found = tx.users.by_ids(collaborator_ids)
    missing = [uid for uid in collaborator_ids if uid not in found]
    if missing:
        raise InvalidInput(f"collaboratorIds: unknown user ids: {', '.join(missing)}")
    return create_project(
        tx, actor=actor, name=name, owner=owner, collaborators=list(found.values()),
        now_ms=now_ms,
    )  # fmt: skip


def create_project_by_names(
    tx: Repositories, *, name: str, owner: str, collaborators: list[str], now_ms: int
) -> Project:
    """The operator's way: users named by username (errors name the CLI's options)."""
    return create_project(
        tx,
        actor=OPERATOR,
        name=name,
        owner=require_user(tx, username=owner, field="--owner"),
        collaborators=[require_user(tx, username=c, field="--collaborator") for c in collaborators],
        now_ms=now_ms,
    )


def project_by_id(tx: Repositories, project_id: str, *, field: str) -> Project:
    """The project with this id; ``InvalidInput`` naming the field otherwise."""
    project = tx.projects.by_id(project_id)
    if project is None:
        raise InvalidInput(f"{field}: no project with id {project_id!r}")
    return project


def project_names(tx: Repositories, project_ids: list[str]) -> dict[str, str]:
    """Project names by id (unknown ids left out)."""
    return tx.projects.names(project_ids)


def projects_of(tx: Repositories, user: User) -> list[Project]:
    """The projects a user may add data sources to: theirs, or all for a SysAdmin."""
    return [p for p in tx.projects.all() if user.is_admin or p.is_member(user.id)]


def _require_manager(actor: User, project: Project, action: str) -> None:
    if not (actor.is_admin or actor.id == project.owner_id):
        raise Forbidden(f"{action} of project {project.name!r} requires its owner or a SysAdmin")


def add_collaborator(
    tx: Repositories, *, actor: User, project: Project, user: User, now_ms: int
) -> Project:
    """Make ``user`` a collaborator (the owner's or a SysAdmin's change); records
    ``ProjectCollaboratorAdded``. ``Conflict`` when they are a member already."""
    _require_manager(actor, project, "adding collaborators")
    if project.is_member(user.id):
        raise Conflict(f"user {user.username!r} is already a member of project {project.name!r}")
    tx.projects.add_collaborator(project.id, user.id)
    _record_membership(tx, EventKind.COLLABORATOR_ADDED, actor, project, user, now_ms)
    return replace(project, collaborator_ids=tuple(sorted((*project.collaborator_ids, user.id))))


def remove_collaborator(
    tx: Repositories, *, actor: User, project: Project, user: User, now_ms: int
) -> Project:
    """Remove a collaborator (the owner's or a SysAdmin's change); records
    ``ProjectCollaboratorRemoved``. ``Conflict`` when they are not one."""
    _require_manager(actor, project, "removing collaborators")
    if not tx.projects.remove_collaborator(project.id, user.id):
        raise Conflict(f"user {user.username!r} is not a collaborator of project {project.name!r}")
    _record_membership(tx, EventKind.COLLABORATOR_REMOVED, actor, project, user, now_ms)
    return replace(
        project, collaborator_ids=tuple(c for c in project.collaborator_ids if c != user.id)
    )


def _record_membership(
    tx: Repositories, kind: EventKind, actor: User, project: Project, user: User, now_ms: int
) -> None:
    record_platform_event(
        tx, kind=kind, actor=actor, now_ms=now_ms, project_id=project.id,
        metadata={
            "projectId": project.id, "projectName": project.name, "userId": user.id,
            "username": user.username,
        },
    )  # fmt: skip


def add_collaborator_by_ids(
    tx: Repositories, *, actor: User, project_id: str, user_id: str, now_ms: int
) -> Project:
    """The platform API's way of ``add_collaborator``: both named by id."""
    project = _project_at(tx, project_id)
    return add_collaborator(
        tx, actor=actor, project=project, user=_user_at(tx, user_id), now_ms=now_ms
    )


def remove_collaborator_by_ids(
    tx: Repositories, *, actor: User, project_id: str, user_id: str, now_ms: int
) -> Project:
    """The platform API's way of ``remove_collaborator``: both named by id."""
    project = _project_at(tx, project_id)
    return remove_collaborator(
        tx, actor=actor, project=project, user=_user_at(tx, user_id), now_ms=now_ms
    )


def _project_at(tx: Repositories, project_id: str) -> Project:
    project = tx.projects.by_id(project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id!r}")
    return project


def _user_at(tx: Repositories, user_id: str) -> User:
    user = tx.users.by_id(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return user


def add_collaborator_by_names(
    tx: Repositories, *, project: str, username: str, now_ms: int
) -> Project:
    """The operator's way: the project by id or unique name, the user by username."""
    return add_collaborator(
        tx, actor=OPERATOR, project=find_project(tx, project),
        user=require_user(tx, username=username, field="username"), now_ms=now_ms,
    )  # fmt: skip


def remove_collaborator_by_names(
    tx: Repositories, *, project: str, username: str, now_ms: int
) -> Project:
    """The operator's way: the project by id or unique name, the user by username."""
    return remove_collaborator(
        tx, actor=OPERATOR, project=find_project(tx, project),
        user=require_user(tx, username=username, field="username"), now_ms=now_ms,
    )  # fmt: skip
