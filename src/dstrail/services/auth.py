"""Who is calling: API keys and run tokens, resolved to a user (and a run, for tokens)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dstrail.domain.projects import Run
from dstrail.domain.users import User
from dstrail.errors import Forbidden, NotAuthenticated
from dstrail.services.runs import decode_run_token
from dstrail.services.users import user_by_api_key
from dstrail.store import Repositories


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user; ``token_run`` is set when they came with a run's own token."""

    user: User
    token_run: Run | None = None


@dataclass(frozen=True, slots=True)
class CallerCredentials:
    """What a request authenticates with: an API key, or a bearer token (a run's token or an
    API key). Never logged, never recorded."""

    api_key: str | None = field(default=None, repr=False)
    bearer: str | None = field(default=None, repr=False)


def authenticate(tx: Repositories, credentials: CallerCredentials, *, signing_key: str) -> Caller:
    """The caller of an API key, or of a bearer token (a run token or an API key)."""
    api_key, bearer = credentials.api_key, credentials.bearer
    if api_key:
        user = user_by_api_key(tx, api_key)
        if user is not None:
            return Caller(user=user)
        raise NotAuthenticated("the API key is not valid")
    if bearer:
        claims = decode_run_token(bearer, signing_key=signing_key)
        if claims is not None:
            user_id, run_id = claims
            user = tx.users.by_id(user_id)
            run = tx.runs.by_id(run_id)
            if user is None or run is None or run.user_id != user.id:
                raise NotAuthenticated("the token is not valid")
            return Caller(user=user, token_run=run)
        user = user_by_api_key(tx, bearer)
        if user is not None:
            return Caller(user=user)
        raise NotAuthenticated("the bearer token is not valid")
    raise NotAuthenticated(
        "authentication required: send X-Domino-Api-Key or Authorization: Bearer <token>"
    )


def require_live_token(caller: Caller) -> Caller:
    """Outside the data path (which refuses and records it), the token of an ended run is no
    longer a credential: ``NotAuthenticated``."""
    if caller.token_run is not None and not caller.token_run.is_running:
        raise NotAuthenticated("the token is not valid: its run has ended")
    return caller


def require_audit_reader(caller: Caller) -> None:
    """SysAdmins (and Auditors) read the trail; ``Forbidden`` for anyone else."""
    if not caller.user.can_read_audit:
        raise Forbidden("reading the audit trail requires the SysAdmin or the Auditor role")


def sign_in(tx: Repositories, api_key: str) -> User | None:
    """The user a console sign-in key belongs to (None: not a live key)."""
    return user_by_api_key(tx, api_key) if api_key else None
