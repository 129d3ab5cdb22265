"""Rendering: the Jinja2 environment, page responses, and errors as readable pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dstrail import __version__
from dstrail.context import Dstrail
from dstrail.domain.timestamps import format_ms
from dstrail.domain.users import User
from dstrail.errors import DstrailError, NotAuthenticated
from dstrail.web.chart import KIND_COLOURS
from dstrail.web.filters import COLUMNS
from dstrail.web.sessions import (
    Session,
    new_session,
    read_session,
    signed_in_user,
    write_session,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals.update(version=__version__, kind_colours=KIND_COLOURS, column_labels=COLUMNS)


def _utc(ms: int) -> str:
    text = format_ms(ms)
    return f"{text[:10]} {text[11:23]} UTC"


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """A URL query string as (name, value) pairs, for a form's hidden fields."""
    return parse_qsl(query, keep_blank_values=True)


def _count(value: int) -> str:
    """A count with thousands separated (``200,062``)."""
    return f"{value:,}"


templates.env.filters.update(iso=format_ms, utc=_utc, query_pairs=_query_pairs, count=_count)

_TITLES = {
    400: "That request cannot be answered",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That collides with the current state",
    502: "A data source failed",
}


def page(
    request: Request,
    dstrail: Dstrail,
    template: str,
    context: dict[str, Any],
    *,
    user: User | None,
    session: Session | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A full page; a session cookie (and CSRF token) is created when there is none yet."""
    session = session or read_session(request, dstrail)
    fresh = session is None
    if session is None:
        session = new_session()
    response = templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf_token": session.csrf_token, **context},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if fresh:
        write_session(request, response, dstrail, session)
    return response


def _signed_in_or_none(request: Request, dstrail: Dstrail) -> User | None:
    """The signed-in user, for an error page's header; None when there is none (or it cannot
    be told: an error page never fails in turn)."""
    try:
        user, _ = signed_in_user(request, dstrail)
    except Exception:  # whatever failed, the page shows without the user
        return None
    return user


def error_page(request: Request, status_code: int, message: str) -> Response:
    """A readable error page, never a stack trace; a signed-in user keeps the navigation, their
    name and Sign out."""
    dstrail: Dstrail = request.app.state.dstrail
    session = read_session(request, dstrail)
    user = _signed_in_or_none(request, dstrail) if session and session.user_id else None
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": user,
            "signed_in": bool(session and session.user_id),
            "csrf_token": session.csrf_token if session else "",
            "status_code": status_code,
            "title": _TITLES.get(status_code, "Something went wrong"),
            "message": message,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def render_error(request: Request, error: DstrailError) -> Response:
    """The HTML renderer of ``install_error_handlers``: sign-in redirect for 401, else a page."""
    if isinstance(error, NotAuthenticated) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
    return error_page(request, error.status_code, error.message)
