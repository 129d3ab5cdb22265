"""Request ids (``X-Request-Id``, the same in error bodies) and the access log, on both
databases."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from dstrail.api.access_log import ACCESS, LOG_FORMATS, RequestLog, new_request_id
from dstrail.app import create_app
from dstrail.context import Dstrail
from dstrail.domain.users import Role
from tests.support import Login, data_source_body, make_user

V1 = "/api/datasource/v1/datasources"
AUDIT = "/api/datasource/v1/audit"
SECRET = "s3cr3t-value"  # the secretAccessKey of data_source_body


def request_id(response: Any) -> str:
    """The answer's ``X-Request-Id``: a UUID4 in canonical form."""
    value: str = response.headers["x-request-id"]
    parsed = uuid.UUID(value)
    assert parsed.version == 4
    assert str(parsed) == value
    return value


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="dstrail.access")
    return caplog


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "dstrail.access"]


def test_new_request_ids_are_uuid4() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)


def test_every_answer_carries_a_fresh_request_id(client: TestClient) -> None:
    paths = ["/healthz", "/openapi.json", "/signin", "/api/nowhere", "/v4/nowhere", AUDIT]
    seen = [request_id(client.get(path)) for path in paths for _ in range(2)]
    assert len(set(seen)) == len(seen)
    # A client's id is not taken: the log's ids are the server's own.
    sent = str(uuid.uuid4())
    assert request_id(client.get("/healthz", headers={"X-Request-Id": sent})) != sent


def test_error_bodies_carry_the_answers_request_id(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    answers = [
        client.get(AUDIT),  # 401, audit family
        client.get(AUDIT, headers={"X-Domino-Api-Key": "nope"}),  # 401
        client.get(AUDIT, headers=alice.headers),  # 403, audit family
        client.get(V1),  # 401, public family
        client.get(f"{V1}/ffffffffffffffffffffffff", headers=alice.headers),  # 404
        client.post(V1, json={"name": 3}, headers=alice.headers),  # 400, public family
        client.get("/api/nowhere"),  # no such path
    ]
    for response in answers:
        body = response.json()
        assert set(body) == {"requestId", "errors"}, (response.status_code, body)
        assert body["requestId"] == request_id(response), response.status_code
    assert [r.status_code for r in answers] == [401, 401, 403, 401, 404, 400, 404]


def test_an_unexpected_error_carries_the_request_id_too(
    dstrail: Dstrail, access_log: pytest.LogCaptureFixture
) -> None:
    app = create_app(dstrail)

    @app.get("/api/dstrail/v1/test-boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/dstrail/v1/test-boom")
    assert response.status_code == 500
    rid = request_id(response)
    assert response.json()["requestId"] == rid
    (record,) = access_records(access_log)
    fields = getattr(record, ACCESS)
    assert (fields["status"], fields["requestId"]) == (500, rid)
    failed = [r for r in access_log.records if r.name == "dstrail.api"]
    assert failed and rid in failed[0].getMessage()


def test_a_streamed_answer_carries_the_request_id(
    client: TestClient, dstrail: Dstrail, access_log: pytest.LogCaptureFixture
) -> None:
    admin = make_user(dstrail, "streamer", Role.SYS_ADMIN)
    with client.stream(
        "GET", "/v4/datasource/audit/download", params={"jsonFile": "true"}, headers=admin.headers
    ) as response:
        assert response.status_code == 200
        rid = request_id(response)
        body = b"".join(response.iter_bytes())
    assert body.startswith(b"[")
    (record,) = [r for r in access_records(access_log) if getattr(r, ACCESS)["requestId"] == rid]
    assert getattr(record, ACCESS)["status"] == 200


def test_the_access_log_has_one_line_a_request_and_no_secret(
    client: TestClient, dstrail: Dstrail, access_log: pytest.LogCaptureFixture
) -> None:
    admin = make_user(dstrail, "ops-admin", Role.SYS_ADMIN)
    token = "query-token-that-must-not-be-logged"
    client.cookies.set("dstrail_session", "cookie-that-must-not-be-logged")
    created = client.post(
        V1,
        params={"token": token},
        json=data_source_body("logged-ds"),
        headers={**admin.headers, "Authorization": "Bearer bearer-not-logged"},
    )
    assert created.status_code == 201, created.text
    anonymous = client.get("/healthz", params={"signature": token})
    refused = client.get(V1, headers={"X-Domino-Api-Key": "wrong-key-not-logged"})
    records = access_records(access_log)
    assert len(records) == 3
    by_id = {getattr(r, ACCESS)["requestId"]: r for r in records}
    assert set(by_id) == {request_id(r) for r in (created, anonymous, refused)}

    fields = getattr(by_id[request_id(created)], ACCESS)
    assert fields["method"] == "POST"
    assert fields["path"] == V1
    assert fields["status"] == 201
    assert fields["userId"] == admin.id
    assert 0 < fields["durationMs"] < 60_000
    assert getattr(by_id[request_id(anonymous)], ACCESS)["userId"] is None
    assert getattr(by_id[request_id(anonymous)], ACCESS)["path"] == "/healthz"
    assert getattr(by_id[request_id(refused)], ACCESS)["status"] == 401

    secrets = (admin.api_key, token, "cookie-that", "bearer-not", "wrong-key", SECRET)
    for record in records:
        for format_name, formatter in LOG_FORMATS.items():
            line = formatter().format(record)
            assert "\n" not in line
            assert not [s for s in secrets if s in line], (format_name, line)
    text = LOG_FORMATS["text"]().format(by_id[request_id(created)])
    assert f"dstrail.access POST {V1} 201 " in text
    assert f"user={admin.id} request={request_id(created)}" in text
    document = orjson.loads(LOG_FORMATS["json"]().format(by_id[request_id(anonymous)]))
    assert set(document) == {
        "time",
        "level",
        "logger",
        "method",
        "path",
        "status",
        "durationMs",
        "userId",
        "requestId",
    }
    assert (document["logger"], document["status"], document["userId"]) == (
        "dstrail.access",
        200,
        None,
    )
    assert document["time"].endswith("Z")


def test_a_path_cannot_break_a_log_line(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    client.get("/api/a%0Ab%20c%1B?x=1")
    (record,) = access_records(access_log)
    path = getattr(record, ACCESS)["path"]
    assert path == "/api/a%0Ab%20c%1B"  # as sent, without the query
    for formatter in LOG_FORMATS.values():
        assert "\n" not in formatter().format(record)


def test_a_decoded_path_is_escaped(access_log: pytest.LogCaptureFixture) -> None:
    """A server that gives no ``raw_path``: the decoded path, its control characters and
    spaces made visible."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request"}

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/a\nb c\x1b"}
    asyncio.run(RequestLog(app)(scope, receive, send))
    (record,) = access_records(access_log)
    assert getattr(record, ACCESS)["path"] == "/a\\nb%20c\\u001b"
    assert getattr(record, ACCESS)["status"] == 204
    assert getattr(record, ACCESS)["requestId"] == scope["state"]["request_id"]
    assert sent[0]["headers"] == [(b"x-request-id", scope["state"]["request_id"].encode())]


def test_the_json_format_writes_other_records_as_messages() -> None:
    formatter = LOG_FORMATS["json"]()
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "Started %s", ("x",), None)
    assert orjson.loads(formatter.format(record))["message"] == "Started x"
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        failed = logging.LogRecord("dstrail.api", logging.ERROR, "", 0, "oops", (), sys.exc_info())
    line = formatter.format(failed)
    assert "\n" not in line
    document = orjson.loads(line)
    assert document["level"] == "ERROR"
    assert "ValueError: line one\nline two" in document["exception"]


def test_without_a_listener_nothing_is_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dstrail.access")
    assert request_id(client.get("/healthz"))
    assert access_records(caplog) == []
