"""The Arrow Flight server for tabular data sources (``ds.query(sql)`` in the client).

A ticket is the JSON the client sends: ``{datasourceId, sqlQuery, configOverwrites,
credentialOverwrites}``. The caller authenticates with ``x-domino-api-key``, ``x-domino-jwt``
or ``authorization: Bearer``, and says where it runs with ``x-domino-run-id`` and
``x-domino-client-source`` (gRPC metadata, lower-case).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

import orjson
import pyarrow as pa
from pyarrow import flight

from dstrail.context import Dstrail
from dstrail.domain.text import check_text
from dstrail.errors import DstrailError, Forbidden, InvalidInput, NotAuthenticated
from dstrail.proxy.sql import run_query
from dstrail.services.access import (
    AccessClaim,
    AccessRequest,
    client_source_of,
    query_operation,
    serve_access,
)
from dstrail.services.auth import CallerCredentials

logger = logging.getLogger("dstrail.flight")


class _Headers(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(self, headers: dict[str, list[str]]) -> None:
        super().__init__()
        self.headers = headers

    def first(self, name: str) -> str | None:
        values = self.headers.get(name) or []
        return str(values[0]) if values else None


class _HeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Headers:
        return _Headers(headers)


def _bearer(headers: _Headers) -> str | None:
    jwt = headers.first("x-domino-jwt")
    if jwt:
        return jwt
    scheme, _, token = (headers.first("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _flight_error(error: DstrailError) -> Exception:
    message = f"{error.error_type}: {error.message}"
    kind: type[Exception] = flight.FlightServerError
    if isinstance(error, NotAuthenticated):
        kind = flight.FlightUnauthenticatedError
    elif isinstance(error, Forbidden) and error.status_code == 403:
        kind = flight.FlightUnauthorizedError
    return kind(message)


def _ticket(raw: bytes) -> dict[str, Any]:
    try:
        ticket = orjson.loads(raw)
    except orjson.JSONDecodeError:
        ticket = None
    if isinstance(ticket, dict):
        try:
            check_text(ticket)
        except InvalidInput as error:
            raise flight.FlightServerError(f"InvalidInput: {error.message}") from None
    if not isinstance(ticket, dict) or not isinstance(ticket.get("datasourceId"), str):
        raise flight.FlightServerError(
            "InvalidInput: the ticket must be JSON {datasourceId, sqlQuery, configOverwrites, "
            "credentialOverwrites}"
        )
    return ticket


class FlightService(flight.FlightServerBase):  # type: ignore[misc]
    """Answers ``do_get`` with the result of the ticket's query, audited."""

    def __init__(self, dstrail: Dstrail, location: str) -> None:
        super().__init__(location, middleware={"headers": _HeadersFactory()})
        self._dstrail = dstrail

    def do_get(self, context: Any, ticket: Any) -> flight.RecordBatchStream:
        """Decide and record the access, then run the query outside the transaction."""
        request = _ticket(ticket.ticket)
        headers: _Headers = context.get_middleware("headers")
        dstrail = self._dstrail
        claim = AccessClaim(
            run_id=headers.first("x-domino-run-id") or None,
            client_source=client_source_of(
                headers.first("x-domino-client-source"), headers.first("user-agent")
            ),
        )

        try:
            access = AccessRequest(
                credentials=CallerCredentials(
                    api_key=headers.first("x-domino-api-key"), bearer=_bearer(headers)
                ),
                claim=claim,
                data_source_id=request["datasourceId"],
                operation=partial(query_operation, request.get("sqlQuery")),
                config_overwrites=request.get("configOverwrites"),
                credential_overwrites=request.get("credentialOverwrites"),
            )
            grant = serve_access(
                dstrail.store,
                dstrail.vault,
                access,
                signing_key=dstrail.keys.signing_key,
                clock=dstrail.clock,
                serve=lambda granted: granted,
            )
            table: pa.Table = run_query(
                grant.data_source.data_source_type,
                grant.config,
                grant.credentials or {},
                str(request["sqlQuery"]),
            )
        except DstrailError as error:
            if error.status_code >= 500:
                logger.warning("query failed: %s", error.message)
            raise _flight_error(error) from None
        return flight.RecordBatchStream(table)


def start_flight_server(dstrail: Dstrail, *, host: str, port: int) -> FlightService:
    """Listen on ``grpc://host:port`` and serve from a daemon thread; ``shutdown()`` stops it."""
    server = FlightService(dstrail, f"grpc://{host}:{port}")
    threading.Thread(target=server.serve, name="dstrail-flight", daemon=True).start()
    logger.info("Arrow Flight listening on grpc://%s:%s", host, server.port)
    return server
