"""The ASGI application: the API routers, the console, error handlers and health."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from dstrail import __version__
from dstrail.api import (
    access,
    audit,
    datasources,
    findings,
    forensics,
    integrity,
    metrics,
    platform,
    retention,
    streams,
    tlog,
)
from dstrail.api.access_log import RequestLog
from dstrail.api.deps import text_parameters
from dstrail.api.errors import PUBLIC, install_error_handlers
from dstrail.context import Dstrail
from dstrail.web import install_console, render_error


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware: the 500 it renders gets the request id too.
        return RequestLog(super().build_middleware_stack(), observe=self.state.metrics.observe)


def create_app(dstrail: Dstrail) -> FastAPI:
    """The whole HTTP surface of one dstrail; every answer carries ``X-Request-Id`` and is
    logged on ``dstrail.access`` (``api.access_log``)."""
    app = _App(
        title="dstrail",
        version=__version__,
        description="Data sources with a complete, verifiable audit trail; "
        "speaks Domino's Data Source APIs.",
        redirect_slashes=False,
        dependencies=[Depends(text_parameters)],
    )
    app.state.dstrail = dstrail
    app.state.metrics = metrics.Metrics(dstrail)
    install_error_handlers(app, html=render_error)
    install_console(app)
    for router in (
        integrity.router,
        tlog.router,
        audit.router,
        *datasources.routers,
        platform.router,
        streams.router,
        retention.router,
        forensics.router,
        findings.router,
        metrics.router,
        *access.routers,
    ):
        app.include_router(router)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Liveness: no database work",
        responses=PUBLIC.responses(400),
    )
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
