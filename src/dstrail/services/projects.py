"""Projects."""

from __future__ import annotations

from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import Project
from dstrail.domain.users import User
from dstrail.errors import InvalidInput, NotFound
from dstrail.services.users import require_admin, require_user, user_by_id
from dstrail.store import Repositories

MAX_PROJECT_NAME = 256


def create_project(
    tx: Repositories, *, name: str, owner: User, collaborators: list[User], now_ms: int
) -> Project:
    """A new project owned by ``owner``; names are unique per owner."""
    if not name.strip() or len(name) > MAX_PROJECT_NAME:
        raise InvalidInput(f"name: must be 1-{MAX_PROJECT_NAME} characters, not blank")
    project = Project(
        id=new_object_id(),
        name=name,
        owner_id=owner.id,
        collaborator_ids=tuple(sorted({u.id for u in collaborators if u.id != owner.id})),
    )
    tx.projects.add(project, now_ms=now_ms)
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
        tx, name=name, owner=owner, collaborators=list(found.values()), now_ms=now_ms
    )


def create_project_by_names(
    tx: Repositories, *, name: str, owner: str, collaborators: list[str], now_ms: int
) -> Project:
    """The operator's way: users named by username (errors name the CLI's options)."""
    return create_project(
        tx,
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
