"""The server-rendered console: sign-in, the audit trail, downloads, data source pages and
forensics."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from dstrail.web import (
    audit_views,
    auth_views,
    datasource_views,
    entitlement_views,
    finding_views,
    stream_views,
    timeline_views,
    trail_views,
)
from dstrail.web.pages import STATIC_DIR, render_error

router = APIRouter(include_in_schema=False)
router.include_router(auth_views.router)
router.include_router(trail_views.router)
router.include_router(audit_views.router)
router.include_router(datasource_views.router)
router.include_router(stream_views.router)
router.include_router(entitlement_views.router)
router.include_router(timeline_views.router)
router.include_router(finding_views.router)


def install_console(app: FastAPI) -> None:
    """Mount the console at ``/`` with its static files (errors: ``render_error``)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


__all__ = ["install_console", "render_error", "router"]
