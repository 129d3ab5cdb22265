"""All repositories of one transaction, so services take a single ``tx`` argument."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from dstrail.domain.trail import CheckpointPolicy
from dstrail.store.audit import AuditRepository
from dstrail.store.datasources import DataSourceRepository
from dstrail.store.driver import DriverReads, Read
from dstrail.store.findings import FindingRepository
from dstrail.store.forensics import ForensicsRepository
from dstrail.store.integrity import HeadHint, IntegrityRepository
from dstrail.store.projects import ProjectRepository
from dstrail.store.retention import RetentionRepository
from dstrail.store.runs import RunRepository
from dstrail.store.streams import StreamRepository
from dstrail.store.transparency import TransparencyRepository
from dstrail.store.users import UserRepository


@dataclass(frozen=True, slots=True)
class ReadAhead:
    """The rows an access decision will read: its caller's key, data source and run."""

    api_key_hash: str | None = None
    data_source_name: str | None = None
    data_source_id: str | None = None
    run_id: str | None = None


class Repositories:
    """The repositories bound to one open transaction."""

    def __init__(
        self,
        connection: Connection,
        *,
        checkpoints: CheckpointPolicy | None = None,
        defer_appends: bool = False,
        head_hint: HeadHint | None = None,
    ) -> None:
        self.connection = connection
        self._reads = DriverReads(connection)
        self.users = UserRepository(connection, self._reads)
        self.projects = ProjectRepository(connection)
        self.runs = RunRepository(connection, self._reads)
        self.data_sources = DataSourceRepository(connection, self._reads)
        self.audit = AuditRepository(
            connection,
            checkpoints,
            reads=self._reads,
            defer_appends=defer_appends,
            head_hint=head_hint,
        )
        self.integrity = IntegrityRepository(connection, checkpoints)
        self.streams = StreamRepository(connection)
        self.transparency = TransparencyRepository(connection)
        self.retention = RetentionRepository(connection)
        self.forensics = ForensicsRepository(connection)
        self.findings = FindingRepository(connection)

    def read_ahead(self, *wanted: ReadAhead) -> None:
        """Read together (one round trip on PostgreSQL) what access decisions are about to
        read one by one: the repositories' next reads of these keys take the rows from here.
        Call it just before those reads. When appends are deferred to the end of the
        transaction (group commit), the audit head row is locked and read in the same trip."""
        reads: list[Read] = []
        for ahead in wanted:
            if ahead.api_key_hash:
                reads.append(self.users.read_by_api_key_hash(ahead.api_key_hash))
            if ahead.data_source_name:
                reads.append(self.data_sources.read_active_by_name(ahead.data_source_name))
            if ahead.data_source_id:
                reads.append(self.data_sources.read_by_id(ahead.data_source_id))
            if ahead.run_id:
                reads.append(self.runs.read_by_id(ahead.run_id))
        if reads and self.audit.defers_appends:
            reads.append(self.audit.read_head())
        self._reads.ahead(reads)
