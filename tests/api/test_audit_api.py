"""SPEC 3: ``GET /api/datasource/v1/audit`` exactly as Domino's clients expect it."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi.testclient import TestClient

from dstrail.audit.recorder import record_event
from dstrail.context import Dstrail
from dstrail.domain.ids import new_object_id
from dstrail.domain.projects import RunType
from dstrail.domain.timestamps import DAY_MS, format_ms
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.domain.users import Role
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from tests.support import DOMINO_EVENT_FIELDS, Login, SettableClock, data_source_body, make_user

AUDIT = "/api/datasource/v1/audit"
FIELDS = DOMINO_EVENT_FIELDS
T0 = 1_692_826_821_669  # 2023-08-23T21:40:21.669Z

Params = list[tuple[str, str]]


def read(client: TestClient, login: Login, params: Params | None = None) -> list[dict[str, Any]]:
    response = client.get(AUDIT, params=params or [], headers=login.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def bad_request(client: TestClient, login: Login, params: Params) -> str:
    response = client.get(AUDIT, params=params, headers=login.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


def create(client: TestClient, login: Login, name: str, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/api/datasource/v1/datasources",
        json=data_source_body(name, **overrides),
        headers=login.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def append(
    dstrail: Dstrail,
    ts_ms: int,
    *,
    name: str = "appended-ds",
    kind: EventKind = EventKind.CREATE_DATA_SOURCE,
    data_source_id: str = "aaaaaaaaaaaaaaaaaaaaaaaa",
) -> int:
    """One event straight through the repository, at an exact millisecond."""
    with dstrail.store.write() as tx:
        return tx.audit.append(
            NewAuditEvent(
                event_kind=kind,
                data_source_id=data_source_id,
                data_source_name=name,
                data_source_type="S3Config",
                performed_by="bbbbbbbbbbbbbbbbbbbbbbbb",
                performed_by_username="someone",
                timestamp_ms=ts_ms,
            )
        )


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["dataSourceName"] for e in events]


# -- auth --------------------------------------------------------------------------------------


def assert_request_errors(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "errors"}
    assert uuid.UUID(body["requestId"])
    assert isinstance(body["errors"], list)
    assert body["errors"]
    assert all(isinstance(e, str) and e for e in body["errors"])


def test_no_key_and_unknown_key_are_401(client: TestClient, admin: Login) -> None:
    for path in (AUDIT, AUDIT + "/"):
        assert_request_errors(client.get(path), 401)
        assert_request_errors(client.get(path, headers={"X-Domino-Api-Key": "nope"}), 401)
        assert_request_errors(client.get(path, headers={"Authorization": "Bearer nope"}), 401)
    # authentication comes before parameter checks
    assert_request_errors(client.get(AUDIT, params={"startTime": "garbage"}), 401)


def test_request_ids_are_fresh(client: TestClient) -> None:
    first = client.get(AUDIT).json()["requestId"]
    second = client.get(AUDIT).json()["requestId"]
    assert first != second


def test_user_role_is_403(client: TestClient, alice: Login) -> None:
    for path in (AUDIT, AUDIT + "/"):
        assert_request_errors(client.get(path, headers=alice.headers), 403)
    message = client.get(AUDIT, headers=alice.headers).json()["errors"][0]
    assert "SysAdmin" in message and "Auditor" in message
    assert_request_errors(
        client.get(AUDIT, headers={"Authorization": f"Bearer {alice.api_key}"}), 403
    )


def test_bearer_api_key_and_auditor_are_accepted(
    client: TestClient, dstrail: Dstrail, admin: Login, alice: Login
) -> None:
    create(client, alice, "bearer-ds")
    response = client.get(AUDIT, headers={"Authorization": f"Bearer {admin.api_key}"})
    assert response.status_code == 200
    assert names(response.json()) == ["bearer-ds"]
    auditor = make_user(dstrail, "auditor", Role.AUDITOR)
    assert names(read(client, auditor)) == ["bearer-ds"]


# -- paths and shape ---------------------------------------------------------------------------


def test_both_paths_answer_directly(client: TestClient, admin: Login, alice: Login) -> None:
    create(client, alice, "slash-ds")
    bodies = []
    for path in (AUDIT, AUDIT + "/"):
        response = client.get(path, headers=admin.headers, follow_redirects=False)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        bodies.append(response.json())
    assert bodies[0] == bodies[1]
    assert names(bodies[0]) == ["slash-ds"]


def test_bare_array_with_exactly_seven_fields(
    client: TestClient, clock: SettableClock, admin: Login, alice: Login
) -> None:
    clock.now_ms = T0
    created = create(client, alice, "shape-ds")
    response = client.get(AUDIT, headers=admin.headers)
    events = response.json()
    assert isinstance(events, list)
    assert response.text.startswith("[")
    assert events == [
        {
            "dataSourceId": created["id"],
            "dataSourceName": "shape-ds",
            "dataSourceType": "S3Config",
            "eventKind": "CreateDataSource",
            "metadata": {
                "performedByUsername": "alice",
                "credentialType": "Shared",
                "isEveryone": "false",
                "ownerId": alice.id,
                "userIds": "",
                "projectIds": "",
            },
            "performedBy": alice.id,
            "timestamp": "2023-08-23T21:40:21.669Z",
        }
    ]
    assert set(events[0]) == FIELDS
    assert all(isinstance(v, str) for v in events[0]["metadata"].values())


def test_empty_trail_is_an_empty_array(client: TestClient, admin: Login) -> None:
    response = client.get(AUDIT, headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == []


def test_timestamp_format_pads_milliseconds(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    for ts in (T0 - 669, T0 - 600, T0 - 69):  # .000, .069, .600
        append(dstrail, ts)
    stamps = [e["timestamp"] for e in read(client, admin)]
    assert stamps == [
        "2023-08-23T21:40:21.600Z",
        "2023-08-23T21:40:21.069Z",
        "2023-08-23T21:40:21.000Z",
    ]


# -- filters -----------------------------------------------------------------------------------


def test_list_parameters_or_inside_and_across(
    client: TestClient, admin: Login, alice: Login
) -> None:
    a = create(client, alice, "ds-a")
    b = create(client, alice, "ds-b")
    create(client, alice, "ds-c")
    for ds in (a, b):
        assert client.delete(f"/api/datasource/v1/datasources/{ds['id']}", headers=alice.headers)

    kinds = [("eventKinds", "CreateDataSource"), ("eventKinds", "DeleteDataSource")]
    assert len(read(client, admin, kinds)) == 5
    deletes = read(client, admin, [("eventKinds", "DeleteDataSource")])
    assert names(deletes) == ["ds-b", "ds-a"]

    by_name = [("dataSourceNames", "ds-a"), ("dataSourceNames", "ds-c")]
    assert sorted(names(read(client, admin, by_name))) == ["ds-a", "ds-a", "ds-c"]
    both = read(client, admin, [*by_name, ("eventKinds", "DeleteDataSource")])
    assert [(e["dataSourceName"], e["eventKind"]) for e in both] == [("ds-a", "DeleteDataSource")]

    by_id = [("dataSourceIds", a["id"]), ("dataSourceIds", b["id"])]
    assert sorted(names(read(client, admin, by_id))) == ["ds-a", "ds-a", "ds-b", "ds-b"]
    id_and_name = read(client, admin, [("dataSourceIds", a["id"]), ("dataSourceNames", "ds-b")])
    assert id_and_name == []
    assert read(client, admin, [("dataSourceNames", "no-such-ds")]) == []


def test_window_defaults_to_the_last_24_hours_inclusive(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    now = clock.now_ms = T0
    for name, ts in (
        ("too-old", now - DAY_MS - 1),
        ("oldest-in", now - DAY_MS),
        ("now", now),
        ("future", now + 1),
    ):
        append(dstrail, ts, name=name)
    assert names(read(client, admin)) == ["now", "oldest-in"]


def test_window_with_start_only_runs_up_to_now(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    now = clock.now_ms = T0
    start = now - 10 * DAY_MS
    for name, ts in (
        ("before", start - 1),
        ("at-start", start),
        ("now", now),
        ("future", now + 1),
    ):
        append(dstrail, ts, name=name)
    events = read(client, admin, [("startTime", format_ms(start))])
    assert names(events) == ["now", "at-start"]


def test_window_with_end_only_is_the_day_before_it(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    end = T0 - 5 * DAY_MS
    for name, ts in (
        ("too-old", end - DAY_MS - 1),
        ("day-before", end - DAY_MS),
        ("at-end", end),
        ("after-end", end + 1),
        ("now", T0),
    ):
        append(dstrail, ts, name=name)
    assert names(read(client, admin, [("endTime", format_ms(end))])) == ["at-end", "day-before"]


def test_window_bounds_are_inclusive_to_the_millisecond(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    start, end = T0 - 40 * DAY_MS, T0 - 30 * DAY_MS
    for name, ts in (("s-1", start - 1), ("s", start), ("e", end), ("e+1", end + 1)):
        append(dstrail, ts, name=name)
    window = [("startTime", format_ms(start)), ("endTime", format_ms(end))]
    assert names(read(client, admin, window)) == ["e", "s"]
    # the same instants written with an offset
    start_text = "2023-07-14T23:40:21.669+02:00"
    end_text = "2023-07-24T21:40:21.669Z"
    assert format_ms(start) == "2023-07-14T21:40:21.669Z"
    assert names(read(client, admin, [("startTime", start_text), ("endTime", end_text)])) == [
        "e",
        "s",
    ]
    # an equal start and end is a one-millisecond window
    assert names(read(client, admin, [("startTime", format_ms(end)), ("endTime", format_ms(end))]))
    assert names(
        read(client, admin, [("startTime", format_ms(end)), ("endTime", format_ms(end))])
    ) == ["e"]


def test_offset_sent_with_an_unencoded_plus(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    append(dstrail, T0 - 3_600_000, name="hour-ago")
    # curl users write '+02:00' raw; in a query string '+' arrives as a space
    response = client.get(AUDIT + "?startTime=2023-08-23T22:00:00.000+02:00", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert names(response.json()) == ["hour-ago"]


def test_bad_parameters_are_400_naming_what_is_accepted(
    client: TestClient, admin: Login, alice: Login
) -> None:
    create(client, alice, "untouched")
    message = bad_request(
        client,
        admin,
        [("startTime", "2023-08-24T00:00:00Z"), ("endTime", "2023-08-23T00:00:00Z")],
    )
    assert "startTime" in message
    assert "endTime" in message
    message = bad_request(client, admin, [("startTime", "yesterday")])
    assert "startTime" in message
    assert "ISO-8601" in message
    message = bad_request(client, admin, [("endTime", "2023-08-23T21:40:21.669")])
    assert "endTime" in message
    assert "zone" in message
    message = bad_request(client, admin, [("eventKinds", "ReadDataSource")])
    assert "ReadDataSource" in message
    for kind in ("CreateDataSource", "AccessDataSource", "DataSourceDissociatedFromProject"):
        assert kind in message
    message = bad_request(
        client, admin, [("eventKinds", "CreateDataSource"), ("eventKinds", "createdatasource")]
    )
    assert "createdatasource" in message
    message = bad_request(client, admin, [("dataSourceName", "untouched")])
    assert "dataSourceName" in message
    assert "dataSourceNames" in message
    message = bad_request(client, admin, [("startTime", format_ms(T0)), ("startTime", "x")])
    assert "startTime" in message
    message = bad_request(client, admin, [("dataSourceIds", "not-an-id")])
    assert "dataSourceIds" in message
    # the trailing-slash path answers the same way
    response = client.get(AUDIT + "/", params={"eventKinds": "Nope"}, headers=admin.headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


# -- history -----------------------------------------------------------------------------------


def test_names_are_matched_as_they_were_at_event_time(
    client: TestClient, clock: SettableClock, admin: Login, alice: Login
) -> None:
    old = create(client, alice, "warehouse")
    clock.advance(1000)
    deleted = client.delete(f"/api/datasource/v1/datasources/{old['id']}", headers=alice.headers)
    assert deleted.status_code == 200
    clock.advance(1000)
    new = create(
        client,
        admin,
        "warehouse",
        dataSourceType="SnowflakeConfig",
        authType="Basic",
        config={"accountName": "acct"},
        credentials={"username": "u", "password": "p"},
    )
    assert new["id"] != old["id"]
    history = read(client, admin, [("dataSourceNames", "warehouse")])
    assert [(e["dataSourceId"], e["eventKind"], e["dataSourceType"]) for e in history] == [
        (new["id"], "CreateDataSource", "SnowflakeConfig"),
        (old["id"], "DeleteDataSource", "S3Config"),
        (old["id"], "CreateDataSource", "S3Config"),
    ]
    assert [e["performedBy"] for e in history] == [admin.id, alice.id, alice.id]
    old_only = read(client, admin, [("dataSourceIds", old["id"])])
    assert [e["eventKind"] for e in old_only] == ["DeleteDataSource", "CreateDataSource"]


def test_newest_first_with_ties_by_sequence(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    clock.now_ms = T0
    for name in ("first", "second", "third"):
        create(client, alice, name)  # the same millisecond
    append(dstrail, T0 - 5000, name="appended-late-but-older")
    append(dstrail, T0 - 1, name="appended-last")
    assert names(read(client, admin)) == [
        "third",
        "second",
        "first",
        "appended-last",
        "appended-late-but-older",
    ]


def test_extension_kinds_only_when_named(
    client: TestClient, clock: SettableClock, admin: Login, alice: Login
) -> None:
    ds = create(client, alice, "ext-ds")
    clock.advance(10)
    patched = client.patch(
        f"/api/datasource/v1/datasources/{ds['id']}",
        json={"config": {"bucket": "other", "region": "us-east-1"}},
        headers=alice.headers,
    )
    assert patched.status_code == 200, patched.text
    default = read(client, admin)
    assert [e["eventKind"] for e in default] == ["CreateDataSource"]
    updates = read(client, admin, [("eventKinds", "UpdateDataSource")])
    assert [e["eventKind"] for e in updates] == ["UpdateDataSource"]
    assert updates[0]["metadata"]["changedFields"] == "config"
    assert set(updates[0]) == FIELDS
    mixed = read(
        client, admin, [("eventKinds", "UpdateDataSource"), ("eventKinds", "CreateDataSource")]
    )
    assert [e["eventKind"] for e in mixed] == ["UpdateDataSource", "CreateDataSource"]


def test_extension_filters_by_user_project_and_run(
    client: TestClient,
    dstrail: Dstrail,
    clock: SettableClock,
    admin: Login,
    alice: Login,
    bob: Login,
) -> None:
    mine = create(client, alice, "alice-ds", permissions={"isEveryone": True, "userIds": []})
    create(client, bob, "bob-ds")
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx,
            actor=alice.user,
            name="proj",
            owner=alice.user,
            collaborators=[bob.user],
            now_ms=clock(),
        )
        other = project_service.create_project(
            tx, actor=bob.user, name="other", owner=bob.user, collaborators=[], now_ms=clock()
        )
        run = run_service.start_run(
            tx,
            actor=bob.user,
            project=project,
            user=bob.user,
            run_type=RunType.BATCH,
            now_ms=clock(),
        )
        other_run = run_service.start_run(
            tx, actor=bob.user, project=other, user=bob.user, run_type=RunType.APP, now_ms=clock()
        )
    attached = client.post(
        f"/v4/datasource/{mine['id']}/projects/{project.id}", headers=alice.headers
    )
    assert attached.status_code == 200, attached.text
    with dstrail.store.write() as tx:
        ds = tx.data_sources.by_id(mine["id"])
        assert ds is not None
        for r in (run, other_run):
            record_event(
                tx,
                kind=EventKind.ACCESS_DATA_SOURCE,
                data_source=ds,
                actor=bob.user,
                now_ms=clock(),
                run=r,
                metadata={"clientSource": "Python", "operation": "getDataSource"},
            )

    by_alice = read(client, admin, [("performedBy", alice.id)])
    assert [e["eventKind"] for e in by_alice] == [
        "DataSourceAssociatedToProject",
        "CreateDataSource",
    ]
    both_users = read(client, admin, [("performedBy", alice.id), ("performedBy", bob.id)])
    assert len(both_users) == 5
    in_project = read(client, admin, [("projectIds", project.id)])
    assert [e["eventKind"] for e in in_project] == [
        "AccessDataSource",
        "DataSourceAssociatedToProject",
    ]
    assert in_project[0]["metadata"]["runId"] == run.id
    in_run = read(client, admin, [("runIds", other_run.id)])
    assert len(in_run) == 1
    assert in_run[0]["metadata"]["projectId"] == other.id
    assert read(client, admin, [("runIds", run.id), ("performedBy", alice.id)]) == []
    assert read(client, admin, [("performedBy", new_object_id())]) == []
    assert "performedBy" in bad_request(client, admin, [("performedBy", "alice")])


# -- paging and streaming ----------------------------------------------------------------------


def follow(client: TestClient, login: Login, first: str) -> tuple[list[dict[str, Any]], int]:
    """Every page from ``first`` on; returns the events and the number of pages."""
    url: str | None = first
    events: list[dict[str, Any]] = []
    pages = 0
    while url is not None:
        response = client.get(url, headers=login.headers, follow_redirects=False)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        events.extend(page)
        link = response.headers.get("link")
        if link is None:
            url = None
        else:
            assert link.endswith('>; rel="next"'), link
            assert page
            url = link[1 : link.index(">")]
    return events, pages


def test_limit_pages_cover_every_row_once(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    for i in range(23):
        append(dstrail, T0 - (i // 3) * 1000, name=f"ds-{i}")  # ties across page ends
    whole = read(client, admin)
    assert len(whole) == 23
    paged, pages = follow(client, admin, AUDIT + "?limit=5")
    assert pages == 5
    assert paged == whole
    exact, pages = follow(client, admin, AUDIT + "/?limit=23")
    assert (exact, pages) == (whole, 1)
    filtered, _ = follow(
        client, admin, AUDIT + "?limit=2&dataSourceNames=ds-4&dataSourceNames=ds-7"
    )
    assert names(filtered) == ["ds-4", "ds-7"]


def test_paging_keeps_its_window_when_time_passes(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    clock.now_ms = T0
    for i in range(6):
        append(dstrail, T0 - DAY_MS + i, name=f"edge-{i}")
    first = client.get(AUDIT, params={"limit": "3"}, headers=admin.headers)
    assert names(first.json()) == ["edge-5", "edge-4", "edge-3"]
    clock.advance(60_000)  # the default window has moved past the older rows
    link = first.headers["link"]
    second = client.get(link[1 : link.index(">")], headers=admin.headers)
    assert second.status_code == 200
    assert names(second.json()) == ["edge-2", "edge-1", "edge-0"]


def test_bad_limit_and_cursor_are_400(client: TestClient, admin: Login) -> None:
    for value in ("0", "-1", "abc", "10001"):
        assert "limit" in bad_request(client, admin, [("limit", value)])
    assert "cursor" in bad_request(client, admin, [("cursor", "1.2")])
    assert "cursor" in bad_request(client, admin, [("limit", "5"), ("cursor", "nonsense")])


def test_a_large_window_streams_completely(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login
) -> None:
    # More than one read chunk (5,000 rows), with a timestamp tie across the chunk boundary.
    # Appended in transactions of 500: on PostgreSQL one transaction of thousands of appends
    # grows quadratically (every append rewrites the same audit_head row).
    total = 6_000
    clock.now_ms = T0
    for batch in range(0, total, 500):
        with dstrail.store.write() as tx:
            for i in range(batch, batch + 500):
                tx.audit.append(
                    NewAuditEvent(
                        event_kind=EventKind.ACCESS_DATA_SOURCE
                        if i % 2
                        else EventKind.CREATE_DATA_SOURCE,
                        data_source_id="cccccccccccccccccccccccc",
                        data_source_name=f"bulk-{i}",
                        data_source_type="S3Config",
                        performed_by="dddddddddddddddddddddddd",
                        performed_by_username="bulk",
                        timestamp_ms=T0 - DAY_MS + (i // 3) * 7,
                        metadata={"i": str(i)},
                    )
                )
    with client.stream("GET", AUDIT, headers=admin.headers) as response:
        assert response.status_code == 200
        pieces = list(response.iter_bytes())
    events = orjson.loads(b"".join(pieces))
    assert len(events) == total
    assert [int(e["metadata"]["i"]) for e in events] == list(range(total - 1, -1, -1))
    assert all(set(e) == FIELDS for e in events)
    accesses = read(client, admin, [("eventKinds", "AccessDataSource")])
    assert len(accesses) == total // 2


# -- the other read paths ------------------------------------------------------------------------


def test_downloads_and_export(
    client: TestClient, dstrail: Dstrail, clock: SettableClock, admin: Login, alice: Login
) -> None:
    clock.now_ms = T0
    append(dstrail, T0 - 200 * DAY_MS, name="too-old")
    append(dstrail, T0 - 100 * DAY_MS, name="months-ago")
    append(dstrail, T0 - 1000, name="=recent", kind=EventKind.UPDATE_DATA_SOURCE)
    append(dstrail, T0 - 500, name="recent")
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx, actor=alice.user, name="p", owner=alice.user, collaborators=[], now_ms=T0
        )
        run = run_service.start_run(
            tx, actor=alice.user, project=project, user=alice.user, run_type=RunType.APP, now_ms=T0
        )
    ds = create(client, alice, "run-ds")
    with dstrail.store.write() as tx:
        found = tx.data_sources.by_id(ds["id"])
        assert found is not None
        record_event(
            tx,
            kind=EventKind.ACCESS_DATA_SOURCE,
            data_source=found,
            actor=alice.user,
            now_ms=T0 - 300 * DAY_MS,
            run=run,
        )

    as_json = client.get(
        "/v4/datasource/audit/download", params={"jsonFile": "true"}, headers=admin.headers
    )
    assert as_json.status_code == 200
    assert "attachment" in as_json.headers["content-disposition"]
    assert names(as_json.json()) == ["run-ds", "recent", "months-ago"]
    as_text = client.get("/v4/datasource/audit/download", headers=admin.headers)
    assert as_text.status_code == 200
    lines = as_text.text.splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("2023-08-23T21:40:21.169Z CreateDataSource dataSource=recent")
    assert "jsonFile" in bad_request_at(client, admin, "/v4/datasource/audit/download?jsonFile=yes")
    assert "startTime" in bad_request_at(
        client, admin, "/v4/datasource/audit/download?startTime=2023-01-01T00:00:00Z"
    )

    by_run = client.get(
        "/v4/datasource/audit/download/runs", params={"runIds": run.id}, headers=admin.headers
    )
    assert by_run.status_code == 200
    rows = [orjson.loads(line) for line in by_run.text.splitlines()]
    assert [(r["eventKind"], r["dataSourceName"]) for r in rows] == [("AccessDataSource", "run-ds")]
    assert "runIds" in bad_request_at(client, admin, "/v4/datasource/audit/download/runs?runIds=")

    exported = client.get(
        "/api/datasource/v1/audit/export",
        params=[("eventKinds", "UpdateDataSource"), ("format", "csv")],
        headers=admin.headers,
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    body = exported.text.splitlines()
    assert body[0].startswith("timestamp,eventKind,dataSourceName")
    assert len(body) == 2
    assert ",'=recent," in body[1]
    assert "format" in bad_request_at(client, admin, "/api/datasource/v1/audit/export?format=xml")
    for path in (
        "/v4/datasource/audit/download",
        "/v4/datasource/audit/download/runs?runIds=" + run.id,
        "/api/datasource/v1/audit/export",
    ):
        assert_request_errors(client.get(path), 401)
        assert_request_errors(client.get(path, headers=alice.headers), 403)


def bad_request_at(client: TestClient, login: Login, url: str) -> str:
    response = client.get(url, headers=login.headers)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    message: str = response.json()["error"]
    return message
