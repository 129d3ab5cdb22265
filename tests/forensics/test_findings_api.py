"""``/api/dstrail/v1/forensics/findings``: SysAdmins and Auditors list and read findings (each
read recorded), acknowledge one with an API key (recorded, once); everyone else is refused;
bad input is a 400 that says what is accepted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.trail import EventKind
from dstrail.domain.users import Role
from dstrail.settings import Settings
from tests.api.test_platform_api import error
from tests.forensics.findings_scenes import (
    HOUR,
    MINUTE,
    Scene,
    metadata_of,
    rules_settings,
)
from tests.support import Login, SettableClock, audit_count, make_user

BASE = "/api/dstrail/v1/forensics/findings"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()  # now: a run's token must be valid for real


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
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
    return made


@pytest.fixture
def auditor(dstrail: Dstrail) -> Login:
    return make_user(dstrail, "auditor", Role.AUDITOR)


def reads(dstrail: Dstrail) -> list[dict[str, str]]:
    """The metadata of every ``AuditTrailRead``, oldest first."""
    with dstrail.store.read() as tx:
        events = tx.forensics.events_after(0, limit=10_000)
    return [
        metadata_of(dstrail, event.seq)
        for event in events
        if event.event_kind == EventKind.TRAIL_READ
    ]


def test_sysadmins_and_auditors_list_findings_newest_first_each_read_recorded(
    client: TestClient, dstrail: Dstrail, scene: Scene, admin: Login, auditor: Login
) -> None:
    for reader in (admin, auditor):
        listed = client.get(BASE, headers=reader.headers)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert [f["rule"] for f in body["findings"]] == ["refusedBurst", "everyoneShare"]
        assert body["next"] is None
    burst = body["findings"][0]
    assert burst["username"] == "carol" and burst["severity"] == "medium"
    assert burst["details"]["by"] == "user" and len(burst["seqs"]) == 4
    assert burst["lastSeq"] == burst["seqs"][-1] and burst["firstSeq"] == burst["seqs"][0]
    assert burst["raisedSeq"] is not None and burst["acknowledgement"] is None
    assert burst["time"].endswith("Z")
    paged = client.get(BASE, params={"limit": 1}, headers=admin.headers).json()
    assert [f["id"] for f in paged["findings"]] == [burst["id"]]
    rest = client.get(BASE, params={"limit": 1, "cursor": paged["next"]}, headers=admin.headers)
    assert [f["rule"] for f in rest.json()["findings"]] == ["everyoneShare"]
    narrowed = client.get(
        BASE, params=[("rule", "everyoneShare"), ("rule", "volumeSpike"), ("acknowledged", "false")],
        headers=auditor.headers,
    )  # fmt: skip
    assert [f["rule"] for f in narrowed.json()["findings"]] == ["everyoneShare"]
    recorded = reads(dstrail)
    assert [r["path"] for r in recorded] == [BASE] * 5
    assert recorded[0]["surface"] == "forensics" and recorded[0]["rows"] == "2"
    assert '"rule":["everyoneShare","volumeSpike"]' in recorded[-1]["filter"]


def test_a_finding_with_its_events(
    client: TestClient, dstrail: Dstrail, scene: Scene, auditor: Login
) -> None:
    burst = client.get(BASE, params={"rule": "refusedBurst"}, headers=auditor.headers).json()
    finding = burst["findings"][0]
    detail = client.get(f"{BASE}/{finding['id']}", headers=auditor.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert {k: v for k, v in body.items() if k != "events"} == finding
    assert [e["seq"] for e in body["events"]] == finding["seqs"]
    assert {e["eventKind"] for e in body["events"]} == {"AccessDataSourceRefused"}
    assert body["events"][0]["metadata"]["reason"] == "notPermitted"
    assert body["events"][0]["dataSourceName"] == "vault"
    assert reads(dstrail)[-1]["filter"] == f'{{"findingId":"{finding["id"]}"}}'
    assert reads(dstrail)[-1]["rows"] == "4"
    error(client.get(f"{BASE}/{'a' * 24}", headers=auditor.headers), 404)
    assert "24 lowercase hex" in error(client.get(f"{BASE}/nope", headers=auditor.headers), 400)


def test_acknowledging_needs_an_api_key_of_a_sysadmin_or_auditor_and_happens_once(
    client: TestClient, dstrail: Dstrail, scene: Scene, auditor: Login, bob: Login
) -> None:
    finding = client.get(BASE, headers=auditor.headers).json()["findings"][0]
    url = f"{BASE}/{finding['id']}/acknowledge"
    before = audit_count(dstrail)
    assert "SysAdmin or the Auditor" in error(
        client.post(url, json={"note": "x"}, headers=bob.headers), 403
    )
    scene.clock.now_ms = time.time_ns() // 1_000_000  # a run's token is checked against now
    run = scene.run(auditor)
    bearer = {"Authorization": f"Bearer {run.token}"}
    assert "API key" in error(client.post(url, json={"note": "x"}, headers=bearer), 403)
    error(client.post(url, json={"note": "x"}), 401)
    after_refusals = audit_count(dstrail)
    bad: list[tuple[object, str]] = [
        ({}, "note"), ({"note": ""}, "note"), ({"note": "x" * 2001}, "note"),
        ({"note": "ok", "extra": 1}, "extra"), ({"note": 3}, "note"), ({"note": "  "}, "note"),
    ]  # fmt: skip
    for body, says in bad:
        assert says in error(client.post(url, json=body, headers=auditor.headers), 400), body
    broken = {**auditor.headers, "content-type": "application/json"}
    error(client.post(url, content=b"{", headers=broken), 400)
    assert audit_count(dstrail) == after_refusals

    done = client.post(url, json={"note": "carol was testing a typo"}, headers=auditor.headers)
    assert done.status_code == 200, done.text
    ack = done.json()["acknowledgement"]
    assert (ack["by"], ack["byUsername"], ack["note"]) == (
        auditor.id, "auditor", "carol was testing a typo",
    )  # fmt: skip
    assert metadata_of(dstrail, ack["seq"])["note"] == "carol was testing a typo"
    again = client.post(url, json={"note": "again"}, headers=auditor.headers)
    assert "acknowledged already by auditor" in error(again, 409)
    error(
        client.post(f"{BASE}/{'b' * 24}/acknowledge", json={"note": "x"}, headers=auditor.headers),
        404,
    )
    shown = client.get(f"{BASE}/{finding['id']}", headers=auditor.headers).json()
    assert shown["acknowledgement"] == ack
    unacknowledged = client.get(BASE, params={"acknowledged": "false"}, headers=auditor.headers)
    assert [f["id"] for f in unacknowledged.json()["findings"]] != [finding["id"]]
    assert before < audit_count(dstrail)


def test_plain_users_are_refused_and_the_refusal_recorded(
    client: TestClient, dstrail: Dstrail, scene: Scene, bob: Login
) -> None:
    assert "Auditor role" in error(client.get(BASE, headers=bob.headers), 403)
    assert "Auditor role" in error(client.get(f"{BASE}/{'a' * 24}", headers=bob.headers), 403)
    error(client.get(BASE), 401)
    refused = reads(dstrail)
    assert [(r["path"], r["refused"]) for r in refused] == [
        (BASE, "true"), (f"{BASE}/{'a' * 24}", "true"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"rule": "sneaky"}, "accepted: firstAccess, accessAfterRevocation"),
        ({"severity": "urgent"}, "accepted: low, medium, high"),
        ({"userId": "alice"}, "userId: 'alice' is not an id"),
        ({"acknowledged": "maybe"}, "acknowledged: 'maybe'; accepted: true, false"),
        ({"limit": "0"}, "limit: '0' is not accepted; accepted: 1 to 1000"),
        ({"limit": "10", "cursor": "yesterday"}, "cursor: 'yesterday' is not the cursor"),
        ({"from": "soon"}, "from: cannot parse 'soon'"),
        ({"from": "2026-06-02T00:00:00Z", "to": "2026-06-01T00:00:00Z"}, "must not be after"),
        ({"ruleset": "x"}, "unknown parameter 'ruleset'; accepted: rule, severity"),
        ({"limit": ["1", "2"]}, "limit: give it once"),
    ],
)
def test_bad_input_is_a_400_saying_what_is_accepted(
    client: TestClient, admin: Login, params: dict[str, Any], says: str
) -> None:
    assert says in error(client.get(BASE, params=params, headers=admin.headers), 400)
