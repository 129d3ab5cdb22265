"""Runs: the executions that access data sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dstrail.domain.projects import Run, RunType
from dstrail.store.driver import DriverReads, Read, statement
from dstrail.store.schema import runs

_NAMES = ("id", "run_type", "project_id", "user_id", "data_plane_id", "started_at", "ended_at")
"""The columns every read of a run selects, in order (``_run`` reads them by name)."""
_COLUMNS = tuple(runs.c[name] for name in _NAMES)

_BY_ID = statement(f"SELECT {', '.join(_NAMES)} FROM runs WHERE id = :id")
"""Every access in a run reads its run: on the driver (``dstrail.store.driver``)."""


def _run(row: Sequence[Any]) -> Run:
    values = dict(zip(_NAMES, row, strict=True))
    return Run(
        id=values["id"],
        run_type=RunType(values["run_type"]),
        project_id=values["project_id"],
        user_id=values["user_id"],
        data_plane_id=values["data_plane_id"],
        started_at_ms=values["started_at"],
        ended_at_ms=values["ended_at"],
    )


class RunRepository:
    """Reads and writes runs."""

    def __init__(self, connection: Connection, reads: DriverReads) -> None:
        self._db = connection
        self._reads = reads

    def add(self, run: Run) -> None:
        """Insert a started run."""
        self._db.execute(
            insert(runs).values(
                id=run.id,
                run_type=run.run_type.value,
                project_id=run.project_id,
                user_id=run.user_id,
                data_plane_id=run.data_plane_id,
                started_at=run.started_at_ms,
                ended_at=run.ended_at_ms,
            )
        )

    def finish(self, run_id: str, *, now_ms: int) -> bool:
        """Mark a running run ended; whether it was running."""
        result = self._db.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.ended_at.is_(None))
            .values(ended_at=now_ms)
        )
        return result.rowcount > 0

    def by_id(self, run_id: str) -> Run | None:
        """One run."""
        row = self._reads.first(*self.read_by_id(run_id))
        return _run(row) if row else None

    @staticmethod
    def read_by_id(run_id: str) -> Read:
        """``by_id``'s read, for ``Repositories.read_ahead``."""
        return _BY_ID, {"id": run_id}

    def by_ids(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """Runs by id, for the ids that exist."""
        if not run_ids:
            return {}
        rows = self._db.execute(select(*_COLUMNS).where(runs.c.id.in_(list(run_ids))))
        return {run.id: run for run in map(_run, rows)}

    def starting_with(self, prefix: str, *, limit: int) -> list[Run]:
        """Up to ``limit`` runs whose id starts with ``prefix``, by id."""
        query = (
            select(*_COLUMNS)
            .where(runs.c.id.startswith(prefix, autoescape=True))
            .order_by(runs.c.id)
            .limit(limit)
        )
        return [_run(row) for row in self._db.execute(query)]

    def recent(self, limit: int = 100) -> list[Run]:
        """The newest runs first."""
        rows = self._db.execute(select(*_COLUMNS).order_by(runs.c.started_at.desc()).limit(limit))
        return [_run(row) for row in rows]
