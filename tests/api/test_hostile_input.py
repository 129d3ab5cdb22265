"""Odd input gets a 400 that names what is wrong, on both databases, and changes nothing:
lone UTF-16 surrogates, NUL characters and integers too large for the databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dstrail.context import Dstrail
from tests.support import Login, audit_count, create_dataset

V1 = "/api/datasource/v1/datasources"
BODY = (
    '{"name": %s, "displayName": %s, "description": %s, "dataSourceType": "S3Config", '
    '"authType": "AWSIAMBasic", "config": {"bucket": %s}}'
)


def _body(field: str, value: str) -> bytes:
    values = {"name": '"ok-name"', "displayName": '"Ok"', "description": '"d"', "bucket": '"b"'}
    values[field] = value
    return (BODY % tuple(values.values())).encode()


def _post(client: TestClient, login: Login, path: str, raw: bytes) -> tuple[int, str]:
    headers = {**login.headers, "Content-Type": "application/json"}
    response = client.post(path, content=raw, headers=headers)
    return response.status_code, response.text


@pytest.mark.parametrize("escape", [r'"a\ud800b"', r'"a\udfffb"', r'"a\u0000b"'])
@pytest.mark.parametrize(
    ("field", "named"),
    [("name", "name"), ("displayName", "displayName"), ("description", "description"),
     ("bucket", "config.bucket")],
)  # fmt: skip
def test_a_body_that_is_not_text_is_refused_naming_the_field(
    client: TestClient, dstrail: Dstrail, alice: Login, escape: str, field: str, named: str
) -> None:
    before = audit_count(dstrail)
    status, text = _post(client, alice, V1, _body(field, escape))
    assert status == 400, text
    assert named in text and ("surrogate" in text or "NUL" in text)
    assert audit_count(dstrail) == before
    # the connection and the server are fine afterwards
    status, text = _post(client, alice, V1, _body("name", '"fine-name"'))
    assert status == 201, text


def test_a_project_name_that_is_not_text_is_refused(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    status, text = _post(client, alice, "/api/dstrail/v1/projects", rb'{"name": "p\ud800"}')
    assert status == 400 and "name" in text
    status, _ = _post(client, alice, "/api/dstrail/v1/projects", b'{"name": "p"}')
    assert status == 201


@pytest.mark.parametrize(
    "path",
    [
        "/api/datasource/v1/audit?dataSourceNames=a%00b",
        "/api/datasource/v1/audit/export?dataSourceNames=a%00b",
        "/api/datasource/v1/audit?eventKinds=Create%00DataSource",
        "/v4/datasource/audit/download/runs?runIds=a%00b",
    ],
)
def test_a_nul_in_a_query_is_a_400_before_any_byte_is_streamed(
    client: TestClient, admin: Login, path: str
) -> None:
    response = client.get(path, headers=admin.headers)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"]


def test_a_nul_in_a_path_is_a_400(client: TestClient, dstrail: Dstrail, alice: Login) -> None:
    before = audit_count(dstrail)
    response = client.get("/v4/datasource/name/a%00b", headers=alice.headers)
    assert response.status_code == 400, response.text
    assert "name" in response.json()["message"] and "NUL" in response.json()["message"]
    assert audit_count(dstrail) == before


def test_a_nul_in_a_proxy_body_is_a_400(client: TestClient, dstrail: Dstrail, alice: Login) -> None:
    ds = create_dataset(dstrail, alice, "files")
    before = audit_count(dstrail)
    raw = b'{"datasourceId": "%s", "prefix": "a\\u0000b"}' % ds.id.encode()
    status, text = _post(client, alice, "/objectstore/list", raw)
    assert status == 400 and "prefix" in text
    assert audit_count(dstrail) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/datasource/v1/audit/integrity/checkpoint?treeSize=3385406429762833520474980352",
        "/api/datasource/v1/audit/integrity/inclusion?seq=268522176756532515056910336",
        "/api/datasource/v1/audit/integrity/inclusion?seq=1&treeSize=9223372036854775808",
        "/api/datasource/v1/audit/integrity/consistency?first=0&second=9223372036854775808",
    ],
)
def test_integers_beyond_64_bits_are_a_400(client: TestClient, admin: Login, path: str) -> None:
    response = client.get(path, headers=admin.headers)
    assert response.status_code == 400, response.text
    assert "9223372036854775807" in response.text


def test_an_empty_credentials_map_means_no_credentials(
    client: TestClient, dstrail: Dstrail, alice: Login
) -> None:
    body = {
        "name": "files",
        "dataSourceType": "DatasetConfig",
        "authType": "NoAuth",
        "config": {},
        "credentials": {},
    }
    response = client.post(V1, json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
