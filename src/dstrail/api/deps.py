"""Request dependencies: the service parts and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from dstrail.context import Dstrail
from dstrail.domain.text import check_text
from dstrail.errors import Forbidden
from dstrail.services.auth import (
    Caller,
    CallerCredentials,
    authenticate,
    require_audit_reader,
    require_live_token,
)
from dstrail.services.trail_reads import TrailReader
from dstrail.services.users import require_admin


async def text_parameters(request: Request) -> None:
    """Every query and path value is text (``check_text``): refused with 400 naming the
    parameter before any route reads it (``async``: no I/O)."""
    for name, value in request.query_params.multi_items():
        check_text(name, field="a parameter name")
        check_text(value, field=name)
    for name, value in request.path_params.items():
        check_text(value, field=name)


async def get_dstrail(request: Request) -> Dstrail:
    """The running service (``async``: no I/O, so FastAPI need not hop to a thread)."""
    dstrail: Dstrail = request.app.state.dstrail
    return dstrail


def bearer_of(request: Request) -> str | None:
    """The token of ``Authorization: Bearer`` or of ``X-Domino-Jwt``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-domino-jwt") or None


def credentials_of(request: Request) -> CallerCredentials:
    """What the request authenticates with (``X-Domino-Api-Key``, or a bearer token)."""
    return CallerCredentials(
        api_key=request.headers.get("x-domino-api-key"), bearer=bearer_of(request)
    )


def get_caller(request: Request, dstrail: Annotated[Dstrail, Depends(get_dstrail)]) -> Caller:
    """The authenticated caller; 401 without a valid credential."""
    with dstrail.store.read() as tx:
        caller = authenticate(tx, credentials_of(request), signing_key=dstrail.keys.signing_key)
    request.state.user_id = caller.user.id  # the access log's user (api.access_log)
    return require_live_token(caller)


async def get_audit_reader(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """A caller allowed to read the trail; 403 for others (``async``: no I/O)."""
    require_audit_reader(caller)
    return caller


def admin_with_api_key(caller: Caller, *, managing: str) -> Caller:
    """``caller`` when a SysAdmin with an API key: code inside a run, holding the run's token,
    may not change what is recorded or where it goes. 403 for anyone else."""
    if caller.token_run is not None:
        raise Forbidden(f"{managing} are managed with an API key, not with a run's token")
    require_admin(caller.user, f"managing {managing}")
    return caller


DstrailDep = Annotated[Dstrail, Depends(get_dstrail)]
CallerDep = Annotated[Caller, Depends(get_caller)]
AuditReaderDep = Annotated[Caller, Depends(get_audit_reader)]


def trail_reader(surface: str) -> Callable[..., Awaitable[TrailReader]]:
    """The dependency of a route that hands out events of the trail through ``surface``: the
    caller, as the ``TrailReader`` that records their reads; 403 for others, itself recorded
    (``AuditTrailRead`` refused, with the query as given)."""

    async def get_trail_reader(
        request: Request, dstrail: DstrailDep, caller: CallerDep
    ) -> TrailReader:
        reader = TrailReader(
            store=dstrail.store, clock=dstrail.clock, actor=caller.user, surface=surface,
            origin={"path": request.url.path},
        )  # fmt: skip
        try:
            require_audit_reader(caller)
        except Forbidden:
            query = request.query_params
            await run_in_threadpool(reader.refused, {key: query.getlist(key) for key in query})
            raise
        return reader

    return get_trail_reader
