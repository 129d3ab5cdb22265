"""Projects."""

from __future__ import annotations

from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import Project
from dstrail.domain.users import User
from dstrail.errors import InvalidInput, NotFound
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
