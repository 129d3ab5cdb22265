"""Console sessions: a signed cookie naming the user and the API key that signed in, and the
synchronizer CSRF token tied to it.

The cookie holds no secret a reader could reuse: the user id, the SHA-256 of the API key (so
revoking that key ends the session) and a random CSRF token, signed with the server's signing
key (itsdangerous, with an age limit).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dstrail.context import Dstrail
from dstrail.domain.users import User
from dstrail.errors import Forbidden, NotAuthenticated
from dstrail.services.users import hash_api_key, session_user

COOKIE_NAME = "dstrail_session"
MAX_AGE_SECONDS = 12 * 3600
_SALT = "dstrail.console.session"


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie carries: a CSRF token always, a signed-in user's key hash when signed in."""

    csrf_token: str
    user_id: str | None = None
    key_hash: str | None = None


def _serializer(dstrail: Dstrail) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(dstrail.keys.signing_key, salt=_SALT)


def read_session(request: Request, dstrail: Dstrail) -> Session | None:
    """The session of a valid, unexpired cookie; ``None`` otherwise."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        data = _serializer(dstrail).loads(cookie, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    user_id, key_hash = data.get("u"), data.get("k")
    if isinstance(user_id, str) and isinstance(key_hash, str):
        return Session(csrf_token=data["c"], user_id=user_id, key_hash=key_hash)
    return Session(csrf_token=data["c"])


def new_session(*, user: User | None = None, api_key: str | None = None) -> Session:
    """A fresh session (a new CSRF token), signed in when ``user`` and ``api_key`` are given."""
    token = secrets.token_urlsafe(32)
    if user is None or api_key is None:
        return Session(csrf_token=token)
    return Session(csrf_token=token, user_id=user.id, key_hash=hash_api_key(api_key))


def write_session(request: Request, response: Response, dstrail: Dstrail, session: Session) -> None:
    """Set the signed cookie: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    data: dict[str, str] = {"c": session.csrf_token}
    if session.user_id and session.key_hash:
        data.update(u=session.user_id, k=session.key_hash)
    response.set_cookie(
        COOKIE_NAME,
        _serializer(dstrail).dumps(data),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    """Remove the cookie."""
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


def signed_in_user(request: Request, dstrail: Dstrail) -> tuple[User, Session]:
    """The user of the session, while the API key that signed in is still live."""
    session = read_session(request, dstrail)
    if session is None or session.key_hash is None:
        raise NotAuthenticated("sign in with an API key to use the console")
    with dstrail.store.read() as tx:
        user = session_user(tx, session.key_hash)
    if user is None or user.id != session.user_id:
        raise NotAuthenticated("your session has ended (the API key was revoked); sign in again")
    return user, session


def check_csrf(session: Session | None, submitted: str | None) -> None:
    """``Forbidden`` unless the form carries the session's CSRF token."""
    if session is None or not submitted or not hmac.compare_digest(session.csrf_token, submitted):
        raise Forbidden(
            "the form has expired or did not come from this console; reload the page and try again"
        )
