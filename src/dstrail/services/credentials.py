"""Credentials of data sources: encrypted at rest, decrypted only for the data path, and who
may store whose."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken

from dstrail.audit.recorder import record_event
from dstrail.domain.datasources import CredentialType, DataSource, can_manage, can_see, can_use
from dstrail.domain.trail import EventKind
from dstrail.domain.users import User
from dstrail.errors import DstrailError, InvalidInput, NotFound
from dstrail.services.refusals import Action, ChangeRefused
from dstrail.services.users import require_user
from dstrail.store import SHARED_CREDENTIALS_USER, Repositories

MAX_CREDENTIAL_FIELDS = 16


def validate_credentials(value: object, *, field: str = "credentials") -> dict[str, str]:
    """A string map of at most 16 entries; ``InvalidInput`` otherwise (values never echoed)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput(
            f"{field}: must be an object of string values, e.g. "
            '{"username": "...", "password": "..."}'
        )
    if not value or len(value) > MAX_CREDENTIAL_FIELDS:
        raise InvalidInput(f"{field}: must hold 1 to {MAX_CREDENTIAL_FIELDS} entries")
    return dict(value)


class CredentialVault:
    """Encrypts and decrypts credential maps with the server's Fernet key."""

    def __init__(self, encryption_key: str) -> None:
        self._fernet = Fernet(encryption_key.encode())

    def seal(self, credentials: dict[str, str]) -> str:
        """Ciphertext for a credential map."""
        return self._fernet.encrypt(orjson.dumps(credentials)).decode()

    def open(self, ciphertext: str) -> dict[str, str]:
        """The credential map of a ciphertext."""
        try:
            value: dict[str, str] = orjson.loads(self._fernet.decrypt(ciphertext.encode()))
        except InvalidToken:
            raise DstrailError(
                "stored credentials cannot be decrypted: the encryption key has changed"
            ) from None
        return value


def store_credentials(
    tx: Repositories,
    vault: CredentialVault,
    *,
    data_source: DataSource,
    user: User,
    credentials: dict[str, str],
    now_ms: int,
) -> None:
    """Store credentials: the shared account, or ``user``'s own for ``Individual`` ones."""
    holder = (
        SHARED_CREDENTIALS_USER if data_source.credential_type is CredentialType.SHARED else user.id
    )
    tx.data_sources.set_credentials(data_source.id, holder, vault.seal(credentials), now_ms=now_ms)


def credentials_for(
    tx: Repositories, vault: CredentialVault, *, data_source: DataSource, user: User
) -> dict[str, str] | None:
    """The credentials the data path uses for ``user``, or ``None`` when none are stored."""
    holder = (
        SHARED_CREDENTIALS_USER if data_source.credential_type is CredentialType.SHARED else user.id
    )
    ciphertext = tx.data_sources.credentials(data_source.id, holder)
    return vault.open(ciphertext) if ciphertext else None


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    """What was stored: field names only, never values."""

    data_source: DataSource
    fields: tuple[str, ...]
    holder_id: str | None
    """Whose they are (``Individual``); None for the shared account."""


def set_credentials(
    tx: Repositories,
    vault: CredentialVault,
    *,
    data_source_id: str,
    actor: User,
    holder_id: str | None,
    credentials: object,
    now_ms: int,
    via: str,
) -> StoredCredentials:
    """Store credentials; records ``DataSourceCredentialsUpdated`` (field names, no values).

    ``Individual``: the holder (default: the actor) stores their own; only a SysAdmin stores
    someone else's. ``Shared``: the owner or a SysAdmin sets the one service account.
    """
    data_source = tx.data_sources.by_id(data_source_id)
    if data_source is None or not data_source.is_active or not can_see(data_source, actor):
        raise NotFound(f"no data source with id {data_source_id!r}")
    values = validate_credentials(credentials)
    metadata = {"credentialType": data_source.credential_type.value, "via": via}
    if data_source.credential_type is CredentialType.SHARED:
        _check_shared(data_source, actor=actor, holder_id=holder_id)
        holder = actor
    else:
        holder = _individual_holder(tx, data_source, actor=actor, holder_id=holder_id)
        metadata["credentialUserId"] = holder.id
    store_credentials(
        tx, vault, data_source=data_source, user=holder, credentials=values, now_ms=now_ms
    )
    metadata["fields"] = ",".join(sorted(values))
    record_event(
        tx,
        kind=EventKind.UPDATE_CREDENTIALS,
        data_source=data_source,
        actor=actor,
        now_ms=now_ms,
        metadata=metadata,
    )
    individual = data_source.credential_type is CredentialType.INDIVIDUAL
    return StoredCredentials(
        data_source=data_source,
        fields=tuple(sorted(values)),
        holder_id=holder.id if individual else None,
    )


def _check_shared(data_source: DataSource, *, actor: User, holder_id: str | None) -> None:
    if holder_id is not None and holder_id != actor.id:
        raise InvalidInput(
            f"userId: data source {data_source.name!r} uses Shared credentials, "
            "which belong to no user; leave userId out"
        )
    if not can_manage(data_source, actor):
        raise _refused(
            f"only the owner of {data_source.name!r} or a SysAdmin may set its shared credentials",
            data_source, actor, "notOwner",
        )  # fmt: skip


def _individual_holder(
    tx: Repositories, data_source: DataSource, *, actor: User, holder_id: str | None
) -> User:
    holder = actor
    if holder_id is not None and holder_id != actor.id:
        if not actor.is_admin:
            raise _refused(
                "users store their own Individual credentials only", data_source, actor, "notAdmin"
            )
        found = tx.users.by_id(holder_id)
        if found is None:
            raise InvalidInput(f"userId: no user with id {holder_id!r}")
        holder = found
    if not can_use(data_source, holder):
        raise _refused(
            f"user {holder.username!r} may not use data source {data_source.name!r}",
            data_source, actor, "notPermitted",
        )  # fmt: skip
    return holder


def _refused(message: str, data_source: DataSource, actor: User, reason: str) -> ChangeRefused:
    return ChangeRefused(
        message, data_source=data_source, actor=actor, action=Action.SET_CREDENTIALS,
        reason=reason,
    )  # fmt: skip


def set_credentials_by_name(
    tx: Repositories,
    vault: CredentialVault,
    *,
    name: str,
    username: str | None,
    credentials: dict[str, str],
    now_ms: int,
) -> StoredCredentials:
    """The operator's way (``dstrail datasources credentials set``): the data source by name;
    ``Individual``: ``username``'s own (required); ``Shared``: set by ``username``, default the
    owner. Errors name the CLI's options."""
    ds = tx.data_sources.active_by_name(name)
    if ds is None:
        raise NotFound(f"no data source named {name!r}")
    if ds.credential_type is CredentialType.INDIVIDUAL:
        if not username:
            raise InvalidInput(
                f"--user: data source {ds.name!r} uses Individual credentials; name whose they are"
            )
        actor = require_user(tx, username=username, field="--user")
        if not can_use(ds, actor):
            raise _refused(
                f"user {actor.username!r} may not use data source {ds.name!r}", ds, actor,
                "notPermitted",
            )  # fmt: skip
        holder_id: str | None = actor.id
    elif username:
        actor, holder_id = require_user(tx, username=username, field="--user"), None
    else:
        owner = tx.users.by_id(ds.owner_id)
        if owner is None:
            raise NotFound(f"the owner of {ds.name!r} no longer exists; pass --user")
        actor, holder_id = owner, None
    return set_credentials(
        tx, vault, data_source_id=ds.id, actor=actor, holder_id=holder_id,
        credentials=credentials, now_ms=now_ms, via="cli",
    )  # fmt: skip
