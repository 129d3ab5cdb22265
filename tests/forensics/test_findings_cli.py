"""``dstrail forensics findings``: list (one line a finding, or the API's JSON), show (the
finding and its events), ack (recorded, once); each read recorded as the operator's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.settings import Settings
from tests.forensics.findings_scenes import (
    HOUR,
    MINUTE,
    RULES_SETTINGS,
    START_MS,
    Scene,
    metadata_of,
    rules_settings,
)
from tests.support import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START_MS)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in RULES_SETTINGS.items():  # the commands read the same thresholds
        monkeypatch.setenv(f"DSTRAIL_{name.upper()}", str(value))
    return rules_settings(database_url, tmp_path)


@pytest.fixture
def scene(dstrail: Dstrail, clock: SettableClock) -> Scene:
    """Two findings: an everyone share by alice, then a burst of refusals by carol."""
    made = Scene(dstrail, clock)
    alice, carol = made.user("alice"), made.user("carol")
    made.dataset(alice, "open", everyone=True)
    vault = made.dataset(alice, "vault")
    made.later(HOUR)
    made.refused(carol, vault, times=4, every_ms=MINUTE)
    made.views()
    return made


def run(dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``dstrail forensics findings ARGS`` against the test's database."""
    storage = [
        "--database-url", dstrail.settings.database_url or "",
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip
    code = main(["forensics", "findings", *args, *storage])
    out, err = capsys.readouterr()
    return code, out, err


def listed(dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(dstrail, capsys, "list", "--json", *args)
    assert (code, err) == (0, ""), err
    document: dict[str, Any] = orjson.loads(out)
    return document


def test_list_show_and_ack(
    dstrail: Dstrail, scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(dstrail, capsys, "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 2
    assert "medium  refusedBurst" in lines[0] and "4 refused attempts by carol" in lines[0]
    assert "everyoneShare" in lines[1] and "open (Shared credentials)" in lines[1]
    document = listed(dstrail, capsys)
    burst, share = document["findings"]
    assert burst["id"] in lines[0] and share["id"] in lines[1]
    assert [f["id"] for f in listed(dstrail, capsys, "--rule", "everyoneShare")["findings"]] == [
        share["id"]
    ]
    assert [f["id"] for f in listed(dstrail, capsys, "--user", "carol")["findings"]] == [
        burst["id"]
    ]
    assert [f["id"] for f in listed(dstrail, capsys, "--data-source", "open")["findings"]] == [
        share["id"]
    ]
    page = listed(dstrail, capsys, "--limit", "1")
    assert page["next"] is not None
    assert listed(dstrail, capsys, "--limit", "1", "--cursor", page["next"])["findings"] == [share]

    code, out, _ = run(dstrail, capsys, "show", burst["id"])
    assert code == 0
    shown = out.splitlines()
    assert "events (4 of 4 linked):" in shown
    assert sum("AccessDataSourceRefused" in line for line in shown) == 4
    code, out, _ = run(dstrail, capsys, "show", burst["id"], "--json")
    assert [e["seq"] for e in orjson.loads(out)["events"]] == burst["seqs"]

    code, out, err = run(dstrail, capsys, "ack", burst["id"], "--note", "carol's typo")
    assert (code, err) == (0, "")
    ack = orjson.loads(out)["acknowledgement"]
    assert (ack["byUsername"], ack["note"]) == ("operator", "carol's typo")
    assert metadata_of(dstrail, ack["seq"])["findingId"] == burst["id"]
    code, _, err = run(dstrail, capsys, "ack", burst["id"], "--note", "again")
    assert code == 1 and "acknowledged already by operator" in err
    assert [f["id"] for f in listed(dstrail, capsys, "--unacknowledged")["findings"]] == [
        share["id"]
    ]
    code, out, _ = run(dstrail, capsys, "list")
    assert "[acknowledged by operator]" in out.splitlines()[0]

    with dstrail.store.read() as tx:
        events = tx.forensics.events_after(0, limit=10_000)
    commands = [
        metadata_of(dstrail, e.seq)["command"]
        for e in events
        if e.event_kind == EventKind.TRAIL_READ
    ]
    assert commands[:2] == ["forensics findings list", "forensics findings list"]
    assert "forensics findings show" in commands


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("list", "--rule", "nope"), "--rule: unknown rule 'nope'; accepted: firstAccess"),
        (("list", "--severity", "urgent"), "--severity: unknown severity"),
        (("list", "--limit", "0"), "--limit: '0' is not accepted"),
        (("list", "--from", "soon"), "--from: cannot parse 'soon'"),
        (("show", "nope"), "is not a finding id"),
        (("ack", "nope", "--note", "x"), "is not a finding id"),
        (("ack", "a" * 24, "--note", " "), "note: required"),
    ],
)
def test_bad_input_exits_2_saying_what_is_accepted(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = run(dstrail, capsys, *args)
    assert (code, out) == (2, "")
    assert says in err


def test_an_unknown_finding_exits_1(dstrail: Dstrail, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(dstrail, capsys, "show", "a" * 24)
    assert code == 1 and "no finding with id" in err
