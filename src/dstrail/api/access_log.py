"""Request ids and the access log: one pure-ASGI middleware around the whole app.

Every HTTP answer carries ``X-Request-Id``: a new UUID4 per request (one a client sends is
ignored: an id in the log is always the server's own). The id is in ``request.state``
(``request_id_of``), so the error bodies that carry a ``requestId`` carry the same one.

Then one line per request on the ``dstrail.access`` logger (INFO): method, path as sent
(percent-encoded, without the query string, which can hold tokens or signatures), status,
duration in ms, the authenticated user's id when a route authenticated the caller
(``request.state.user_id``, set by ``api.deps.get_caller``) and the request id. Never a header,
a credential or a cookie. ``cli.serve`` chooses the format (``LOG_FORMATS``).

Pure ASGI rather than ``BaseHTTPMiddleware``: no task per request, streaming untouched; it
wraps Starlette's error middleware (``app.create_app``), so a 500 carries the header too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dstrail.audit.serialize import escape_text

ACCESS_LOGGER = logging.getLogger("dstrail.access")
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = "request_id"
"""The key of the request id in ``scope["state"]`` (``request.state.request_id``)."""
USER_ID = "user_id"
"""The key of the authenticated user's id in ``scope["state"]``, set by the auth dependency."""
ACCESS = "access"
"""The attribute of an access log record holding its fields (what the JSON format writes)."""

_HEADER_NAME = REQUEST_ID_HEADER.lower().encode()
_INFO = logging.INFO
_TEXT = "%s %s %d %.2fms user=%s request=%s"


def new_request_id() -> str:
    """A random UUID4 in its canonical form (``str(uuid.uuid4())``, in a third of the time:
    the access benchmark counts microseconds)."""
    random = bytearray(os.urandom(16))
    random[6] = (random[6] & 0x0F) | 0x40  # version 4
    random[8] = (random[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = random.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def request_id_of(request: Request) -> str:
    """The id of ``request`` (the one its ``X-Request-Id`` header carries); a fresh one for an
    app without ``RequestLog`` around it."""
    state = request.scope.get("state")
    found = state.get(REQUEST_ID) if state is not None else None
    return found if isinstance(found, str) else new_request_id()


def _path_of(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    path = raw.decode("ascii", "backslashreplace") if raw else str(scope.get("path", ""))
    # The server hands raw paths as ASCII; anything else (and a space) is made visible, so a
    # path cannot break a line or a field of the text format.
    if path.isascii() and path.isprintable() and " " not in path:
        return path
    return escape_text(path).replace(" ", "%20")


class RequestLog:
    """Gives each HTTP request an id (state and response header) and logs it when done."""

    __slots__ = ("app", "observe")

    def __init__(
        self, app: ASGIApp, *, observe: Callable[[str, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.observe = observe
        """Given each request's method, status and seconds (the metrics' latency histogram)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = new_request_id()
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[REQUEST_ID] = request_id
        header = (_HEADER_NAME, request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.observe is not None:
                self.observe(
                    str(scope.get("method", "")), status or 500, time.perf_counter() - began
                )
            if ACCESS_LOGGER.isEnabledFor(_INFO):
                _log(scope, state, status or 500, began, request_id)


def _log(scope: Scope, state: dict[str, Any], status: int, began: float, request_id: str) -> None:
    ms = (time.perf_counter() - began) * 1000
    method = str(scope.get("method", ""))
    path = _path_of(scope)
    user_id = state.get(USER_ID)
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "durationMs": round(ms, 3),
        "userId": user_id,
        "requestId": request_id,
    }
    # As ``ACCESS_LOGGER.info`` does, without looking up the caller's file and line in the
    # stack (a third of its cost; an access line has no use for them).
    args = (method, path, status, ms, user_id or "-", request_id)
    record = ACCESS_LOGGER.makeRecord(
        ACCESS_LOGGER.name, _INFO, "", 0, _TEXT, args, None, extra={ACCESS: fields}
    )
    ACCESS_LOGGER.handle(record)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonLines(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``logger``, then an access record's
    fields, or any other record's ``message`` (and ``exception``, its traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, ACCESS, None)
        if isinstance(fields, dict):
            document.update(fields)
        else:
            document["message"] = record.getMessage()
            if record.exc_info:
                document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document).decode()


def text_formatter() -> logging.Formatter:
    """The text format: time, level, logger, message (an access line's fields, in order)."""
    return logging.Formatter(TEXT_FORMAT)


LOG_FORMATS = {"text": text_formatter, "json": JsonLines}
"""``dstrail serve --log-format``: the formatter of each accepted name."""
