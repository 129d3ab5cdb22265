"""Managing data sources: Domino's public v1 paths and its v4 permission/owner/project paths."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, status

from dstrail.api.deps import CallerDep, DstrailDep
from dstrail.api.errors import PUBLIC, V4
from dstrail.api.schemas import (
    DataSourceCreateBody,
    DataSourceRead,
    DataSourceUpdateBody,
    PermissionsBody,
    data_source_read,
)
from dstrail.domain.datasources import DataSource
from dstrail.services import datasources as service
from dstrail.store import Repositories

V1 = "/api/datasource/v1/datasources"
_TAGS: list[str | Enum] = ["data sources"]
v1_router = APIRouter(tags=_TAGS, responses=PUBLIC.responses(400, 401, 403, 404, 409))
v4_router = APIRouter(tags=_TAGS, responses=V4.responses(400, 403, 404, 409))
routers = (v1_router, v4_router)


def _read(tx: Repositories, data_sources: list[DataSource]) -> list[dict[str, Any]]:
    people = service.people_of(tx, data_sources)
    return [data_source_read(ds, people) for ds in data_sources]


@v1_router.post(V1, status_code=status.HTTP_201_CREATED, response_model=DataSourceRead)
def create_data_source(
    body: DataSourceCreateBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Create a data source owned by the caller; records ``CreateDataSource``."""
    spec = service.DataSourceCreate(
        name=body.name,
        display_name=body.displayName,
        description=body.description,
        data_source_type=body.dataSourceType,
        auth_type=body.authType,
        credential_type=service.parse_credential_type(body.credentialType),
        config=body.config,
        credentials=body.credentials,
        permissions=body.permissions.to_domain(),
        config_overwrites_allowed=body.configOverwritesAllowed,
    )
    with dstrail.change() as tx:
        ds = service.create_data_source(
            tx, dstrail.vault, spec=spec, actor=caller.user, now_ms=dstrail.clock()
        )
        return _read(tx, [ds])[0]


@v1_router.get(V1, response_model=list[DataSourceRead])
def list_data_sources(dstrail: DstrailDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The active data sources the caller may see."""
    with dstrail.store.read() as tx:
        return _read(tx, service.list_visible(tx, actor=caller.user))


@v1_router.get(V1 + "/{data_source_id}", response_model=DataSourceRead)
def read_data_source(data_source_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """One data source (deleted ones too, with ``status: Deleted``)."""
    with dstrail.store.read() as tx:
        ds = service.get_visible(tx, data_source_id=data_source_id, actor=caller.user)
        return _read(tx, [ds])[0]


@v1_router.patch(V1 + "/{data_source_id}", response_model=DataSourceRead)
def update_data_source(
    data_source_id: str, body: DataSourceUpdateBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Change display name, description, config, credentials or permissions."""
    change = service.DataSourceUpdate(
        display_name=body.displayName,
        description=body.description,
        config=body.config,
        credentials=body.credentials,
        permissions=body.permissions.to_domain() if body.permissions else None,
        config_overwrites_allowed=body.configOverwritesAllowed,
    )
    with dstrail.change() as tx:
        ds = service.update_data_source(
            tx,
            dstrail.vault,
            data_source_id=data_source_id,
            change=change,
            actor=caller.user,
            now_ms=dstrail.clock(),
        )
        return _read(tx, [ds])[0]


@v1_router.delete(V1 + "/{data_source_id}", response_model=DataSourceRead)
def delete_data_source(
    data_source_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Soft-delete; the name becomes free and the history stays."""
    with dstrail.change() as tx:
        ds = service.delete_data_source(
            tx, data_source_id=data_source_id, actor=caller.user, now_ms=dstrail.clock()
        )
        return _read(tx, [ds])[0]


@v4_router.put("/v4/datasource/{data_source_id}/users", response_model=DataSourceRead)
def set_permissions(
    data_source_id: str, body: PermissionsBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Replace who may use the data source; records ``DataSourceChangeOfPermissions``."""
    with dstrail.change() as tx:
        ds = service.set_permissions(
            tx,
            data_source_id=data_source_id,
            permissions=body.to_domain(),
            actor=caller.user,
            now_ms=dstrail.clock(),
        ).data_source
        return _read(tx, [ds])[0]


@v4_router.post(
    "/v4/datasource/{data_source_id}/transfer/{new_owner_id}",
    response_model=DataSourceRead,
)
def transfer_ownership(
    data_source_id: str, new_owner_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Give the data source to another user; records ``DataSourceChangeOfOwnership``."""
    with dstrail.change() as tx:
        ds = service.transfer_ownership(
            tx,
            data_source_id=data_source_id,
            new_owner_id=new_owner_id,
            actor=caller.user,
            now_ms=dstrail.clock(),
        )
        return _read(tx, [ds])[0]


@v4_router.post(
    "/v4/datasource/{data_source_id}/projects/{project_id}",
    response_model=DataSourceRead,
)
def attach_to_project(
    data_source_id: str, project_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Add the data source to a project; records ``DataSourceAssociatedToProject``."""
    with dstrail.change() as tx:
        ds = service.attach_to_project(
            tx,
            data_source_id=data_source_id,
            project_id=project_id,
            actor=caller.user,
            now_ms=dstrail.clock(),
        )
        return _read(tx, [ds])[0]


@v4_router.delete(
    "/v4/datasource/{data_source_id}/projects/{project_id}",
    response_model=DataSourceRead,
)
def detach_from_project(
    data_source_id: str, project_id: str, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """Remove the data source from a project; records ``DataSourceDissociatedFromProject``."""
    with dstrail.change() as tx:
        ds = service.detach_from_project(
            tx,
            data_source_id=data_source_id,
            project_id=project_id,
            actor=caller.user,
            now_ms=dstrail.clock(),
        )
        return _read(tx, [ds])[0]
