"""All repositories of one transaction, so services take a single ``tx`` argument."""

from __future__ import annotations

from sqlalchemy import Connection

from dstrail.store.audit import AuditRepository
from dstrail.store.datasources import DataSourceRepository
from dstrail.store.integrity import CheckpointPolicy, IntegrityRepository
from dstrail.store.projects import ProjectRepository
from dstrail.store.runs import RunRepository
from dstrail.store.users import UserRepository


class Repositories:
    """The repositories bound to one open transaction."""

    def __init__(
        self, connection: Connection, *, checkpoints: CheckpointPolicy | None = None
    ) -> None:
        self.connection = connection
        self.users = UserRepository(connection)
        self.projects = ProjectRepository(connection)
        self.runs = RunRepository(connection)
        self.data_sources = DataSourceRepository(connection)
        self.audit = AuditRepository(connection, checkpoints)
        self.integrity = IntegrityRepository(connection, checkpoints)
