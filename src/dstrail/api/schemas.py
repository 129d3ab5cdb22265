"""Request bodies and response shapes of the JSON APIs (``XCreate`` / ``XRead`` names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dstrail.domain.datasources import DataSource, Permissions
from dstrail.domain.text import check_text
from dstrail.domain.timestamps import format_ms
from dstrail.domain.users import User
from dstrail.services.credentials import StoredCredentials
from dstrail.services.lookup import LookedUp


class TextBody(BaseModel):
    """A request body whose every string is text (``check_text``), refused as a whole (400
    naming the field) before any field is read."""

    @model_validator(mode="before")
    @classmethod
    def _only_text(cls, data: Any) -> Any:
        check_text(data)
        return data


class _Body(TextBody):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PermissionsBody(_Body):
    """Who may use a data source besides its owner."""

    isEveryone: bool = False  # noqa: N815 - Domino's field names
    userIds: list[str] = Field(default_factory=list)  # noqa: N815

    def to_domain(self) -> Permissions:
        """As the domain value."""
        return Permissions(is_everyone=self.isEveryone, user_ids=tuple(self.userIds))


_OVERWRITES_ALLOWED = (
    "whether calls may send configOverwrites (the keys Domino accepts for the type); "
    "each overwrite is recorded in its access event"
)


class DataSourceCreateBody(_Body):
    """``POST /api/datasource/v1/datasources``."""

    name: str
    displayName: str | None = None  # noqa: N815
    description: str = ""
    dataSourceType: str  # noqa: N815
    authType: str = "Basic"  # noqa: N815
    credentialType: str = "Shared"  # noqa: N815
    config: dict[str, str] = Field(default_factory=dict)
    credentials: dict[str, str] | None = Field(
        default=None, description="encrypted at rest, never returned"
    )
    permissions: PermissionsBody = Field(default_factory=PermissionsBody)
    configOverwritesAllowed: bool = Field(  # noqa: N815
        default=True, description=_OVERWRITES_ALLOWED
    )


class DataSourceUpdateBody(_Body):
    """``PATCH /api/datasource/v1/datasources/{id}``: only the fields given change."""

    displayName: str | None = None  # noqa: N815
    description: str | None = None
    config: dict[str, str] | None = None
    credentials: dict[str, str] | None = Field(
        default=None, description="encrypted at rest, never returned"
    )
    permissions: PermissionsBody | None = None
    configOverwritesAllowed: bool | None = Field(  # noqa: N815
        default=None, description=_OVERWRITES_ALLOWED
    )


class OwnerInfo(BaseModel):
    """The owner as Domino's client reads it."""

    ownerName: str  # noqa: N815
    ownerEmail: str  # noqa: N815
    isOwnerAdmin: bool  # noqa: N815


class DataSourceRead(BaseModel):
    """A data source as every JSON API returns it (credentials never included)."""

    id: str
    name: str
    displayName: str  # noqa: N815
    description: str
    dataSourceType: str  # noqa: N815
    authType: str  # noqa: N815
    credentialType: str  # noqa: N815
    config: dict[str, str]
    ownerId: str  # noqa: N815
    ownerInfo: OwnerInfo  # noqa: N815
    permissions: PermissionsBody
    projectIds: list[str]  # noqa: N815
    status: str
    addedBy: dict[str, str]  # noqa: N815
    lastUpdated: int  # noqa: N815
    lastUpdatedBy: str  # noqa: N815
    configOverwritesAllowed: bool  # noqa: N815


class DominoPermissions(PermissionsBody):
    """Domino's ``dataSourcePermissions``."""

    credentialType: str  # noqa: N815


class AdminInfo(BaseModel):
    """What a SysAdmin's lookup adds, by project id."""

    projectNames: dict[str, str]  # noqa: N815
    projectIdOwnerUsernameMap: dict[str, str]  # noqa: N815
    projectLastActiveMap: dict[str, str | None] = Field(  # noqa: N815
        description="the time of the newest event naming the project (ISO 8601); null: none"
    )


class UserRef(BaseModel):
    """A user by id and name."""

    id: str
    username: str


class LookupDocument(DataSourceRead):
    """The data source as ``GET /v4/datasource/name/{name}`` returns it: with Domino's fields."""

    config: dict[str, str] = Field(
        description="with Domino's `type` (DataSource<Type>) and `dataSourceType`"
    )
    addedBy: dict[str, str] = Field(  # noqa: N815
        description="project id to the username of who added the data source to it"
    )
    createdBy: UserRef  # noqa: N815
    addedToProjectTimeMap: dict[str, int] = Field(  # noqa: N815
        description="project id to when the data source was added to it (epoch ms)"
    )
    lastAccessed: dict[str, int] = Field(  # noqa: N815
        description="project id to its last granted access from a run of the project "
        "(epoch ms; 0: never)"
    )
    isEveryone: bool  # noqa: N815
    userIds: list[str]  # noqa: N815
    dataSourcePermissions: DominoPermissions  # noqa: N815
    adminInfo: AdminInfo | None = Field(  # noqa: N815
        default=None, description="SysAdmins only"
    )


def data_source_read(ds: DataSource, users: dict[str, User]) -> dict[str, Any]:
    """The JSON document of a data source; ``users`` must hold its owner and creator."""
    owner = users.get(ds.owner_id)
    added_by = users.get(ds.added_by)
    return {
        "id": ds.id,
        "name": ds.name,
        "displayName": ds.display_name,
        "description": ds.description,
        "dataSourceType": ds.data_source_type,
        "authType": ds.auth_type,
        "credentialType": ds.credential_type.value,
        "config": ds.config,
        "ownerId": ds.owner_id,
        "ownerInfo": {
            "ownerName": owner.username if owner else "",
            "ownerEmail": owner.email if owner else "",
            "isOwnerAdmin": bool(owner and owner.is_admin),
        },
        "permissions": {
            "isEveryone": ds.permissions.is_everyone,
            "userIds": list(ds.permissions.user_ids),
        },
        "projectIds": list(ds.project_ids),
        "status": ds.status.value,
        "addedBy": {"id": ds.added_by, "username": added_by.username if added_by else ""},
        "lastUpdated": ds.last_updated_ms,
        "lastUpdatedBy": ds.last_updated_by,
        "configOverwritesAllowed": ds.config_overwrites_allowed,
    }


def lookup_document(found: LookedUp) -> dict[str, Any]:
    """``GET /v4/datasource/name/{name}``: the JSON document with the fields scripts written
    against Domino read there: ``isEveryone`` and ``userIds`` at the top (Domino's 2021 shape),
    ``dataSourcePermissions`` (its 2022 shape), ``config.type`` / ``config.dataSourceType``,
    the project maps, and ``adminInfo`` for a SysAdmin. ``createdBy`` is who created it."""
    ds, users = found.data_source, found.users
    document = data_source_read(ds, users)
    permissions = document["permissions"]
    document["config"] = {
        **ds.config,
        "type": f"DataSource{ds.data_source_type}",
        "dataSourceType": ds.data_source_type,
    }
    document["createdBy"] = document.pop("addedBy")
    document["addedBy"] = {
        link.project_id: _username(users, link.added_by) for link in ds.project_links
    }
    document["addedToProjectTimeMap"] = {
        link.project_id: link.added_at_ms for link in ds.project_links
    }
    document["lastAccessed"] = {link.project_id: link.last_accessed_ms for link in ds.project_links}
    document["isEveryone"] = permissions["isEveryone"]
    document["userIds"] = permissions["userIds"]
    document["dataSourcePermissions"] = {**permissions, "credentialType": ds.credential_type.value}
    if found.admin is not None:
        projects = found.admin.projects
        document["adminInfo"] = {
            "projectNames": {pid: project.name for pid, project in projects.items()},
            "projectIdOwnerUsernameMap": {
                pid: _username(users, project.owner_id) for pid, project in projects.items()
            },
            "projectLastActiveMap": {
                pid: format_ms(ms) if ms is not None else None
                for pid, ms in found.admin.last_active_ms.items()
            },
        }
    return document


def _username(users: dict[str, User], user_id: str) -> str:
    user = users.get(user_id)
    return user.username if user else ""


class UserCreateBody(_Body):
    """``POST /api/dstrail/v1/users``."""

    username: str
    email: str | None = None
    role: str = "User"


class UserRead(BaseModel):
    """A user."""

    id: str
    username: str
    role: str


class UserCreated(UserRead):
    """A new user with their API key, shown this once, and the key's id."""

    apiKey: str  # noqa: N815
    apiKeyId: str  # noqa: N815


class RoleBody(_Body):
    """``PUT /api/dstrail/v1/users/{userId}/role``."""

    role: str = Field(description="SysAdmin, Auditor or User")


class ApiKeyCreated(BaseModel):
    """A new API key, shown this once, and its id (to revoke it)."""

    id: str
    apiKey: str  # noqa: N815


class ApiKeyRead(BaseModel):
    """An API key as listed: never the key itself. Times in epoch milliseconds."""

    id: str
    label: str
    created: int
    revoked: int | None
    live: bool


class ProjectCreateBody(_Body):
    """``POST /api/dstrail/v1/projects``."""

    name: str
    ownerId: str | None = Field(default=None, description="SysAdmins only; default: you")  # noqa: N815
    collaboratorIds: list[str] = Field(default_factory=list)  # noqa: N815


class ProjectRead(BaseModel):
    """A project."""

    id: str
    name: str
    ownerId: str  # noqa: N815
    collaboratorIds: list[str]  # noqa: N815


class RunStartBody(_Body):
    """``POST /api/dstrail/v1/runs``: the execution platform registers a run."""

    projectId: str  # noqa: N815
    runType: str  # noqa: N815
    userId: str | None = Field(default=None, description="SysAdmins only; default: you")  # noqa: N815
    dataPlaneId: str = "000000000000000000000000"  # noqa: N815


class RunRead(BaseModel):
    """A run; ``token`` (a JWT for ``DOMINO_TOKEN_FILE``) only when it starts."""

    id: str
    runType: str  # noqa: N815
    projectId: str  # noqa: N815
    userId: str  # noqa: N815
    dataPlaneId: str  # noqa: N815
    running: bool
    token: str | None = None


def credentials_stored(stored: StoredCredentials) -> dict[str, object]:
    """What was stored, as ``CredentialsStored`` (field names, never values)."""
    document: dict[str, object] = {
        "dataSourceId": stored.data_source.id,
        "credentialType": stored.data_source.credential_type.value,
        "fields": list(stored.fields),
    }
    if stored.holder_id is not None:
        document["userId"] = stored.holder_id
    return document
