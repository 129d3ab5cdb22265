"""Code reaching data sources: Domino's name lookup, the object-store proxy, signed files.

Every route authenticates and decides inside one write transaction that also appends the
``AccessDataSource`` event, so nothing is handed out before its event is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from dstrail.api.deps import CallerDep, DstrailDep, credentials_of
from dstrail.api.errors import PROXY, PUBLIC, SIGNED_FILES, V4
from dstrail.api.schemas import (
    LookupDocument,
    TextBody,
    credentials_stored,
    lookup_document,
)
from dstrail.context import Dstrail
from dstrail.domain.trail import MAX_SEQ
from dstrail.errors import Forbidden, NotFound
from dstrail.proxy import list_keys, signed_url
from dstrail.proxy.datasets import file_path, write_file
from dstrail.proxy.signing import DATASET_FILES_PATH, verify_dataset_url
from dstrail.services import access
from dstrail.services.credentials import set_credentials
from dstrail.services.lookup import look_up_by_name

T = TypeVar("T")
Expires = Annotated[int, Query(ge=0, le=MAX_SEQ, description="epoch seconds, as signed")]

_TAGS: list[str | Enum] = ["data source access"]
lookup_router = APIRouter(tags=_TAGS, responses=V4.responses(400, 403, 404))
proxy_router = APIRouter(tags=_TAGS, responses=PROXY.responses(400, 401, 500))
files_router = APIRouter(tags=_TAGS, responses=SIGNED_FILES.responses(400, 403, 404, 500))
credentials_router = APIRouter(tags=_TAGS, responses=PUBLIC.responses(400, 401, 403, 404))
routers = (lookup_router, proxy_router, files_router, credentials_router)


class _ProxyBody(TextBody):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    datasourceId: str  # noqa: N815 - the client's field names
    configOverwrites: dict[str, Any] | None = None  # noqa: N815
    credentialOverwrites: dict[str, Any] | None = Field(  # noqa: N815
        default=None, description="the caller's own credentials; used, never stored or logged"
    )


class KeyRequestBody(_ProxyBody):
    """``POST /objectstore/key``."""

    objectKey: str  # noqa: N815
    isReadWrite: bool = False  # noqa: N815


class ListRequestBody(_ProxyBody):
    """``POST /objectstore/list``."""

    prefix: str = ""
    page_size: int = Field(
        default=1000,
        ge=1,
        le=access.MAX_PAGE_SIZE,
        validation_alias=AliasChoices("page_size", "pageSize"),
        description="also read as `pageSize`, as earlier clients sent it",
    )


class CredentialsBody(TextBody):
    """``PUT /api/datasource/v1/datasources/{id}/credentials``."""

    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, str] = Field(description="encrypted at rest, never returned")
    userId: str | None = Field(  # noqa: N815
        default=None, description="Individual only, SysAdmins only: whose credentials these are"
    )


class CredentialsStored(BaseModel):
    """What was stored: field names only, never values."""

    dataSourceId: str  # noqa: N815
    credentialType: str  # noqa: N815
    fields: list[str]
    userId: str | None = None  # noqa: N815


def _claim(request: Request, run_id: str | None = None) -> access.AccessClaim:
    return access.AccessClaim(
        run_id=run_id or request.headers.get("x-domino-run-id") or None,
        client_source=access.client_source_of(
            request.headers.get("x-domino-client-source"), request.headers.get("user-agent")
        ),
    )


def _access(
    request: Request, body: _ProxyBody, operation: Callable[[], access.AccessOperation]
) -> access.AccessRequest:
    return access.AccessRequest(
        credentials=credentials_of(request),
        claim=_claim(request),
        data_source_id=body.datasourceId,
        operation=operation,
        config_overwrites=body.configOverwrites,
        credential_overwrites=body.credentialOverwrites,
    )


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@lookup_router.get(
    "/v4/datasource/name/{name}",
    responses={200: {"model": LookupDocument}},
)
def get_data_source_by_name(
    name: str,
    request: Request,
    dstrail: DstrailDep,
    runId: Annotated[str | None, Query(description="the run the code runs in")] = None,  # noqa: N803
) -> Response:
    """The data source for code that will use it; records ``AccessDataSource`` (getDataSource).

    ``runId`` is accepted only from the user who started the run (or with the run's token) and
    only while it runs; otherwise 403 and an ``AccessDataSourceRefused`` event.
    """
    found = look_up_by_name(
        dstrail.store,
        credentials=credentials_of(request),
        name=name,
        claim=_claim(request, runId),
        signing_key=dstrail.keys.signing_key,
        clock=dstrail.clock,
    )
    return Response(
        orjson.dumps(lookup_document(found)),
        media_type="application/json",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate, max-age=0"},
    )


@proxy_router.post("/objectstore/key", responses={200: {"model": str}})
def get_key_url(body: KeyRequestBody, request: Request, dstrail: DstrailDep) -> Response:
    """A short-lived signed URL for one object (PUT when ``isReadWrite``), as a JSON string."""
    operation = partial(access.object_key_operation, body.objectKey, is_read_write=body.isReadWrite)
    base_url = dstrail.settings.public_url or str(request.base_url)

    def sign(grant: access.Grant) -> str:
        return signed_url(
            grant,
            key=body.objectKey,
            write=body.isReadWrite,
            base_url=base_url,
            signing_key=dstrail.keys.signing_key,
            now_ms=dstrail.clock(),
            ttl_s=dstrail.settings.signed_url_ttl_seconds,
            data_dir=dstrail.settings.data_dir,
        )

    return _json(_serve(dstrail, _access(request, body, operation), sign))


@proxy_router.post("/objectstore/list", responses={200: {"model": list[str]}})
def list_objects(body: ListRequestBody, request: Request, dstrail: DstrailDep) -> Response:
    """Keys under ``prefix`` as a JSON array; the event commits before the listing runs."""
    operation = partial(access.listing_operation, body.prefix)
    grant = _serve(dstrail, _access(request, body, operation), lambda granted: granted)
    keys = list_keys(
        grant, prefix=body.prefix, page_size=body.page_size, data_dir=dstrail.settings.data_dir
    )
    return _json(keys)


def _serve(
    dstrail: Dstrail, request: access.AccessRequest, serve: Callable[[access.Grant], T]
) -> T:
    return access.serve_access(
        dstrail.store,
        dstrail.vault,
        request,
        signing_key=dstrail.keys.signing_key,
        clock=dstrail.clock,
        serve=serve,
    )


@proxy_router.head(
    "/objectstore/metric",
    response_class=Response,
    responses={200: {"description": "acknowledged (no body)", "content": {}}},
)
def log_metric(
    caller: CallerDep,
    t: Annotated[str, Query(description="data source type")] = "",
    b: Annotated[int, Query(ge=0, le=MAX_SEQ, description="bytes transferred")] = 0,
    m: Annotated[str, Query(pattern="^(read|write)$")] = "read",
) -> Response:
    """Byte counters the client reports after a transfer; acknowledged, not audited."""
    return Response(status_code=200)


def _verified_path(
    dstrail: Dstrail,
    *,
    method: str,
    data_source_id: str,
    key: str,
    signed_method: str,
    expires: int,
    signature: str,
) -> Any:
    problem = verify_dataset_url(
        signing_key=dstrail.keys.signing_key,
        method=method,
        data_source_id=data_source_id,
        key=key,
        signed_method=signed_method,
        expires=expires,
        signature=signature,
        now_s=dstrail.clock() // 1000,
    )
    if problem is not None:
        raise Forbidden(f"signed URL refused: {problem}")
    return file_path(dstrail.settings.data_dir, data_source_id, key)


@files_router.get(DATASET_FILES_PATH + "/{data_source_id}/{key:path}")
def read_dataset_file(
    data_source_id: str,
    key: str,
    dstrail: DstrailDep,
    method: str = "",
    expires: Expires = 0,
    signature: str = "",
) -> FileResponse:
    """A ``DatasetConfig`` file through a signed GET URL (ranges supported)."""
    path = _verified_path(
        dstrail, method="GET", data_source_id=data_source_id, key=key, signed_method=method,
        expires=expires, signature=signature,
    )  # fmt: skip
    if not path.is_file():
        raise NotFound(f"no object {key!r} in this data source")
    return FileResponse(path, media_type="application/octet-stream")


@files_router.put(DATASET_FILES_PATH + "/{data_source_id}/{key:path}")
async def write_dataset_file(
    data_source_id: str,
    key: str,
    request: Request,
    method: str = "",
    expires: Expires = 0,
    signature: str = "",
) -> Response:
    """Store a ``DatasetConfig`` file through a signed PUT URL."""
    dstrail: Dstrail = request.app.state.dstrail
    path = _verified_path(
        dstrail, method="PUT", data_source_id=data_source_id, key=key, signed_method=method,
        expires=expires, signature=signature,
    )  # fmt: skip
    await write_file(path, request.stream())
    return Response(status_code=200)


@credentials_router.put(
    "/api/datasource/v1/datasources/{data_source_id}/credentials",
    response_model=CredentialsStored,
    response_model_exclude_none=True,
)
def put_credentials(
    data_source_id: str, body: CredentialsBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, object]:
    """Store credentials: your own (``Individual``) or the shared account (owner, SysAdmin).

    Values are encrypted at rest and never returned; records ``DataSourceCredentialsUpdated``.
    """
    with dstrail.change() as tx:
        stored = set_credentials(
            tx,
            dstrail.vault,
            data_source_id=data_source_id,
            actor=caller.user,
            holder_id=body.userId,
            credentials=body.credentials,
            now_ms=dstrail.clock(),
            via="api",
        )
    return credentials_stored(stored)
