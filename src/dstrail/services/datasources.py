"""Managing data sources: every change records its event in the same transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dstrail.audit.recorder import record_event
from dstrail.domain.datasources import (
    AUTH_TYPES,
    DATA_SOURCE_TYPES,
    NAME_PATTERN,
    NAME_RULE,
    CredentialType,
    DataSource,
    Permissions,
    ProjectLink,
    Status,
    can_manage,
    can_see,
    can_use,
)
from dstrail.domain.ids import new_object_id
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import Conflict, InvalidInput, NotFound
from dstrail.services.credentials import CredentialVault, store_credentials, validate_credentials
from dstrail.services.refusals import Action, ChangeRefused
from dstrail.store import Repositories

_NAME = re.compile(NAME_PATTERN)
_SECRET_CONFIG_KEY = re.compile(r"password|secret|token|privatekey|apikey", re.IGNORECASE)
MAX_CONFIG_ENTRIES = 64
MAX_DESCRIPTION = 4096


@dataclass(frozen=True, slots=True)
class DataSourceCreate:
    """What a caller gives to create a data source."""

    name: str
    data_source_type: str
    auth_type: str
    credential_type: CredentialType
    config: dict[str, str]
    permissions: Permissions
    display_name: str | None = None
    description: str = ""
    credentials: dict[str, str] | None = None
    config_overwrites_allowed: bool = True


@dataclass(frozen=True, slots=True)
class DataSourceUpdate:
    """A partial update: ``None`` leaves a field as it is."""

    display_name: str | None = None
    description: str | None = None
    config: dict[str, str] | None = None
    credentials: dict[str, str] | None = None
    permissions: Permissions | None = None
    config_overwrites_allowed: bool | None = None


# -- validation -------------------------------------------------------------------------------


def parse_credential_type(value: str) -> CredentialType:
    """The credential type named ``value``; ``InvalidInput`` naming the accepted ones."""
    try:
        return CredentialType(value)
    except ValueError:
        raise InvalidInput(
            f"credentialType: unknown value {value!r}; accepted: Individual, Shared"
        ) from None


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidInput(f"name: {name!r} is not accepted; accepted: {NAME_RULE}")


def _check_type(data_source_type: str, auth_type: str) -> None:
    if data_source_type not in DATA_SOURCE_TYPES:
        raise InvalidInput(
            f"dataSourceType: unknown type {data_source_type!r}; accepted: "
            + ", ".join(sorted(DATA_SOURCE_TYPES))
        )
    if auth_type not in AUTH_TYPES:
        raise InvalidInput(
            f"authType: unknown type {auth_type!r}; accepted: " + ", ".join(sorted(AUTH_TYPES))
        )


def check_config(config: object) -> dict[str, str]:
    """A string map without credentials in it; ``InvalidInput`` otherwise."""
    if not isinstance(config, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in config.items()
    ):
        raise InvalidInput('config: must be an object of string values, e.g. {"bucket": "b"}')
    if len(config) > MAX_CONFIG_ENTRIES:
        raise InvalidInput(f"config: at most {MAX_CONFIG_ENTRIES} entries are accepted")
    for key in config:
        if _SECRET_CONFIG_KEY.search(key):
            raise InvalidInput(
                f"config: key {key!r} looks like a credential; send it in 'credentials', "
                "which is encrypted and never returned"
            )
    return dict(config)


def _check_text(value: str | None, *, field: str, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters are accepted")


def _check_user_ids(tx: Repositories, user_ids: tuple[str, ...]) -> tuple[str, ...]:
    unique = tuple(sorted(set(user_ids)))
    known = tx.users.by_ids(list(unique))
    unknown = [uid for uid in unique if uid not in known]
    if unknown:
        raise InvalidInput(f"permissions.userIds: unknown user ids: {', '.join(unknown)}")
    return unique


# -- reads ------------------------------------------------------------------------------------


def get_visible(tx: Repositories, *, data_source_id: str, actor: User) -> DataSource:
    """A data source the actor may see; ``NotFound`` for others (existence is not leaked)."""
    ds = tx.data_sources.by_id(data_source_id)
    if ds is None or not can_see(ds, actor):
        raise NotFound(f"no data source with id {data_source_id!r}")
    return ds


def list_visible(
    tx: Repositories, *, actor: User, include_deleted: bool = False
) -> list[DataSource]:
    """The data sources the actor may see."""
    return [
        ds
        for ds in tx.data_sources.all(include_deleted=include_deleted and actor.is_admin)
        if can_see(ds, actor)
    ]


def people_of(tx: Repositories, data_sources: list[DataSource]) -> dict[str, User]:
    """The users these data sources name (owners, creators, last editors and the users they
    are shared with), by id."""
    ids: set[str] = set()
    for ds in data_sources:
        ids |= {ds.owner_id, ds.added_by, ds.last_updated_by, *ds.permissions.user_ids}
    return tx.users.by_ids(sorted(ids))


def find_any(tx: Repositories, data_source_id: str) -> DataSource | None:
    """A data source by id, deleted ones included (for pages that link to it)."""
    return tx.data_sources.by_id(data_source_id)


def _get_managed(tx: Repositories, *, data_source_id: str, actor: User, action: str) -> DataSource:
    ds = tx.data_sources.by_id(data_source_id, for_update=True)
    if ds is None or not can_see(ds, actor):
        raise NotFound(f"no data source with id {data_source_id!r}")
    if not ds.is_active:
        raise NotFound(f"data source {ds.name!r} has been deleted")
    if not can_manage(ds, actor):
        raise ChangeRefused(
            f"only the owner of {ds.name!r} or a SysAdmin may change it",
            data_source=ds, actor=actor, action=action, reason="notOwner",
        )  # fmt: skip
    return ds


# -- changes ----------------------------------------------------------------------------------


def create_data_source(
    tx: Repositories, vault: CredentialVault, *, spec: DataSourceCreate, actor: User, now_ms: int
) -> DataSource:
    """Create a data source owned by the actor; records ``CreateDataSource``."""
    _check_name(spec.name)
    _check_type(spec.data_source_type, spec.auth_type)
    config = check_config(spec.config)
    _check_text(spec.display_name, field="displayName", limit=256)
    _check_text(spec.description, field="description", limit=MAX_DESCRIPTION)
    credentials = validate_credentials(spec.credentials) if spec.credentials else None
    user_ids = _check_user_ids(tx, spec.permissions.user_ids)
    ds = DataSource(
        id=new_object_id(),
        name=spec.name,
        display_name=spec.display_name or spec.name,
        description=spec.description,
        data_source_type=spec.data_source_type,
        auth_type=spec.auth_type,
        credential_type=spec.credential_type,
        config=config,
        owner_id=actor.id,
        permissions=Permissions(is_everyone=spec.permissions.is_everyone, user_ids=user_ids),
        project_links=(),
        status=Status.ACTIVE,
        added_by=actor.id,
        created_at_ms=now_ms,
        last_updated_ms=now_ms,
        last_updated_by=actor.id,
        config_overwrites_allowed=spec.config_overwrites_allowed,
    )
    tx.data_sources.add(ds)
    if credentials is not None:
        store_credentials(
            tx, vault, data_source=ds, user=actor, credentials=credentials, now_ms=now_ms
        )
    record_event(
        tx,
        kind=EventKind.CREATE_DATA_SOURCE,
        data_source=ds,
        actor=actor,
        now_ms=now_ms,
        metadata={
            "credentialType": ds.credential_type.value,
            "isEveryone": _flag(ds.permissions.is_everyone),
            "ownerId": ds.owner_id,
            "userIds": ",".join(ds.permissions.user_ids),
            "projectIds": ",".join(ds.project_ids),
            # Domino's seven keys; the switch only when it is not Domino's default (on)
            **({} if ds.config_overwrites_allowed else {"configOverwritesAllowed": "false"}),
        },
    )
    return ds


def update_data_source(
    tx: Repositories,
    vault: CredentialVault,
    *,
    data_source_id: str,
    change: DataSourceUpdate,
    actor: User,
    now_ms: int,
) -> DataSource:
    """Apply a partial update; each kind of change records its own event."""
    ds = _get_managed(tx, data_source_id=data_source_id, actor=actor, action=Action.UPDATE)
    config = check_config(change.config) if change.config is not None else None
    credentials = validate_credentials(change.credentials) if change.credentials else None
    _check_text(change.display_name, field="displayName", limit=256)
    _check_text(change.description, field="description", limit=MAX_DESCRIPTION)
    updated = replace(
        ds,
        display_name=change.display_name if change.display_name is not None else ds.display_name,
        description=change.description if change.description is not None else ds.description,
        config=config if config is not None else ds.config,
        last_updated_ms=now_ms,
        last_updated_by=actor.id,
        config_overwrites_allowed=(
            change.config_overwrites_allowed
            if change.config_overwrites_allowed is not None
            else ds.config_overwrites_allowed
        ),
    )
    changed_fields = [
        name
        for name, before, after in (
            ("displayName", ds.display_name, updated.display_name),
            ("description", ds.description, updated.description),
            ("config", ds.config, updated.config),
            (
                "configOverwritesAllowed",
                ds.config_overwrites_allowed,
                updated.config_overwrites_allowed,
            ),
        )
        if before != after
    ]
    if change.permissions is not None:
        updated = _apply_permissions(
            tx, updated, change.permissions, actor=actor, now_ms=now_ms
        ).data_source
    if not changed_fields and credentials is None and updated.permissions == ds.permissions:
        return ds  # nothing changed: nothing saved, nothing recorded
    if changed_fields or credentials is not None:
        tx.data_sources.save(updated)
    if changed_fields:
        record_event(
            tx,
            kind=EventKind.UPDATE_DATA_SOURCE,
            data_source=updated,
            actor=actor,
            now_ms=now_ms,
            metadata={
                "changedFields": ",".join(changed_fields),
                **(
                    {"configOverwritesAllowed": _flag(updated.config_overwrites_allowed)}
                    if "configOverwritesAllowed" in changed_fields
                    else {}
                ),
            },
        )
    if credentials is not None:
        store_credentials(
            tx, vault, data_source=updated, user=actor, credentials=credentials, now_ms=now_ms
        )
        record_event(
            tx,
            kind=EventKind.UPDATE_CREDENTIALS,
            data_source=updated,
            actor=actor,
            now_ms=now_ms,
            metadata={"credentialType": updated.credential_type.value},
        )
    return updated


def allow_config_overwrites_by_name(
    tx: Repositories,
    vault: CredentialVault,
    *,
    name: str,
    allowed: bool,
    actor: User,
    now_ms: int,
) -> DataSource:
    """The operator's way (``dstrail datasources overwrites``): turn a data source's config
    overwrites on or off by its name; recorded by ``update_data_source`` when it changes."""
    ds = tx.data_sources.active_by_name(name)
    if ds is None:
        raise NotFound(f"no data source named {name!r}")
    return update_data_source(
        tx, vault, data_source_id=ds.id, actor=actor, now_ms=now_ms,
        change=DataSourceUpdate(config_overwrites_allowed=allowed),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PermissionsChange:
    """The data source after ``set_permissions``; ``changed``: an event was recorded (else the
    permissions were already these, and nothing was saved)."""

    data_source: DataSource
    changed: bool


def set_permissions(
    tx: Repositories, *, data_source_id: str, permissions: Permissions, actor: User, now_ms: int
) -> PermissionsChange:
    """Replace who may use a data source; records ``DataSourceChangeOfPermissions``."""
    ds = _get_managed(tx, data_source_id=data_source_id, actor=actor, action=Action.SET_PERMISSIONS)
    return _apply_permissions(tx, ds, permissions, actor=actor, now_ms=now_ms)


def _apply_permissions(
    tx: Repositories, ds: DataSource, permissions: Permissions, *, actor: User, now_ms: int
) -> PermissionsChange:
    user_ids = _check_user_ids(tx, permissions.user_ids)
    before = set(ds.permissions.user_ids)
    added, removed = sorted(set(user_ids) - before), sorted(before - set(user_ids))
    if permissions.is_everyone == ds.permissions.is_everyone and not added and not removed:
        return PermissionsChange(data_source=ds, changed=False)
    updated = replace(
        ds,
        permissions=Permissions(is_everyone=permissions.is_everyone, user_ids=user_ids),
        last_updated_ms=now_ms,
        last_updated_by=actor.id,
    )
    tx.data_sources.save(updated)
    record_event(
        tx,
        kind=EventKind.CHANGE_OF_PERMISSIONS,
        data_source=updated,
        actor=actor,
        now_ms=now_ms,
        metadata={
            "isEveryone": _flag(permissions.is_everyone),
            "addedUserIds": ",".join(added),
            "removedUserIds": ",".join(removed),
        },
    )
    return PermissionsChange(data_source=updated, changed=True)


def transfer_ownership(
    tx: Repositories, *, data_source_id: str, new_owner_id: str, actor: User, now_ms: int
) -> DataSource:
    """Give a data source to another user; records ``DataSourceChangeOfOwnership``."""
    ds = _get_managed(tx, data_source_id=data_source_id, actor=actor, action=Action.TRANSFER)
    new_owner = tx.users.by_id(new_owner_id)
    if new_owner is None:
        raise NotFound(f"newOwnerId: no user with id {new_owner_id!r}")
    if new_owner.id == ds.owner_id:
        raise Conflict(f"user {new_owner.username!r} already owns {ds.name!r}")
    previous = tx.users.by_id(ds.owner_id)
    updated = replace(ds, owner_id=new_owner.id, last_updated_ms=now_ms, last_updated_by=actor.id)
    tx.data_sources.save(updated)
    record_event(
        tx,
        kind=EventKind.CHANGE_OF_OWNERSHIP,
        data_source=updated,
        actor=actor,
        now_ms=now_ms,
        metadata={
            "previousOwnerId": ds.owner_id,
            "previousOwnerUsername": previous.username if previous else "",
            "newOwnerId": new_owner.id,
            "newOwnerUsername": new_owner.username,
        },
    )
    return updated


def delete_data_source(
    tx: Repositories, *, data_source_id: str, actor: User, now_ms: int
) -> DataSource:
    """Soft-delete a data source (its name becomes reusable); records ``DeleteDataSource``."""
    ds = _get_managed(tx, data_source_id=data_source_id, actor=actor, action=Action.DELETE)
    deleted = replace(ds, status=Status.DELETED, last_updated_ms=now_ms, last_updated_by=actor.id)
    tx.data_sources.save(deleted)
    record_event(
        tx, kind=EventKind.DELETE_DATA_SOURCE, data_source=deleted, actor=actor, now_ms=now_ms
    )
    return deleted


def attach_to_project(
    tx: Repositories, *, data_source_id: str, project_id: str, actor: User, now_ms: int
) -> DataSource:
    """Add a data source to a project; records ``DataSourceAssociatedToProject``.

    The actor must be the project's owner or a collaborator, and may use the data source.
    """
    ds = tx.data_sources.by_id(data_source_id, for_update=True)
    if ds is None or not can_see(ds, actor) or not ds.is_active:
        raise NotFound(f"no data source with id {data_source_id!r}")
    project = tx.projects.by_id(project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id!r}")
    if not (project.is_member(actor.id) or actor.is_admin):
        raise ChangeRefused(
            f"only members of project {project.name!r} may add data sources to it",
            data_source=ds, actor=actor, action=Action.ATTACH, reason="notProjectMember",
        )  # fmt: skip
    if not (can_use(ds, actor) or actor.is_admin):
        raise ChangeRefused(
            f"you may not use data source {ds.name!r}",
            data_source=ds, actor=actor, action=Action.ATTACH, reason="notPermitted",
        )  # fmt: skip
    if project.id in ds.project_ids:
        raise Conflict(f"data source {ds.name!r} is already in project {project.name!r}")
    tx.data_sources.attach_project(ds.id, project.id, added_by=actor.id, now_ms=now_ms)
    link = ProjectLink(
        project_id=project.id, added_by=actor.id, added_at_ms=now_ms, last_accessed_ms=0
    )
    links = sorted((*ds.project_links, link), key=lambda each: each.project_id)
    attached = replace(ds, project_links=tuple(links))
    record_event(
        tx,
        kind=EventKind.ASSOCIATED_TO_PROJECT,
        data_source=attached,
        actor=actor,
        now_ms=now_ms,
        metadata={"projectId": project.id, "projectName": project.name},
    )
    return attached


def detach_from_project(
    tx: Repositories, *, data_source_id: str, project_id: str, actor: User, now_ms: int
) -> DataSource:
    """Remove a data source from a project; records ``DataSourceDissociatedFromProject``."""
    ds = tx.data_sources.by_id(data_source_id, for_update=True)
    if ds is None or not can_see(ds, actor):
        raise NotFound(f"no data source with id {data_source_id!r}")
    if not ds.is_active:
        raise NotFound(f"data source {ds.name!r} has been deleted")
    project = tx.projects.by_id(project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id!r}")
    if not (project.is_member(actor.id) or can_manage(ds, actor)):
        raise ChangeRefused(
            f"only members of project {project.name!r} may remove data sources",
            data_source=ds, actor=actor, action=Action.DETACH, reason="notProjectMember",
        )  # fmt: skip
    if project.id not in ds.project_ids:
        raise NotFound(f"data source {ds.name!r} is not in project {project.name!r}")
    tx.data_sources.detach_project(ds.id, project.id)
    detached = replace(
        ds, project_links=tuple(link for link in ds.project_links if link.project_id != project.id)
    )
    record_event(
        tx,
        kind=EventKind.DISSOCIATED_FROM_PROJECT,
        data_source=detached,
        actor=actor,
        now_ms=now_ms,
        metadata={"projectId": project.id, "projectName": project.name},
    )
    return detached


def _flag(value: bool) -> str:
    return "true" if value else "false"
