"""Projects and their collaborators."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from dstrail.domain.projects import Project
from dstrail.errors import Conflict
from dstrail.store.schema import project_collaborators, projects


class ProjectRepository:
    """Reads and writes projects."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, project: Project, *, now_ms: int) -> None:
        """Insert a project; ``Conflict`` when its owner already has one of that name."""
        try:
            with self._db.begin_nested():
                self._db.execute(
                    insert(projects).values(
                        id=project.id,
                        name=project.name,
                        owner_id=project.owner_id,
                        created_at=now_ms,
                    )
                )
        except IntegrityError:
            raise Conflict(f"the owner already has a project named {project.name!r}") from None
        if project.collaborator_ids:
            self._db.execute(
                insert(project_collaborators),
                [{"project_id": project.id, "user_id": uid} for uid in project.collaborator_ids],
            )

    def by_id(self, project_id: str) -> Project | None:
        """One project with its collaborators."""
        row = self._db.execute(
            select(projects.c.id, projects.c.name, projects.c.owner_id).where(
                projects.c.id == project_id
            )
        ).first()
        if row is None:
            return None
        collaborators = self._db.scalars(
            select(project_collaborators.c.user_id)
            .where(project_collaborators.c.project_id == project_id)
            .order_by(project_collaborators.c.user_id)
        ).all()
        return Project(
            id=row.id, name=row.name, owner_id=row.owner_id, collaborator_ids=tuple(collaborators)
        )

    def by_ids(self, project_ids: Sequence[str]) -> dict[str, Project]:
        """Projects by id, for the ids that exist."""
        return {p.id: p for pid in project_ids if (p := self.by_id(pid)) is not None}

    def by_name(self, name: str, *, owner_id: str | None = None) -> list[Project]:
        """Projects with this name (of one owner when given)."""
        query = select(projects.c.id).where(projects.c.name == name)
        if owner_id is not None:
            query = query.where(projects.c.owner_id == owner_id)
        return [p for pid in self._db.scalars(query) if (p := self.by_id(pid)) is not None]

    def named_like(self, name: str) -> list[Project]:
        """Projects with this name, letter case ignored (any owner), by id."""
        query = (
            select(projects.c.id)
            .where(func.lower(projects.c.name) == name.lower())
            .order_by(projects.c.id)
        )
        return [p for pid in self._db.scalars(query) if (p := self.by_id(pid)) is not None]

    def all_names(self) -> list[str]:
        """Every project name, each once, sorted."""
        query = select(projects.c.name).distinct().order_by(projects.c.name)
        return list(self._db.scalars(query))

    def names(self, project_ids: list[str]) -> dict[str, str]:
        """Project names by id."""
        if not project_ids:
            return {}
        rows = self._db.execute(
            select(projects.c.id, projects.c.name).where(projects.c.id.in_(project_ids))
        )
        return {row.id: row.name for row in rows}

    def all(self) -> list[Project]:
        """Every project, by name."""
        ids = self._db.scalars(select(projects.c.id).order_by(projects.c.name, projects.c.id))
        return [p for pid in list(ids) if (p := self.by_id(pid)) is not None]

    def add_collaborator(self, project_id: str, user_id: str) -> None:
        """Make a user a collaborator; ``Conflict`` when a concurrent change made them one."""
        try:
            with self._db.begin_nested():
                self._db.execute(
                    insert(project_collaborators).values(project_id=project_id, user_id=user_id)
                )
        except IntegrityError:
            raise Conflict("the user is already a collaborator of the project") from None

    def remove_collaborator(self, project_id: str, user_id: str) -> bool:
        """Remove a collaborator; whether they were one."""
        result = self._db.execute(
            delete(project_collaborators).where(
                project_collaborators.c.project_id == project_id,
                project_collaborators.c.user_id == user_id,
            )
        )
        return result.rowcount > 0
