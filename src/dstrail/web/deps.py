"""Console dependencies: the signed-in user, and forms checked against the session's CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from dstrail.api.deps import DstrailDep
from dstrail.domain.text import check_text
from dstrail.domain.users import User
from dstrail.errors import InvalidInput
from dstrail.web.sessions import Session, check_csrf, read_session, signed_in_user

MAX_FIELD = 20_000


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The console's caller."""

    user: User
    session: Session


def get_signed_in(request: Request, dstrail: DstrailDep) -> SignedIn:
    """The signed-in user; a redirect to the sign-in page otherwise (see ``render_error``)."""
    user, session = signed_in_user(request, dstrail)
    return SignedIn(user=user, session=session)


async def get_checked_form(request: Request, dstrail: DstrailDep) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form(max_files=0, max_fields=200)
    token = form.get("csrf_token")
    check_csrf(read_session(request, dstrail), token if isinstance(token, str) else None)
    for name, value in form.multi_items():
        if isinstance(value, str):
            check_text(value, field=name)
    return form


def field(form: FormData, name: str, *, label: str | None = None, required: bool = False) -> str:
    """One text field of a form, stripped; ``InvalidInput`` when required and empty."""
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_FIELD:
        raise InvalidInput(f"{label or name}: at most {MAX_FIELD} characters are accepted")
    if required and not text:
        raise InvalidInput(f"{label or name}: this field is required")
    return text


def fields(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (a multiple select or checkboxes)."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


SignedInDep = Annotated[SignedIn, Depends(get_signed_in)]
CheckedFormDep = Annotated[FormData, Depends(get_checked_form)]
