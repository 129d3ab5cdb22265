"""Names for the ids events hold, on SQLite and PostgreSQL: usernames, project names and run
labels resolved in bulk, unknown ids left as they are, and an export's lookups made once."""

from __future__ import annotations

import orjson

from dstrail.context import Dstrail
from dstrail.domain.trail import EventRow
from dstrail.services.names import NAME_COLUMNS, ExportNames, Names, names_for, run_label
from tests.support import Login, make_user
from tests.web.support import project_and_run

UNKNOWN = "f" * 24


def _row(seq: int, **metadata: str) -> EventRow:
    return ("ds", "ds-name", "S3Config", "AccessDataSource", orjson.dumps(metadata).decode(),
            "u", 1, seq)  # fmt: skip


def test_names_resolve_users_projects_and_runs_and_leave_unknown_ids(
    dstrail: Dstrail, alice: Login, bob: Login
) -> None:
    carol = make_user(dstrail, "carol")
    project, run = project_and_run(dstrail, alice, "churn-model")
    rows = [
        _row(1, addedUserIds=f"{bob.id},{UNKNOWN}", removedUserIds=carol.id),
        _row(2, projectId=project.id, runId=run.id, runType="Workspace"),
        _row(3, projectId=UNKNOWN, projectName="gone-project", runId=UNKNOWN, runType="Batch"),
    ]
    with dstrail.store.read() as tx:
        names = names_for(tx, rows)
    assert names.user(bob.id) == "bob" and names.user(UNKNOWN) == ""
    assert names.of("addedUserIds", f"{bob.id},{UNKNOWN}") == f"bob, {UNKNOWN}"
    assert names.of("removedUserIds", UNKNOWN) == ""  # no name known: the id shows alone
    assert names.of("objectKey", bob.id) == ""  # not a key that holds ids
    assert names.project(project.id) == "churn-model"
    assert names.run(run.id) == run_label("Workspace", run.id) == f"Workspace …{run.id[-8:]}"

    columns = [names.columns(orjson.loads(row[4])) for row in rows]
    assert all(tuple(c) == NAME_COLUMNS for c in columns)
    assert (columns[0]["addedUsernames"], columns[0]["removedUsernames"]) == (
        f"bob, {UNKNOWN}",
        "carol",
    )
    assert columns[1]["projectName"] == "churn-model"
    assert columns[1]["runLabel"] == f"Workspace …{run.id[-8:]}"
    # gone from the store: the project name the event stored, the run type it stored
    assert columns[2]["projectName"] == "gone-project"
    assert columns[2]["runLabel"] == f"Batch …{UNKNOWN[-8:]}"


def test_an_export_looks_each_id_up_once(dstrail: Dstrail, alice: Login, bob: Login) -> None:
    exported = ExportNames(dstrail.store)
    first = [_row(1, addedUserIds=bob.id)]
    assert exported.values(first, [orjson.loads(r[4]) for r in first])[0]["addedUsernames"] == (
        "bob"
    )
    asked = exported._names.asked
    assert bob.id in asked
    again = [_row(2, addedUserIds=bob.id, removedUserIds=UNKNOWN)]
    exported.values(again, [orjson.loads(r[4]) for r in again])
    assert exported._names.asked == asked | {UNKNOWN}
    assert Names().of("addedUserIds", bob.id) == ""
