"""Projects and runs: where access comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Project:
    """A project with its owner and collaborators."""

    id: str
    name: str
    owner_id: str
    collaborator_ids: tuple[str, ...] = field(default=())

    def is_member(self, user_id: str) -> bool:
        """Owner or collaborator."""
        return user_id == self.owner_id or user_id in self.collaborator_ids


class RunType(StrEnum):
    """Domino's execution kinds."""

    WORKSPACE = "Workspace"
    BATCH = "Batch"
    SCHEDULED = "Scheduled"
    APP = "App"
    LAUNCHER = "Launcher"
    ENDPOINT = "Endpoint"
    OTHER = "Other"


@dataclass(frozen=True, slots=True)
class Run:
    """An execution that reaches data sources on a user's behalf."""

    id: str
    run_type: RunType
    project_id: str
    user_id: str
    data_plane_id: str
    started_at_ms: int
    ended_at_ms: int | None

    @property
    def is_running(self) -> bool:
        """Not ended yet."""
        return self.ended_at_ms is None
