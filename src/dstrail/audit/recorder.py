"""Recording an event inside the transaction of the change it describes."""

from __future__ import annotations

from dstrail.domain.datasources import DataSource
from dstrail.domain.projects import Run
from dstrail.domain.trail import PLATFORM_KINDS, EventKind, NewAuditEvent
from dstrail.domain.users import User
from dstrail.store import Repositories


def run_keys(run: Run | None) -> dict[str, str]:
    """The metadata an event takes from the run dstrail knows (none without a run)."""
    if run is None:
        return {}
    return {
        "runType": run.run_type.value,
        "projectId": run.project_id,
        "runId": run.id,
        "dataPlaneId": run.data_plane_id,
    }


def record_event(
    tx: Repositories,
    *,
    kind: EventKind,
    data_source: DataSource,
    actor: User,
    now_ms: int,
    metadata: dict[str, str] | None = None,
    run: Run | None = None,
) -> None:
    """Append an event about ``data_source`` as it is now, in the transaction of ``tx``.

    Run keys (``runType``, ``projectId``, ``runId``, ``dataPlaneId``) come from ``run``, the run
    dstrail knows, never from what a caller claimed.
    """
    values = run_keys(run)
    if metadata:
        values.update(metadata)
    tx.audit.record(
        NewAuditEvent(
            event_kind=kind,
            data_source_id=data_source.id,
            data_source_name=data_source.name,
            data_source_type=data_source.data_source_type,
            performed_by=actor.id,
            performed_by_username=actor.username,
            timestamp_ms=now_ms,
            metadata=values,
            run_id=run.id if run else None,
            project_id=run.project_id if run else values.get("projectId"),
        )
    )


def record_platform_event(
    tx: Repositories,
    *,
    kind: EventKind,
    actor: User,
    now_ms: int,
    metadata: dict[str, str],
    run: Run | None = None,
    project_id: str | None = None,
) -> None:
    """Append a platform change (``PLATFORM_KINDS``: users, keys, projects, runs), which names
    no data source, in the transaction of ``tx``. ``run`` and ``project_id`` fill the columns
    that the ``runIds`` and ``projectIds`` filters read."""
    assert kind in PLATFORM_KINDS, kind
    values = {**metadata, **run_keys(run)}
    if run is not None:
        project_id = run.project_id
    tx.audit.record(
        NewAuditEvent(
            event_kind=kind,
            data_source_id="",
            data_source_name="",
            data_source_type="",
            performed_by=actor.id,
            performed_by_username=actor.username,
            timestamp_ms=now_ms,
            metadata=values,
            run_id=run.id if run else None,
            project_id=project_id,
        )
    )
