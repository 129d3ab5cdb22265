"""Data sources, their permissions, projects and encrypted credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dstrail.domain.datasources import (
    CredentialType,
    DataSource,
    Permissions,
    ProjectLink,
    Status,
)
from dstrail.errors import Conflict
from dstrail.store.driver import DriverReads, Read, Statement, statement
from dstrail.store.schema import (
    data_source_credentials,
    data_source_projects,
    data_source_users,
    data_sources,
)

_NAMES = (
    "id",
    "name",
    "display_name",
    "description",
    "data_source_type",
    "auth_type",
    "credential_type",
    "config",
    "owner_id",
    "is_everyone",
    "status",
    "added_by",
    "created_at",
    "last_updated",
    "last_updated_by",
    "config_overwrites_allowed",
)
"""The columns every read of a data source selects, in order (``_data_source`` reads them by
name; the reads with links add ``user_ids`` and ``project_links``)."""
_COLUMNS = tuple(data_sources.c[name] for name in _NAMES)
_COLUMN_LIST = ", ".join(f"ds.{name}" for name in _NAMES)
_LINK_COLUMNS = "project_id, added_by, added_at, last_accessed"
"""A project link's columns, in ``ProjectLink``'s order."""
_LINKS = {
    # A data source's users and project links in the same row: one statement per access lookup.
    "sqlite": (
        "(SELECT json_group_array(user_id) FROM data_source_users "
        "WHERE data_source_id = ds.id) AS user_ids, "
        f"(SELECT json_group_array(json_array({_LINK_COLUMNS})) FROM data_source_projects "
        "WHERE data_source_id = ds.id) AS project_links"
    ),
    "postgresql": (
        "ARRAY(SELECT user_id FROM data_source_users WHERE data_source_id = ds.id) AS user_ids, "
        f"(SELECT coalesce(json_agg(json_build_array({_LINK_COLUMNS})), '[]') "
        "FROM data_source_projects WHERE data_source_id = ds.id) AS project_links"
    ),
}


def _with_links(where: str) -> Statement:
    return statement(
        f"SELECT {_COLUMN_LIST}, {_LINKS['sqlite']} FROM data_sources ds WHERE {where}",
        postgresql=f"SELECT {_COLUMN_LIST}, {_LINKS['postgresql']} FROM data_sources ds "
        f"WHERE {where}",
    )


_ACTIVE_BY_NAME = _with_links(f"ds.name = :name AND ds.status = '{Status.ACTIVE.value}'")
_BY_ID = _with_links("ds.id = :id")


def _links(value: str | list[str]) -> tuple[str, ...]:
    """A JSON array (SQLite) or an array (PostgreSQL) of ids, in order."""
    return tuple(sorted(orjson.loads(value) if isinstance(value, str) else value))


def _project_links(rows: str | list[list[Any]]) -> tuple[ProjectLink, ...]:
    """Link rows (``_LINK_COLUMNS``), as JSON text (SQLite) or parsed (PostgreSQL), or as
    tuples, by project id."""
    parsed = orjson.loads(rows) if isinstance(rows, str) else rows
    links = (
        ProjectLink(
            project_id=project_id, added_by=added_by, added_at_ms=int(added_at),
            last_accessed_ms=int(last_accessed),
        )
        for project_id, added_by, added_at, last_accessed in parsed
    )  # fmt: skip
    return tuple(sorted(links, key=lambda link: link.project_id))


def _data_source(
    row: Sequence[Any], *, user_ids: tuple[str, ...], project_links: tuple[ProjectLink, ...]
) -> DataSource:
    values = dict(zip(_NAMES, row, strict=False))  # a read with links has two more columns
    return DataSource(
        id=values["id"],
        name=values["name"],
        display_name=values["display_name"],
        description=values["description"],
        data_source_type=values["data_source_type"],
        auth_type=values["auth_type"],
        credential_type=CredentialType(values["credential_type"]),
        config=orjson.loads(values["config"]),
        owner_id=values["owner_id"],
        permissions=Permissions(is_everyone=bool(values["is_everyone"]), user_ids=user_ids),
        project_links=project_links,
        status=Status(values["status"]),
        added_by=values["added_by"],
        created_at_ms=values["created_at"],
        last_updated_ms=values["last_updated"],
        last_updated_by=values["last_updated_by"],
        config_overwrites_allowed=bool(values["config_overwrites_allowed"]),
    )


class DataSourceRepository:
    """Reads and writes data sources."""

    def __init__(self, connection: Connection, reads: DriverReads) -> None:
        self._db = connection
        self._reads = reads

    # -- reads ---------------------------------------------------------------------------------

    def by_id(self, data_source_id: str, *, for_update: bool = False) -> DataSource | None:
        """One data source, deleted ones included; ``for_update`` locks its row."""
        if for_update:
            query = select(*_COLUMNS).where(data_sources.c.id == data_source_id)
            row = self._db.execute(query.with_for_update()).first()
            return self._hydrate([row])[0] if row else None
        return self._one_with_links(self.read_by_id(data_source_id))

    def active_by_name(self, name: str) -> DataSource | None:
        """The active data source with this name."""
        return self._one_with_links(self.read_active_by_name(name))

    @staticmethod
    def read_by_id(data_source_id: str) -> Read:
        """``by_id``'s read (not for update), for ``Repositories.read_ahead``."""
        return _BY_ID, {"id": data_source_id}

    @staticmethod
    def read_active_by_name(name: str) -> Read:
        """``active_by_name``'s read, for ``Repositories.read_ahead``."""
        return _ACTIVE_BY_NAME, {"name": name}

    def all(self, *, include_deleted: bool = False) -> list[DataSource]:
        """All data sources by name."""
        query = select(*_COLUMNS).order_by(data_sources.c.name, data_sources.c.created_at)
        if not include_deleted:
            query = query.where(data_sources.c.status == Status.ACTIVE.value)
        return self._hydrate(list(self._db.execute(query)))

    def names_ever_used(self, prefix: str = "", limit: int | None = 20) -> list[str]:
        """Names of active and deleted data sources, for suggestions (``None``: all)."""
        query = (
            select(data_sources.c.name)
            .distinct()
            .where(data_sources.c.name.startswith(prefix, autoescape=True))
            .order_by(data_sources.c.name)
            .limit(limit)
        )
        return list(self._db.scalars(query))

    def _one_with_links(self, read: Read) -> DataSource | None:
        row = self._reads.first(*read)
        if row is None:
            return None
        *_, user_ids, project_links = row
        return _data_source(
            row, user_ids=_links(user_ids), project_links=_project_links(project_links)
        )

    def _hydrate(self, rows: Sequence[Sequence[Any]]) -> list[DataSource]:
        position = _NAMES.index("id")
        ids = [row[position] for row in rows]
        users_of: dict[str, list[str]] = {i: [] for i in ids}
        projects_of: dict[str, list[list[Any]]] = {i: [] for i in ids}
        if ids:
            # One id (a locked read before a change) avoids the costlier expanding IN.
            user_of = data_source_users.c.data_source_id
            project_of = data_source_projects.c.data_source_id
            for ds_id, user_id in self._db.execute(
                select(user_of, data_source_users.c.user_id)
                .where(user_of == ids[0] if len(ids) == 1 else user_of.in_(ids))
                .order_by(data_source_users.c.user_id)
            ):
                users_of[ds_id].append(user_id)
            links = data_source_projects.c
            for ds_id, *link in self._db.execute(
                select(
                    project_of, links.project_id, links.added_by, links.added_at,
                    links.last_accessed,
                ).where(project_of == ids[0] if len(ids) == 1 else project_of.in_(ids))
            ):  # fmt: skip
                projects_of[ds_id].append(link)
        return [
            _data_source(
                row,
                user_ids=tuple(users_of[ds_id]),
                project_links=_project_links(projects_of[ds_id]),
            )
            for ds_id, row in zip(ids, rows, strict=True)
        ]

    # -- writes --------------------------------------------------------------------------------

    def add(self, ds: DataSource) -> None:
        """Insert a data source; ``Conflict`` when an active one has the name."""
        try:
            with self._db.begin_nested():
                self._db.execute(
                    insert(data_sources).values(
                        id=ds.id,
                        name=ds.name,
                        display_name=ds.display_name,
                        description=ds.description,
                        data_source_type=ds.data_source_type,
                        auth_type=ds.auth_type,
                        credential_type=ds.credential_type.value,
                        config=orjson.dumps(ds.config).decode(),
                        owner_id=ds.owner_id,
                        is_everyone=ds.permissions.is_everyone,
                        status=ds.status.value,
                        added_by=ds.added_by,
                        created_at=ds.created_at_ms,
                        last_updated=ds.last_updated_ms,
                        last_updated_by=ds.last_updated_by,
                        config_overwrites_allowed=ds.config_overwrites_allowed,
                    )
                )
        except IntegrityError:
            raise Conflict(f"an active data source is already named {ds.name!r}") from None
        self._set_users(ds.id, ds.permissions.user_ids)

    def save(self, ds: DataSource) -> None:
        """Write the mutable fields and the permissions of an existing data source."""
        self._db.execute(
            update(data_sources)
            .where(data_sources.c.id == ds.id)
            .values(
                display_name=ds.display_name,
                description=ds.description,
                config=orjson.dumps(ds.config).decode(),
                owner_id=ds.owner_id,
                is_everyone=ds.permissions.is_everyone,
                status=ds.status.value,
                last_updated=ds.last_updated_ms,
                last_updated_by=ds.last_updated_by,
                config_overwrites_allowed=ds.config_overwrites_allowed,
            )
        )
        self._db.execute(
            delete(data_source_users).where(data_source_users.c.data_source_id == ds.id)
        )
        self._set_users(ds.id, ds.permissions.user_ids)

    def _set_users(self, data_source_id: str, user_ids: tuple[str, ...]) -> None:
        if user_ids:
            self._db.execute(
                insert(data_source_users),
                [{"data_source_id": data_source_id, "user_id": uid} for uid in user_ids],
            )

    def attach_project(
        self, data_source_id: str, project_id: str, *, added_by: str, now_ms: int
    ) -> None:
        """Link a data source to a project."""
        self._db.execute(
            insert(data_source_projects).values(
                data_source_id=data_source_id,
                project_id=project_id,
                added_by=added_by,
                added_at=now_ms,
            )
        )

    def detach_project(self, data_source_id: str, project_id: str) -> None:
        """Unlink a data source from a project."""
        self._db.execute(
            delete(data_source_projects).where(
                data_source_projects.c.data_source_id == data_source_id,
                data_source_projects.c.project_id == project_id,
            )
        )

    # -- credentials (ciphertext only; encryption lives in services.credentials) ---------------

    def set_credentials(
        self, data_source_id: str, user_id: str, ciphertext: str, *, now_ms: int
    ) -> None:
        """Store (replace) one set of encrypted credentials."""
        self._db.execute(
            delete(data_source_credentials).where(
                data_source_credentials.c.data_source_id == data_source_id,
                data_source_credentials.c.user_id == user_id,
            )
        )
        self._db.execute(
            insert(data_source_credentials).values(
                data_source_id=data_source_id,
                user_id=user_id,
                ciphertext=ciphertext,
                updated_at=now_ms,
            )
        )

    def credentials(self, data_source_id: str, user_id: str) -> str | None:
        """The encrypted credentials of a user (or ``SHARED_CREDENTIALS_USER``)."""
        return self._db.scalar(
            select(data_source_credentials.c.ciphertext).where(
                data_source_credentials.c.data_source_id == data_source_id,
                data_source_credentials.c.user_id == user_id,
            )
        )

    def credential_holders(self, data_source_id: str) -> list[str]:
        """Who has credentials stored for a data source."""
        return list(
            self._db.scalars(
                select(data_source_credentials.c.user_id).where(
                    data_source_credentials.c.data_source_id == data_source_id
                )
            )
        )
