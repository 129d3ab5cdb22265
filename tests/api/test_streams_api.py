"""``/api/dstrail/v1/streams``: SysAdmins manage stream destinations over HTTP; each change is
recorded once with who made it; a secret is never returned (except a webhook signing key
dstrail made, once) nor recorded; refusals and bad input change nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from dstrail.domain.timestamps import format_ms
from dstrail.services.streams import new_webhook_secret
from tests.api.test_platform_api import BASE, error
from tests.api.test_platform_events import recorded
from tests.client.conftest import free_port
from tests.streaming.receivers import WebhookReceiver
from tests.support import Login, SettableClock, audit_count, create_dataset

STREAMS = f"{BASE}/streams"
HOOK = "https://siem.example.com/hook"
READ = {
    "name", "id", "kind", "format", "target", "config", "eventKinds", "dataSourceNames",
    "hasSecret", "paused", "cursor", "lagEvents", "lagSeconds", "delivered", "lastDelivery",
    "lastError", "lastErrorAt", "leaseHolder", "leaseUntil", "createdAt", "createdBy", "errors",
}  # fmt: skip


def streamed(client: TestClient, reader: Login) -> list[dict[str, Any]]:
    """The stream changes of the trail through the audit API, oldest first."""
    return [e for e in recorded(client, reader) if e["eventKind"].startswith("StreamDestination")]


def state(dstrail: Dstrail) -> tuple[Any, ...]:
    """The destinations as stored (secrets included) and the trail's size."""
    with dstrail.store.read() as tx:
        rows = tx.connection.exec_driver_sql(
            "SELECT * FROM stream_destinations ORDER BY name"
        ).all()
        return tuple(rows), tx.audit.size()


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_sysadmin_manages_destinations_and_each_change_is_recorded_once(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    create_dataset(dstrail, alice, "files")
    body = {
        "name": "siem", "kind": "webhook", "config": {"url": HOOK, "body": "ndjson"},
        "eventKinds": ["AccessDataSource"], "dataSourceNames": ["files"], "fromSeq": 2,
    }  # fmt: skip
    added = ok(client.post(STREAMS, json=body, headers=admin.headers), 201)
    generated = added.pop("secret")
    assert generated.startswith("whsec_")
    assert set(added) == READ
    assert (added["name"], added["kind"], added["format"], added["target"]) == (
        "siem", "webhook", "native", HOOK,
    )  # fmt: skip
    assert (added["cursor"], added["lagEvents"], added["hasSecret"]) == (
        1, audit_count(dstrail) - 1, True,
    )  # fmt: skip
    assert (added["createdBy"], added["createdAt"]) == (admin.id, format_ms(dstrail.clock()))

    token = "hec-token-0123456789"
    splunk = ok(client.post(STREAMS, json={
        "name": "splunk", "kind": "splunk-hec", "format": "ocsf", "secret": token,
        "config": {"url": "https://splunk:8088", "index": "audit"},
    }, headers=admin.headers), 201)  # fmt: skip
    assert "secret" not in splunk and splunk["hasSecret"] is True

    listed = client.get(STREAMS, headers=admin.headers)
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()] == ["siem", "splunk"]
    assert all(set(d) == READ for d in listed.json())
    one = ok(client.get(f"{STREAMS}/siem", headers=admin.headers))
    assert one == {**added, "lagEvents": audit_count(dstrail) - 1}

    assert ok(client.post(f"{STREAMS}/siem/pause", headers=admin.headers))["paused"] is True
    assert ok(client.post(f"{STREAMS}/siem/pause", headers=admin.headers))["paused"] is True
    assert ok(client.post(f"{STREAMS}/siem/resume", headers=admin.headers))["paused"] is False
    replayed = ok(client.post(f"{STREAMS}/siem/replay", json={"fromSeq": 1}, headers=admin.headers))
    assert (replayed["cursor"], replayed["lagEvents"]) == (0, audit_count(dstrail))
    rotated = ok(client.post(f"{STREAMS}/siem/secret", headers=admin.headers))
    second = rotated.pop("secret")
    assert second.startswith("whsec_") and second != generated
    mine = new_webhook_secret()
    given = ok(client.post(f"{STREAMS}/siem/secret", json={"secret": mine}, headers=admin.headers))
    assert "secret" not in given
    new_token = "hec-token-second"
    assert "secret" not in ok(
        client.post(f"{STREAMS}/splunk/secret", json={"secret": new_token}, headers=admin.headers)
    )
    removed = client.delete(f"{STREAMS}/siem", headers=admin.headers)
    assert (removed.status_code, removed.content) == (204, b"")
    error(client.get(f"{STREAMS}/siem", headers=admin.headers), 404)
    seen = [listed.text, str(one), str(given), str(splunk)]

    events = streamed(client, admin)
    assert [(e["eventKind"], e["performedBy"], e["metadata"]["streamName"]) for e in events] == [
        ("StreamDestinationAdded", admin.id, "siem"),
        ("StreamDestinationAdded", admin.id, "splunk"),
        ("StreamDestinationPaused", admin.id, "siem"),
        ("StreamDestinationResumed", admin.id, "siem"),
        ("StreamDestinationReplayed", admin.id, "siem"),
        ("StreamDestinationSecretRotated", admin.id, "siem"),
        ("StreamDestinationSecretRotated", admin.id, "siem"),
        ("StreamDestinationSecretRotated", admin.id, "splunk"),
        ("StreamDestinationRemoved", admin.id, "siem"),
    ]
    assert all(e["dataSourceName"] == "" and e["dataSourceId"] == "" for e in events)
    base = {"performedByUsername": "sample-admin", "streamId": added["id"], "streamName": "siem"}
    assert events[0]["metadata"] == {
        **base, "kind": "webhook", "format": "native", "target": HOOK, "fromSeq": "2",
        "eventKinds": "AccessDataSource", "dataSourceNames": "files", "secretSet": "true",
    }  # fmt: skip
    assert events[1]["metadata"] == {
        "performedByUsername": "sample-admin", "streamId": splunk["id"], "streamName": "splunk",
        "kind": "splunk-hec", "format": "ocsf", "target": "https://splunk:8088", "fromSeq":
        str(splunk["cursor"] + 1), "eventKinds": "", "dataSourceNames": "", "secretSet": "true",
    }  # fmt: skip
    assert [e["metadata"] for e in events[2:7]] + [events[8]["metadata"]] == [
        {**base, "cursor": "1"},
        {**base, "cursor": "1"},
        {**base, "fromSeq": "1", "previousCursor": "1"},
        base,
        base,
        {**base, "cursor": "0", "target": HOOK},
    ]
    text = str(recorded(client, admin)) + "".join(seen)
    for secret in (generated, second, mine, token, new_token):
        assert secret not in text
    with dstrail.store.read() as tx:
        every_row = repr(tx.integrity.events_after(0, limit=10_000))
    assert not any(s in every_row for s in (generated, second, mine, token, new_token))


def test_the_lag_in_events_and_seconds(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    first = clock.now_ms  # the fixtures' users: the trail's first events
    create_dataset(dstrail, alice, "files")
    clock.advance(2500)
    body = {"name": "all", "kind": "syslog", "config": {"host": "siem", "port": "514"}}
    behind = ok(client.post(STREAMS, json={**body, "fromSeq": 1}, headers=admin.headers), 201)
    assert (behind["lagEvents"], behind["lagSeconds"]) == (audit_count(dstrail), 2.5)
    assert (behind["target"], behind["hasSecret"]) == ("siem:514", False)
    clock.advance(1000)
    listed = ok(client.get(f"{STREAMS}/all", headers=admin.headers))
    assert (listed["lagEvents"], listed["lagSeconds"]) == (audit_count(dstrail), 3.5)
    assert dstrail.clock() - first == 3500
    caught_up = ok(client.post(STREAMS, json={**body, "name": "new"}, headers=admin.headers), 201)
    # from the next event: its own StreamDestinationAdded, appended as it was added
    assert (caught_up["cursor"], caught_up["lagEvents"]) == (audit_count(dstrail) - 1, 1)
    assert caught_up["lagSeconds"] == 0.0  # recorded at this very moment
    clock.advance(250)
    assert ok(client.get(f"{STREAMS}/new", headers=admin.headers))["lagSeconds"] == 0.25


def test_replay_by_time_starts_at_the_first_event_at_or_after_it(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    early = audit_count(dstrail)  # the fixtures' users
    at = clock.advance(1000)
    create_dataset(dstrail, alice, "one")
    later = audit_count(dstrail)
    clock.advance(1000)
    create_dataset(dstrail, alice, "two")
    clock.advance(1000)
    body = {"name": "s", "kind": "webhook", "config": {"url": HOOK}}
    ok(client.post(STREAMS, json=body, headers=admin.headers), 201)
    replay = f"{STREAMS}/s/replay"
    for when, cursor in (
        (format_ms(at - 1), early),
        (format_ms(at), early),
        (format_ms(at + 1), later),
        ("1970-01-01T00:00:00Z", 0),
    ):
        got = ok(client.post(replay, json={"fromTime": when}, headers=admin.headers))
        assert got["cursor"] == cursor, when
        assert streamed(client, admin)[-1]["metadata"]["fromSeq"] == str(cursor + 1)
    future = ok(
        client.post(replay, json={"fromTime": "2999-01-01T00:00:00Z"}, headers=admin.headers)
    )
    assert future["cursor"] == audit_count(dstrail) - 1  # from the next event: this replay's


def test_only_sysadmins_with_an_api_key_and_refusals_change_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    body = {"name": "siem", "kind": "webhook", "config": {"url": HOOK}}
    ok(client.post(STREAMS, json=body, headers=admin.headers), 201)
    project = ok(client.post(f"{BASE}/projects", json={"name": "p"}, headers=admin.headers), 201)
    run = ok(client.post(
        f"{BASE}/runs", json={"projectId": project["id"], "runType": "Batch"},
        headers=admin.headers,
    ), 201)  # fmt: skip
    bearer = {"Authorization": f"Bearer {run['token']}"}
    before = state(dstrail)
    calls = [
        ("GET", STREAMS, None),
        ("POST", STREAMS, {**body, "name": "other"}),
        ("GET", f"{STREAMS}/siem", None),
        ("POST", f"{STREAMS}/siem/pause", None),
        ("POST", f"{STREAMS}/siem/resume", None),
        ("POST", f"{STREAMS}/siem/replay", {"fromSeq": 1}),
        ("POST", f"{STREAMS}/siem/secret", None),
        ("DELETE", f"{STREAMS}/siem", None),
        ("POST", f"{STREAMS}/siem/replay", {"bad": 1}),  # 403 before the body is read
    ]
    for method, url, json in calls:
        assert "SysAdmin" in error(
            client.request(method, url, json=json, headers=alice.headers), 403
        )
        assert "run's token" in error(client.request(method, url, json=json, headers=bearer), 403)
        error(client.request(method, url, json=json), 401)
    assert state(dstrail) == before


def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    body: dict[str, Any] = {"name": "siem", "kind": "webhook", "config": {"url": HOOK}}
    ok(client.post(STREAMS, json=body, headers=admin.headers), 201)
    before = state(dstrail)
    size = audit_count(dstrail)
    bad_creates: list[tuple[dict[str, Any], str]] = [
        ({**body, "name": "Siem!"}, "name: 'Siem!' is not accepted"),
        ({**body, "kind": "kafka"}, "kind: unknown value 'kafka'"),
        ({**body, "format": "xml"}, "format: unknown value 'xml'"),
        ({**body, "config": {}}, "config: a webhook destination needs url"),
        ({**body, "config": {"url": HOOK, "index": "a"}}, "config: 'index' is not a webhook"),
        ({**body, "config": {"url": "nats://x:4222"}}, "config.url: 'nats://x:4222' must be"),
        ({**body, "config": {"url": 5}}, "config.url: "),
        ({**body, "config": {"url": "https://h/\u0000"}}, "config.url: contains a NUL"),
        ({**body, "secret": "whsec_c2hvcnQ="}, "secret: a webhook signing key"),
        ({**body, "secret": 12}, "secret: "),
        ({**body, "kind": "splunk-hec"}, "secret: a splunk-hec destination needs one"),
        ({**body, "fromSeq": 0}, f"fromSeq: must be 1 to {size + 1}"),
        ({**body, "fromSeq": 2**80}, f"fromSeq: must be 1 to {size + 1}"),
        ({**body, "fromSeq": "x"}, "fromSeq: "),
        ({**body, "eventKinds": ["Nope"]}, "eventKinds: "),
        ({**body, "dataSourceNames": ["a,b"]}, "dataSourceNames: 'a,b' is not"),
        ({**body, "dataSourceNames": ["x"] * 101}, "dataSourceNames: at most 100"),
        ({**body, "colour": "red"}, "colour: "),
        ({"kind": "webhook"}, "name: "),
        (
            {"name": "n", "kind": "nats", "config": {"url": "nats://h:4222", "subject": "a.*"}},
            "config.subject: a NATS subject to publish to",
        ),
        (
            {
                "name": "s",
                "kind": "syslog",
                "config": {"host": "h", "port": "514", "appName": "a b"},
            },
            "config.appName: 1 to 48 printable ASCII",
        ),
        (
            {"name": "s", "kind": "syslog", "config": {"host": "h", "port": "514", "caFile": "/x"}},
            "config.caFile: only with tls true",
        ),
        ({**body, "check": True}, "check: a webhook is checked with its signing key"),
        (
            {
                "name": "s",
                "kind": "syslog",
                "check": True,
                "config": {"host": "127.0.0.1", "port": str(free_port())},
            },
            "check: the receiver cannot be reached: syslog 127.0.0.1:",
        ),
    ]
    for bad, message in bad_creates:
        assert message in error(client.post(STREAMS, json=bad, headers=admin.headers), 400), bad
    assert "'siem'" in error(client.post(STREAMS, json=body, headers=admin.headers), 409)
    replay = f"{STREAMS}/siem/replay"
    for bad, message in [
        ({}, "replay: give exactly one of fromSeq and fromTime"),
        ({"fromSeq": 1, "fromTime": "2024-01-01T00:00:00Z"}, "give exactly one"),
        ({"fromSeq": size + 2}, f"fromSeq: must be 1 to {size + 1}"),
        ({"fromTime": "yesterday"}, "fromTime: cannot parse 'yesterday'"),
        ({"fromTime": "2024-01-01T00:00:00"}, "fromTime: '2024-01-01T00:00:00' has no time zone"),
        ({"from": 1}, "from: "),
    ]:
        assert message in error(client.post(replay, json=bad, headers=admin.headers), 400), bad
    secret = f"{STREAMS}/siem/secret"
    assert "secret: a webhook signing key" in error(
        client.post(secret, json={"secret": "nope"}, headers=admin.headers), 400
    )
    assert "extra: " in error(client.post(secret, json={"extra": 1}, headers=admin.headers), 400)
    for method, url in [
        ("GET", f"{STREAMS}/nope"),
        ("POST", f"{STREAMS}/nope/pause"),
        ("POST", f"{STREAMS}/nope/resume"),
        ("POST", f"{STREAMS}/nope/secret"),
        ("DELETE", f"{STREAMS}/nope"),
    ]:
        message = error(client.request(method, url, headers=admin.headers), 404)
        assert message == "no stream destination named 'nope'"
    error(client.post(f"{STREAMS}/nope/replay", json={"fromSeq": 1}, headers=admin.headers), 404)
    assert state(dstrail) == before


def test_a_checked_destination_is_added_once_its_receiver_answers(
    client: TestClient, dstrail: Dstrail, admin: Login
) -> None:
    receiver = WebhookReceiver(secret=new_webhook_secret()).start()
    try:
        body = {"name": "checked", "kind": "webhook", "config": {"url": receiver.url},
                "secret": receiver.secret, "check": True}  # fmt: skip
        created = ok(client.post(STREAMS, json=body, headers=admin.headers), 201)
    finally:
        receiver.stop()
    assert created["name"] == "checked" and "secret" not in created
    assert receiver.batches == [[]]  # the check: one signed, empty batch
