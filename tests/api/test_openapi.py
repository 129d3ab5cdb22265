"""``/openapi.json`` describes every JSON route of the app with the error shapes it answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dstrail.api.errors import V4, family_of
from tests.support import Login

JSON_PREFIXES = ("/api/", "/v4/", "/objectstore", "/healthz")
AUDIT_PREFIXES = ("/api/datasource/v1/audit", "/v4/datasource/audit")


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(path, route) of every APIRoute, included routers unrolled."""
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI before route contexts: app.routes is flat
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, route
        return
    for context in iterate(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield context.path or route.path, route


def expected_error_model(path: str, status: int) -> str:
    if path.startswith(AUDIT_PREFIXES):
        return "AuditBadRequest" if status == 400 else "RequestErrors"
    if path.startswith("/objectstore"):
        return "ProxyError"
    if path.startswith("/v4/"):
        return "V4Error"
    return "RequestErrors"


@pytest.fixture
def schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_every_json_route_is_documented(client: TestClient, schema: dict[str, Any]) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = list(api_routes(app))
    json_routes = [(p, r) for p, r in routes if p.startswith(JSON_PREFIXES)]
    assert len(json_routes) >= 20
    paths = schema["paths"]
    missing = []
    for path, route in json_routes:
        for method in route.methods:
            operations = paths.get(path.replace(":path}", "}"), {})
            if method.lower() not in operations:
                missing.append(f"{method} {path}")
    assert missing == []
    # the routes this issue promises, by name
    for method, path in (
        ("get", "/api/datasource/v1/audit"),
        ("get", "/api/datasource/v1/audit/"),
        ("get", "/v4/datasource/audit/download"),
        ("get", "/v4/datasource/audit/download/runs"),
        ("post", "/api/datasource/v1/datasources"),
        ("get", "/api/datasource/v1/datasources"),
        ("get", "/api/datasource/v1/datasources/{data_source_id}"),
        ("patch", "/api/datasource/v1/datasources/{data_source_id}"),
        ("delete", "/api/datasource/v1/datasources/{data_source_id}"),
        ("put", "/v4/datasource/{data_source_id}/users"),
        ("post", "/v4/datasource/{data_source_id}/transfer/{new_owner_id}"),
        ("post", "/v4/datasource/{data_source_id}/projects/{project_id}"),
        ("delete", "/v4/datasource/{data_source_id}/projects/{project_id}"),
        ("post", "/api/dstrail/v1/users"),
        ("post", "/api/dstrail/v1/users/{user_id}/api-keys"),
        ("post", "/api/dstrail/v1/projects"),
        ("post", "/api/dstrail/v1/runs"),
        ("post", "/api/dstrail/v1/runs/{run_id}/stop"),
    ):
        assert method in paths.get(path, {}), f"{method} {path}"


def test_every_operation_documents_its_errors(schema: dict[str, Any]) -> None:
    models = schema["components"]["schemas"]
    problems = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            if "422" in responses:
                problems.append(f"{where}: documents 422, but validation errors answer 400")
            if path == "/healthz" or path.startswith("/objectstore/datasets"):
                continue  # no credential: signed file URLs carry their own signature
            # Domino's v4 paths answer a missing credential with 403, the others with 401
            unauthenticated = "403" if family_of(path) is V4 else "401"
            if unauthenticated not in responses:
                problems.append(f"{where}: does not document {unauthenticated}")
            if "requestBody" in operation and "400" not in responses:
                problems.append(f"{where}: takes a body but does not document 400")
            for status, response in responses.items():
                if not status.startswith("4"):
                    continue
                ref = response.get("content", {}).get("application/json", {}).get("schema", {})
                name = ref.get("$ref", "").rsplit("/", 1)[-1]
                wanted = expected_error_model(path, int(status))
                if name != wanted:
                    problems.append(f"{where} {status}: documented as {name!r}, not {wanted!r}")
    assert problems == []
    assert set(models["RequestErrors"]["required"]) == {"requestId", "errors"}
    assert models["AuditBadRequest"]["required"] == ["error"]
    assert models["V4Error"]["required"] == ["message"]
    assert "HTTPValidationError" not in models


def test_the_documented_shapes_are_the_answered_ones(
    client: TestClient, schema: dict[str, Any], admin: Login
) -> None:
    models = schema["components"]["schemas"]
    answers = {
        "RequestErrors": client.get("/api/datasource/v1/audit"),
        "AuditBadRequest": client.get(
            "/api/datasource/v1/audit", params={"eventKinds": "X"}, headers=admin.headers
        ),
        "V4Error": client.put("/v4/datasource/x/users", json={}),
    }
    for name, response in answers.items():
        assert response.status_code in (400, 401, 403), response.text
        assert set(response.json()) == set(models[name]["properties"]), name
    assert schema["paths"]["/api/datasource/v1/audit"]["get"]["parameters"]
    parameter_names = {
        p["name"] for p in schema["paths"]["/api/datasource/v1/audit"]["get"]["parameters"]
    }
    assert {"startTime", "endTime", "dataSourceNames", "dataSourceIds", "eventKinds"} <= (
        parameter_names
    )
