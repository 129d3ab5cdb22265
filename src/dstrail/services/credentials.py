"""Credentials of data sources: encrypted at rest, decrypted only for the data path."""

from __future__ import annotations

import orjson
from cryptography.fernet import Fernet, InvalidToken

from dstrail.domain.datasources import CredentialType, DataSource
from dstrail.domain.users import User
from dstrail.errors import DstrailError, InvalidInput
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
