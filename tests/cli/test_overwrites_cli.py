"""``dstrail datasources overwrites NAME allow|forbid``: the switch, recorded; bad input changes
nothing."""

from __future__ import annotations

import json

import pytest

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR
from tests.services.support import last, trail
from tests.support import Login, SettableClock, create_dataset


def _run(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    storage = [
        "--database-url", dstrail.settings.database_url or "",
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip
    code = main(["datasources", "overwrites", *args, *storage])
    clock.advance(60_000)  # past the CLI's own (real) clock, so the test's reads see its events
    out, err = capsys.readouterr()
    return code, out, err


def test_forbid_then_allow_is_recorded_once_each(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], alice: Login
) -> None:
    create_dataset(dstrail, alice, "files")
    code, out, _ = _run(dstrail, clock, capsys, "files", "forbid")
    assert (code, json.loads(out)) == (0, {"name": "files", "configOverwritesAllowed": False})
    changed = last(dstrail)
    assert (changed.kind, changed.performed_by) == (EventKind.UPDATE_DATA_SOURCE, OPERATOR.id)
    assert changed.metadata["configOverwritesAllowed"] == "false"
    recorded = len(trail(dstrail))
    assert _run(dstrail, clock, capsys, "files", "forbid")[0] == 0
    assert len(trail(dstrail)) == recorded  # already forbidden: nothing recorded
    assert json.loads(_run(dstrail, clock, capsys, "files", "allow")[1])["configOverwritesAllowed"]
    assert last(dstrail).metadata["configOverwritesAllowed"] == "true"


def test_an_unknown_name_or_choice_is_an_error_that_changes_nothing(
    dstrail: Dstrail, clock: SettableClock, capsys: pytest.CaptureFixture[str], alice: Login
) -> None:
    create_dataset(dstrail, alice, "files")
    recorded = len(trail(dstrail))
    assert _run(dstrail, clock, capsys, "nope", "forbid")[:3:2] == (
        1, "dstrail: error: no data source named 'nope'\n",
    )  # fmt: skip
    with pytest.raises(SystemExit) as usage:
        _run(dstrail, clock, capsys, "files", "off")
    assert usage.value.code == 2
    assert "invalid choice: 'off' (choose from 'allow', 'forbid')" in capsys.readouterr().err
    assert len(trail(dstrail)) == recorded
