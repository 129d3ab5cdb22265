"""Code reaching data sources: Domino's name lookup, the object-store proxy, signed files.

Every route authenticates and decides inside one write transaction that also appends the
``AccessDataSource`` event, so nothing is handed out before its event is committed.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from dstrail.api.deps import CallerDep, DstrailDep, bearer_of
from dstrail.api.errors import error_responses
from dstrail.api.schemas import DataSourceRead, data_source_read
from dstrail.context import Dstrail
from dstrail.errors import Forbidden, NotFound
from dstrail.proxy import audited, list_keys, signed_url
from dstrail.proxy.datasets import file_path, write_file
from dstrail.proxy.signing import DATASET_FILES_PATH, verify_dataset_url
from dstrail.services import access
from dstrail.services.auth import Caller, authenticate
from dstrail.services.credentials import CredentialVault
from dstrail.store import ReadAhead, Repositories

router = APIRouter(tags=["data source access"])
_PROXY_ERRORS = error_responses(400, 401, 403, 404, 502, family="proxy")


class _ProxyBody(BaseModel):
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
    page_size: int = Field(default=1000, ge=1, le=access.MAX_PAGE_SIZE, alias="page_size")


class CredentialsBody(BaseModel):
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


def _caller(tx: Repositories, request: Request, dstrail: Dstrail) -> Caller:
    return authenticate(
        tx,
        api_key=request.headers.get("x-domino-api-key"),
        bearer=bearer_of(request),
        signing_key=dstrail.keys.signing_key,
    )


def _read_ahead(
    request: Request,
    claim: access.AccessClaim,
    *,
    name: str | None = None,
    data_source_id: object = None,
) -> ReadAhead:
    """What ``_caller`` and the access decision will read."""
    return access.read_ahead(
        api_key=request.headers.get("x-domino-api-key"),
        claim=claim,
        name=name,
        data_source_id=data_source_id,
    )


def _claim(request: Request, run_id: str | None = None) -> access.AccessClaim:
    return access.AccessClaim(
        run_id=run_id or request.headers.get("x-domino-run-id") or None,
        client_source=access.client_source_of(
            request.headers.get("x-domino-client-source"), request.headers.get("user-agent")
        ),
    )


def _vault(dstrail: Dstrail) -> CredentialVault:
    return CredentialVault(dstrail.keys.encryption_key)


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get(
    "/v4/datasource/name/{name}",
    responses={200: {"model": DataSourceRead}, **error_responses(401, 403, 404, family="v4")},
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
    claim = _claim(request, runId)

    def decide(tx: Repositories) -> dict[str, Any]:
        caller = _caller(tx, request, dstrail)
        ds, users = access.look_up(
            tx, caller=caller, name=name, claim=claim, now_ms=dstrail.clock()
        )
        return data_source_read(ds, users)

    return _json(audited(dstrail, decide, read_ahead=_read_ahead(request, claim, name=name)))


@router.post("/objectstore/key", responses={200: {"model": str}, **_PROXY_ERRORS})
def get_key_url(body: KeyRequestBody, request: Request, dstrail: DstrailDep) -> Response:
    """A short-lived signed URL for one object (PUT when ``isReadWrite``), as a JSON string."""
    claim = _claim(request)
    now = dstrail.clock()

    def decide(tx: Repositories) -> str:
        grant = access.grant_object_key(
            tx,
            _vault(dstrail),
            caller=_caller(tx, request, dstrail),
            data_source_id=body.datasourceId,
            object_key=body.objectKey,
            is_read_write=body.isReadWrite,
            claim=claim,
            config_overwrites=body.configOverwrites,
            credential_overwrites=body.credentialOverwrites,
            now_ms=now,
        )
        return signed_url(
            grant,
            key=body.objectKey,
            write=body.isReadWrite,
            base_url=dstrail.settings.public_url or str(request.base_url),
            signing_key=dstrail.keys.signing_key,
            now_ms=now,
            ttl_s=dstrail.settings.signed_url_ttl_seconds,
        )

    ahead = _read_ahead(request, claim, data_source_id=body.datasourceId)
    return _json(audited(dstrail, decide, read_ahead=ahead))


@router.post("/objectstore/list", responses={200: {"model": list[str]}, **_PROXY_ERRORS})
def list_objects(body: ListRequestBody, request: Request, dstrail: DstrailDep) -> Response:
    """Keys under ``prefix`` as a JSON array; the event commits before the listing runs."""
    claim = _claim(request)
    grant = audited(
        dstrail,
        lambda tx: access.grant_listing(
            tx,
            _vault(dstrail),
            caller=_caller(tx, request, dstrail),
            data_source_id=body.datasourceId,
            prefix=body.prefix,
            claim=claim,
            config_overwrites=body.configOverwrites,
            credential_overwrites=body.credentialOverwrites,
            now_ms=dstrail.clock(),
        ),
        read_ahead=_read_ahead(request, claim, data_source_id=body.datasourceId),
    )
    keys = list_keys(
        grant, prefix=body.prefix, page_size=body.page_size, data_dir=dstrail.settings.data_dir
    )
    return _json(keys)


@router.head("/objectstore/metric", responses=error_responses(401, family="proxy"))
def log_metric(
    caller: CallerDep,
    t: Annotated[str, Query(description="data source type")] = "",
    b: Annotated[int, Query(ge=0, description="bytes transferred")] = 0,
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


@router.get(DATASET_FILES_PATH + "/{data_source_id}/{key:path}", responses=_PROXY_ERRORS)
def read_dataset_file(
    data_source_id: str,
    key: str,
    dstrail: DstrailDep,
    method: str = "",
    expires: int = 0,
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


@router.put(DATASET_FILES_PATH + "/{data_source_id}/{key:path}", responses=_PROXY_ERRORS)
async def write_dataset_file(
    data_source_id: str,
    key: str,
    request: Request,
    method: str = "",
    expires: int = 0,
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


@router.put(
    "/api/datasource/v1/datasources/{data_source_id}/credentials",
    response_model=CredentialsStored,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404),
)
def put_credentials(
    data_source_id: str, body: CredentialsBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, object]:
    """Store credentials: your own (``Individual``) or the shared account (owner, SysAdmin).

    Values are encrypted at rest and never returned; records ``DataSourceCredentialsUpdated``.
    """
    with dstrail.store.write() as tx:
        return access.set_credentials(
            tx,
            _vault(dstrail),
            data_source_id=data_source_id,
            actor=caller.user,
            holder_id=body.userId,
            credentials=body.credentials,
            now_ms=dstrail.clock(),
            via="api",
        )
