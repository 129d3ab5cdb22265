"""Helpers of the service tests: the trail read back as plain values, and what the store holds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import orjson

from dstrail.audit.query import read_page
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Project, Run, RunType
from dstrail.domain.trail import (
    DATA_SOURCE_ID,
    DATA_SOURCE_KINDS,
    DATA_SOURCE_NAME,
    EVENT_KIND,
    METADATA,
    PERFORMED_BY,
    EventKind,
)
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services.runs import StartedRun
from tests.support import Login

DATA_PLANE_ID = "0123456789abcdef01234567"
"""A data plane other than the local one, so that a recorded ``dataPlaneId`` proves its source."""


@dataclass(frozen=True)
class Recorded:
    """One event of the trail, its metadata parsed."""

    kind: str
    data_source_id: str
    data_source_name: str
    performed_by: str
    metadata: dict[str, str]
    raw: str
    """The whole row as text, to search for what must never be recorded."""


def trail(dstrail: Dstrail, of: Collection[EventKind] = DATA_SOURCE_KINDS) -> list[Recorded]:
    """The events of the kinds ``of``, oldest first: by default every data source event
    (extensions included), without the platform changes that making the test's users made."""
    named = AuditFilter(
        start_ms=0, end_ms=dstrail.clock(), event_kinds=tuple(k for k in EventKind if k in of)
    )
    with dstrail.store.read() as tx:
        page = read_page(tx, named, after=None, size=1000)
    assert page.next is None, "more events than a test should make"
    return [
        Recorded(
            kind=row[EVENT_KIND],
            data_source_id=row[DATA_SOURCE_ID],
            data_source_name=row[DATA_SOURCE_NAME],
            performed_by=row[PERFORMED_BY],
            metadata=orjson.loads(row[METADATA]),
            raw=repr(row),
        )
        for row in reversed(page.rows)
    ]


def kinds(dstrail: Dstrail, of: Collection[EventKind] = DATA_SOURCE_KINDS) -> list[str]:
    """The kinds of the trail's events (of the kinds ``of``), oldest first."""
    return [event.kind for event in trail(dstrail, of)]


def last(dstrail: Dstrail) -> Recorded:
    """The newest event."""
    events = trail(dstrail)
    assert events, "the trail is empty"
    return events[-1]


def data_sources(dstrail: Dstrail) -> list[DataSource]:
    """Every data source stored, deleted ones included."""
    with dstrail.store.read() as tx:
        return tx.data_sources.all(include_deleted=True)


def stored(dstrail: Dstrail, data_source_id: str) -> DataSource:
    """A data source as stored now."""
    with dstrail.store.read() as tx:
        found = tx.data_sources.by_id(data_source_id)
    assert found is not None
    return found


def make_project(
    dstrail: Dstrail, owner: Login, name: str = "proj", collaborators: tuple[Login, ...] = ()
) -> Project:
    """A project of ``owner``, through the service."""
    with dstrail.store.write() as tx:
        return project_service.create_project_by_ids(
            tx,
            actor=owner.user,
            name=name,
            owner_id=None,
            collaborator_ids=[c.id for c in collaborators],
            now_ms=dstrail.clock(),
        )


def start_run(
    dstrail: Dstrail, user: Login, project: Project, run_type: RunType = RunType.WORKSPACE
) -> StartedRun:
    """A running run of ``user`` in ``project`` (on ``DATA_PLANE_ID``), and its token."""
    with dstrail.store.write() as tx:
        return run_service.start_run_by_ids(
            tx,
            actor=user.user,
            project_id=project.id,
            user_id=None,
            run_type=run_type,
            data_plane_id=DATA_PLANE_ID,
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )


def stored_run(dstrail: Dstrail, run_id: str) -> Run | None:
    """A run as stored now."""
    with dstrail.store.read() as tx:
        return tx.runs.by_id(run_id)
