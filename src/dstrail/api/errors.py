"""One place that turns ``DstrailError`` (and request validation errors) into responses.

Each API family has the error body its clients expect:

- audit API (``/api/datasource/v1/audit``, downloads): 400 ``{"error"}``, else
  ``{"requestId", "errors"}``;
- public data source API (``/api/``): ``{"requestId", "errors"}``;
- Domino v4 paths (``/v4/``): ``{"message"}``;
- data source proxy (``/objectstore``): ``{"errorType", "subType", "rawError"}`` with Domino's
  statuses, the only ones its client reads: 401, else 400 (a refusal, a missing thing, bad
  input) or 500 (the data source or dstrail failed); signed file URLs keep 403/404, as an
  object store's own signed URLs do;
- the console renders its own HTML page (see ``web``).

A ``requestId`` is the request's own id, the one its answer's ``X-Request-Id`` header carries
(``api.access_log``), as is the id in the server log's lines about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from dstrail.api.access_log import request_id_of
from dstrail.errors import (
    Conflict,
    DstrailError,
    Forbidden,
    InvalidInput,
    MissingCredentials,
    NotAuthenticated,
    NotFound,
)

logger = logging.getLogger("dstrail.api")


class AuditBadRequest(BaseModel):
    """400 of the audit API."""

    error: str


class RequestErrors(BaseModel):
    """401/403 of the audit API, and every error of the public API."""

    requestId: str  # noqa: N815 - Domino's field name
    errors: list[str]


class V4Error(BaseModel):
    """Errors of Domino's v4 paths; a missing or unknown credential answers 403 with
    ``debugMessage`` and ``reason`` too, as Domino does."""

    success: bool = False
    message: str
    debugMessage: str | None = None  # noqa: N815 - Domino's field name
    reason: dict[str, list[str]] | None = None


class ProxyError(BaseModel):
    """Errors of the data source proxy."""

    errorType: str  # noqa: N815
    subType: str  # noqa: N815
    rawError: str  # noqa: N815


def _request_errors(error: DstrailError, request_id: str) -> dict[str, Any]:
    return {"requestId": request_id, "errors": [error.message]}


def _audit_body(error: DstrailError, request_id: str) -> dict[str, Any]:
    if error.status_code == 400:
        return {"error": error.message}
    return _request_errors(error, request_id)


@dataclass(frozen=True, slots=True)
class ErrorFamily:
    """The error body the clients of some paths expect, and how OpenAPI documents it. A router
    names its family once (``APIRouter(responses=FAMILY.responses(...))``); the handlers
    find a path's family by its prefix (``family_of``)."""

    prefixes: tuple[str, ...]
    body: Callable[[DstrailError, str], dict[str, Any]]
    """The body of an error, given the request's id (``X-Request-Id``)."""
    model: type[BaseModel]
    models: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    status: Callable[[DstrailError], int] = lambda error: error.status_code
    """The status an error answers with: its own, unless the family's clients read others."""

    def responses(self, *statuses: int) -> dict[int | str, dict[str, Any]]:
        """OpenAPI ``responses`` for the statuses the family's routes answer."""
        return {status: {"model": self.models.get(status, self.model)} for status in statuses}


AUDIT = ErrorFamily(
    prefixes=("/api/datasource/v1/audit", "/v4/datasource/audit"),
    body=_audit_body,
    model=RequestErrors,
    models={400: AuditBadRequest},
)


def proxy_error_type(error: DstrailError) -> str:
    """Domino's ``errorType`` for an error of the data source proxy."""
    status = error.status_code
    if status in (401, 403) or isinstance(error, MissingCredentials):
        return "credentialsError"
    if status == 404:
        return "notFoundError"
    return "invalidRequestError" if status < 500 else "internalError"


def _proxy_body(error: DstrailError, _request_id: str) -> dict[str, Any]:
    return {
        "errorType": proxy_error_type(error),
        "subType": error.sub_type,
        "rawError": error.message,
    }


def _proxy_status(error: DstrailError) -> int:
    if error.status_code == 401:
        return 401
    return 400 if error.status_code < 500 else 500


def _v4_body(error: DstrailError, _request_id: str) -> dict[str, Any]:
    if isinstance(error, NotAuthenticated):
        return {
            "success": False,
            "message": "Your role does not authorize you to perform this action",
            "debugMessage": f"AnonymousPrincipal is not authorized to perform this action: "
            f"{error.message}",
            "reason": {"required": ["an API key or a run token"], "missing": ["a valid one"]},
        }
    return {"success": False, "message": error.message}


SIGNED_FILES = ErrorFamily(prefixes=("/objectstore/datasets",), body=_proxy_body, model=ProxyError)
PROXY = ErrorFamily(
    prefixes=("/objectstore",), body=_proxy_body, model=ProxyError, status=_proxy_status
)
V4 = ErrorFamily(
    prefixes=("/v4/",),
    body=_v4_body,
    model=V4Error,
    status=lambda error: 403 if isinstance(error, NotAuthenticated) else error.status_code,
)
PUBLIC = ErrorFamily(prefixes=("/api/", "/metrics"), body=_request_errors, model=RequestErrors)
FAMILIES = (AUDIT, SIGNED_FILES, PROXY, V4, PUBLIC)
"""In the order paths are matched: the first family with a prefix of the path answers."""


def family_of(path: str) -> ErrorFamily | None:
    """The family that answers errors on ``path``; None for the console's pages."""
    return next((f for f in FAMILIES if path.startswith(f.prefixes)), None)


HtmlRenderer = Callable[[Request, DstrailError], Response]


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI, *, html: HtmlRenderer | None = None) -> None:
    """Render every ``DstrailError`` (and validation error) in its family's shape."""

    def render(
        request: Request, error: DstrailError, extra_headers: Mapping[str, str] | None = None
    ) -> Response:
        if html is not None and family_of(request.url.path) is None:
            return html(request, error)
        family = family_of(request.url.path) or PUBLIC
        status = family.status(error)
        headers = dict(extra_headers or {})
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        body = family.body(error, request_id_of(request))
        return JSONResponse(body, status_code=status, headers=headers)

    async def on_dstrail_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, DstrailError)
        if error.status_code >= 500:
            logger.error(
                "%s %s failed: %s (request %s)",
                request.method,
                request.url.path,
                error.message,
                request_id_of(request),
            )
        return render(request, error)

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return render(request, InvalidInput(_validation_message(error)))

    async def on_http_error(request: Request, error: Exception) -> Response:
        # Routing errors (no such path, method not allowed) keep the family's error shape.
        assert isinstance(error, StarletteHTTPException)
        if error.status_code < 400:  # a redirect or the like: not an error to render
            return await http_exception_handler(request, error)
        return render(request, _http_error(request, error), error.headers)

    async def on_unexpected(request: Request, error: Exception) -> Response:
        logger.exception(
            "%s %s failed (request %s)", request.method, request.url.path, request_id_of(request)
        )
        return render(request, DstrailError("internal error; the server log has the details"))

    app.add_exception_handler(DstrailError, on_dstrail_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    _document_validation_errors_as_400(app)


def _document_validation_errors_as_400(app: FastAPI) -> None:
    """Validation errors answer 400 in the family's shape, so the schema must not promise the
    422 FastAPI documents by default."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_HTTP_ERRORS: dict[int, type[DstrailError]] = {
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def _http_error(request: Request, error: StarletteHTTPException) -> DstrailError:
    status = error.status_code
    if status == 404 and error.detail == "Not Found":
        message = f"no such path: {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(error.detail)
    problem = _HTTP_ERRORS.get(status, InvalidInput if status < 500 else DstrailError)(message)
    problem.status_code = status
    return problem
