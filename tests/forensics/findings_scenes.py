"""Histories for the detection rules' tests, made through the real services (users, data
sources, permissions, transfers, deletions, runs, accesses and refusals through the data
path), with a clock the test moves; and the findings the follower then raises.

``RULES_SETTINGS`` are small thresholds that short histories can cross."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from sqlalchemy import insert, text

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.forensics.findings import Finding, FindingFilter, FindingView, Rule
from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import Project, RunType
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.domain.users import Role, User
from dstrail.services import access
from dstrail.services import datasources as ds_service
from dstrail.services.access import AccessClaim, AccessRequest, Grant
from dstrail.services.auth import CallerCredentials
from dstrail.services.finding_answers import findings_page
from dstrail.services.forensics import Follower, follower_for, rebuild
from dstrail.services.refusals import writing
from dstrail.services.runs import StartedRun
from dstrail.settings import Settings
from dstrail.store.schema import users
from tests.services.support import make_project, start_run
from tests.support import Login, SettableClock, create_dataset, make_user

HOUR: Final = 3_600_000
DAY: Final = 24 * HOUR
MINUTE: Final = 60_000
START_MS: Final = 1_780_000_000_000 - 1_780_000_000_000 % DAY + 8 * HOUR
"""08:00 UTC on a day in May 2026: the clock of every scene starts there."""

RULES_SETTINGS: Final[dict[str, Any]] = {
    "forensics_first_access_lookback_days": 2,
    "forensics_first_access_user_grace_days": 1,
    "forensics_first_access_grant_grace_days": 1,
    "forensics_revocation_window_hours": 2,
    "forensics_volume_factor": 3,
    "forensics_volume_min_events": 10,
    "forensics_volume_min_hours": 2,
    "forensics_volume_half_life_days": 7,
    "forensics_refused_window_minutes": 10,
    "forensics_refused_user_count": 4,
    "forensics_refused_source_count": 4,
    "forensics_refused_source_users": 2,
    "forensics_transfer_delete_hours": 1,
    "forensics_unusual_hour_max_share": 0.05,
    "forensics_unusual_hour_min_hours": 5,
    "forensics_unusual_hour_min_days": 3,
    "forensics_unusual_hour_cooldown_hours": 12,
    "forensics_new_run_type_min_accesses": 5,
    "forensics_new_run_type_min_age_days": 1,
}
"""Thresholds a short history crosses (the defaults are tuned for months of history)."""


def rules_settings(database_url: str, tmp_path: Path, **more: Any) -> Settings:
    """Settings of a test's database with ``RULES_SETTINGS``."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, **{**RULES_SETTINGS, **more}
    )


def _served(grant: Grant) -> Grant:
    return grant


READ_KEY = functools.partial(access.object_key_operation, "raw/a.csv", is_read_write=False)


@dataclass(frozen=True)
class LegacySource:
    """A data source the trail knows only from events recorded around the services, as an
    installation from before the trail recorded its creation (or its initial grants) has."""

    id: str
    name: str
    data_source_type: str = "S3Config"


class Scene:
    """A history in the making: users, data sources, runs, accesses; then its findings."""

    def __init__(self, dstrail: Dstrail, clock: SettableClock) -> None:
        self.dstrail, self.clock = dstrail, clock
        self.follower: Follower = follower_for(
            dstrail.store, settings=dstrail.settings, clock=dstrail.clock
        )
        self.projects: dict[str, Project] = {}

    # -- the clock ------------------------------------------------------------------------------

    def at(self, ms: int) -> None:
        """Move the clock to ``ms`` (forward only)."""
        assert ms >= self.clock.now_ms, "scenes move forward"
        self.clock.now_ms = ms

    def later(self, ms: int) -> int:
        """Move the clock on by ``ms``."""
        return self.clock.advance(ms)

    def day_at(self, day: int, hour: float) -> int:
        """Epoch ms of ``hour`` (UTC) on day ``day`` of the scene."""
        return START_MS - 8 * HOUR + day * DAY + int(hour * HOUR)

    # -- things ---------------------------------------------------------------------------------

    def user(self, name: str, role: Role = Role.USER) -> Login:
        return make_user(self.dstrail, name, role)

    def legacy_user(self, name: str) -> Login:
        """A user from before the trail recorded ``UserCreated``: in the users table only."""
        user = User(id=new_object_id(), username=name, email="", role=Role.USER)
        with self.dstrail.store.engine.begin() as connection:
            connection.execute(
                insert(users).values(
                    id=user.id, username=name, email="", role=user.role.value, created_at=0
                )
            )
        return Login(user=user, api_key="")

    def legacy_dataset(self, owner: Login, name: str) -> LegacySource:
        """A data source whose ``CreateDataSource`` predates the initial grants (no
        ``ownerId``, ``userIds``): who else was listed is not in the trail."""
        source = LegacySource(new_object_id(), name)
        self._record(
            EventKind.CREATE_DATA_SOURCE, owner, source,
            {"credentialType": "Shared", "isEveryone": "false"},
        )  # fmt: skip
        return source

    def dataset(self, owner: Login, name: str, *users: Login, everyone: bool = False) -> DataSource:
        """A ``DatasetConfig`` data source (its credentials are dstrail's: Shared)."""
        permissions = Permissions(is_everyone=everyone, user_ids=tuple(u.id for u in users))
        return create_dataset(self.dstrail, owner, name, permissions=permissions)

    def database(self, owner: Login, name: str, *, everyone: bool, individual: bool) -> DataSource:
        """A PostgreSQL data source, with each user's own credentials or a shared account."""
        credential = CredentialType.INDIVIDUAL if individual else CredentialType.SHARED
        with self.dstrail.store.write() as tx:
            return ds_service.create_data_source(
                tx, self.dstrail.vault,
                spec=ds_service.DataSourceCreate(
                    name=name, data_source_type="PostgreSQLConfig", auth_type="Basic",
                    credential_type=credential, config={"host": "db", "database": "d"},
                    permissions=Permissions(is_everyone=everyone),
                ),
                actor=owner.user, now_ms=self.clock(),
            )  # fmt: skip

    def permissions(
        self, owner: Login, ds: DataSource, *users: Login, everyone: bool = False
    ) -> None:
        with self.dstrail.store.write() as tx:
            ds_service.set_permissions(
                tx, data_source_id=ds.id, actor=owner.user, now_ms=self.clock(),
                permissions=Permissions(is_everyone=everyone, user_ids=tuple(u.id for u in users)),
            )  # fmt: skip

    def transfer(self, actor: Login, ds: DataSource, to: Login) -> None:
        with self.dstrail.store.write() as tx:
            ds_service.transfer_ownership(
                tx, data_source_id=ds.id, new_owner_id=to.id, actor=actor.user, now_ms=self.clock()
            )

    def delete(self, actor: Login, ds: DataSource) -> None:
        with self.dstrail.store.write() as tx:
            ds_service.delete_data_source(
                tx, data_source_id=ds.id, actor=actor.user, now_ms=self.clock()
            )

    def run(self, user: Login, run_type: RunType = RunType.WORKSPACE) -> StartedRun:
        """A run of ``user`` in their own project."""
        project = self.projects.get(user.id)
        if project is None:
            project = self.projects[user.id] = make_project(
                self.dstrail, user, f"p-{user.user.username}"
            )
        return start_run(self.dstrail, user, project, run_type)

    def purge_and_rebuild(self, *, through: int) -> None:
        """Remove events 1 to ``through`` as a retention purge leaves the trail, then rebuild
        the derived state from what it still holds (it begins after the purge)."""
        with self.dstrail.store.engine.begin() as connection:
            connection.execute(
                text("UPDATE audit_retention SET purge_through = :n, removed_through = :n"),
                {"n": through},
            )
            connection.execute(text("DELETE FROM audit_events WHERE seq <= :n"), {"n": through})
        report = rebuild(self.dstrail.store, settings=self.dstrail.settings, clock=self.clock)
        assert report.rebuilt.first_seq == through + 1

    # -- the data path --------------------------------------------------------------------------

    def _request(
        self, user: Login, ds: DataSource, run: StartedRun | None, operation: Any
    ) -> AccessRequest:
        return AccessRequest(
            credentials=CallerCredentials(api_key=user.api_key, bearer=None),
            claim=AccessClaim(run_id=run.run.id if run else None, client_source="Python"),
            data_source_id=ds.id,
            operation=operation,
        )

    def use(
        self, user: Login, ds: DataSource, *, run: StartedRun | None = None, times: int = 1,
        every_ms: int = 1000,
    ) -> None:  # fmt: skip
        """``times`` accesses of ``user`` (from ``run``, else outside any run)."""
        for index in range(times):
            if index:
                self.later(every_ms)
            access.serve_access(
                self.dstrail.store, self.dstrail.vault, self._request(user, ds, run, READ_KEY),
                signing_key=self.dstrail.keys.signing_key, clock=self.dstrail.clock,
                serve=_served,
            )  # fmt: skip

    def refused(self, user: Login, ds: DataSource, *, times: int = 1, every_ms: int = 1000) -> None:
        """``times`` attempts that the data path refuses (each recorded as a refusal)."""
        for index in range(times):
            if index:
                self.later(every_ms)
            with pytest.raises(access.AccessRefused):
                self.use(user, ds)

    def forged_access(self, user: Login, ds: DataSource | LegacySource) -> None:
        """An ``AccessDataSource`` recorded around the data path (as a bug, or someone with
        the database, would): the trail shows no decision behind it."""
        self._record(
            EventKind.ACCESS_DATA_SOURCE, user, ds,
            {"clientSource": "Python", "operation": "getDataSource"},
        )  # fmt: skip

    def _record(
        self, kind: EventKind, user: Login, ds: DataSource | LegacySource, metadata: dict[str, str]
    ) -> None:
        with self.dstrail.store.write() as tx:
            tx.audit.record(
                NewAuditEvent(
                    event_kind=kind, data_source_id=ds.id, data_source_name=ds.name,
                    data_source_type=ds.data_source_type, performed_by=user.id,
                    performed_by_username=user.user.username, timestamp_ms=self.clock(),
                    metadata=metadata,
                )
            )  # fmt: skip

    def refused_change(self, user: Login, ds: DataSource) -> None:
        """A refused management attempt (recorded in its own transaction)."""
        with pytest.raises(Exception), writing(self.dstrail.store, self.dstrail.clock) as tx:  # noqa: B017
            ds_service.delete_data_source(
                tx, data_source_id=ds.id, actor=user.user, now_ms=self.clock()
            )

    # -- what was found -------------------------------------------------------------------------

    def last_seq(self) -> int:
        with self.dstrail.store.read() as tx:
            return tx.audit.size()

    def views(self, **wanted: Any) -> list[FindingView]:
        """The findings (after the follower caught up), oldest first."""
        page = findings_page(self.follower, FindingFilter(limit=1000, **wanted))
        assert page.next is None
        return page.findings[::-1]

    def findings(self, rule: Rule | None = None) -> list[Finding]:
        """The findings, oldest first, of ``rule`` or all."""
        found = [view.finding for view in self.views()]
        return [f for f in found if rule is None or f.rule is rule]


def metadata_of(dstrail: Dstrail, seq: int) -> dict[str, str]:
    """The metadata of event ``seq``."""
    with dstrail.store.read() as tx:
        event = tx.audit.by_sequence(seq)
    assert event is not None
    parsed: dict[str, str] = orjson.loads(event.metadata)
    return parsed


def kind_of(dstrail: Dstrail, seq: int) -> str:
    """The kind of event ``seq``."""
    with dstrail.store.read() as tx:
        event = tx.audit.by_sequence(seq)
    assert event is not None
    return event.event_kind
