"""Signing in with an API key, signing out, and the home page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.services.auth import sign_in
from dstrail.web.deps import CheckedFormDep, field
from dstrail.web.pages import page
from dstrail.web.sessions import (
    clear_session,
    new_session,
    read_session,
    signed_in_user,
    write_session,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only same-site paths: never an open redirect."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/")
def home(request: Request, dstrail: DstrailDep) -> Response:
    """The trail for those who read it, the data sources for everyone else."""
    user, _ = signed_in_user(request, dstrail)
    return RedirectResponse("/audit" if user.can_read_audit else "/datasources", status_code=303)


@router.get("/signin")
def signin_form(request: Request, dstrail: DstrailDep, next: str = "/") -> Response:
    """The sign-in page."""
    return page(
        request, dstrail, "signin.html", {"next": _safe_next(next), "error": None}, user=None
    )


@router.post("/signin")
def signin(request: Request, dstrail: DstrailDep, form: CheckedFormDep) -> Response:
    """Check the API key, then start a signed-in session (a new CSRF token with it)."""
    api_key = field(form, "api_key")
    target = _safe_next(field(form, "next") or "/")
    with dstrail.store.read() as tx:
        user = sign_in(tx, api_key)
    if user is None:
        return page(
            request,
            dstrail,
            "signin.html",
            {"next": target, "error": "That API key is not valid. Check it and try again."},
            user=None,
            session=read_session(request, dstrail),
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    write_session(request, response, dstrail, new_session(user=user, api_key=api_key))
    return response


@router.post("/signout")
def signout(form: CheckedFormDep) -> Response:
    """End the session."""
    del form
    response = RedirectResponse("/signin", status_code=303)
    clear_session(response)
    return response
