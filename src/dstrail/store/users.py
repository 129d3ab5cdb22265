"""Users and their API keys (stored as SHA-256 hashes only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from dstrail.domain.users import ApiKeyRecord, Role, User
from dstrail.errors import Conflict
from dstrail.store.driver import DriverReads, Read, statement
from dstrail.store.schema import api_keys, users

_NAMES = ("id", "username", "email", "role")
"""The columns every read of a user selects, in order (``_user`` reads them by name)."""
_USER_COLUMNS = tuple(users.c[name] for name in _NAMES)


def _user(row: Sequence[Any]) -> User:
    values = dict(zip(_NAMES, row, strict=True))
    return User(
        id=values["id"],
        username=values["username"],
        email=values["email"],
        role=Role(values["role"]),
    )


# Every authenticated request resolves its caller: on the driver (``dstrail.store.driver``).
_BY_API_KEY_HASH = statement(
    f"SELECT {', '.join('u.' + name for name in _NAMES)} FROM users u "
    "JOIN api_keys k ON k.user_id = u.id WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL"
)
_BY_ID = statement(f"SELECT {', '.join(_NAMES)} FROM users WHERE id = :id")


class UserRepository:
    """Reads and writes users and API keys."""

    def __init__(self, connection: Connection, reads: DriverReads) -> None:
        self._db = connection
        self._reads = reads

    def add(self, user: User, *, now_ms: int) -> None:
        """Insert a user; ``Conflict`` when the username is taken."""
        try:
            with self._db.begin_nested():
                self._db.execute(
                    insert(users).values(
                        id=user.id,
                        username=user.username,
                        email=user.email,
                        role=user.role.value,
                        created_at=now_ms,
                    )
                )
        except IntegrityError:
            raise Conflict(f"username {user.username!r} is already taken") from None

    def add_api_key(
        self, *, key_id: str, user_id: str, key_hash: str, label: str, now_ms: int
    ) -> None:
        """Store the hash of a new API key."""
        self._db.execute(
            insert(api_keys).values(
                id=key_id, user_id=user_id, key_hash=key_hash, label=label, created_at=now_ms
            )
        )

    def revoke_api_key(self, *, key_id: str, user_id: str, now_ms: int) -> bool:
        """Revoke one of a user's keys; whether it existed."""
        result = self._db.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
            .where(api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now_ms)
        )
        return result.rowcount > 0

    def set_role(self, user_id: str, role: Role) -> None:
        """Give a user another role."""
        self._db.execute(update(users).where(users.c.id == user_id).values(role=role.value))

    def lock_count_with_role(self, role: Role) -> int:
        """How many users hold ``role``, their rows locked until the transaction ends (on
        PostgreSQL; SQLite's writers are serialised already), so two concurrent demotions
        cannot both see another holder."""
        rows = self._db.execute(
            select(users.c.id).where(users.c.role == role.value).with_for_update()
        )
        return len(rows.all())

    def api_keys_of(self, user_id: str) -> list[ApiKeyRecord]:
        """A user's API keys (never their hashes), oldest first."""
        rows = self._db.execute(
            select(api_keys.c.id, api_keys.c.label, api_keys.c.created_at, api_keys.c.revoked_at)
            .where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [
            ApiKeyRecord(id=r.id, label=r.label, created_ms=r.created_at, revoked_ms=r.revoked_at)
            for r in rows
        ]

    def by_api_key_hash(self, key_hash: str) -> User | None:
        """The user holding a live key with this hash."""
        row = self._reads.first(*self.read_by_api_key_hash(key_hash))
        return _user(row) if row else None

    @staticmethod
    def read_by_api_key_hash(key_hash: str) -> Read:
        """``by_api_key_hash``'s read, for ``Repositories.read_ahead``."""
        return _BY_API_KEY_HASH, {"key_hash": key_hash}

    def by_id(self, user_id: str) -> User | None:
        """One user by id."""
        row = self._reads.first(_BY_ID, {"id": user_id})
        return _user(row) if row else None

    def by_username(self, username: str) -> User | None:
        """One user by username."""
        row = self._db.execute(select(*_USER_COLUMNS).where(users.c.username == username)).first()
        return _user(row) if row else None

    def by_ids(self, user_ids: list[str]) -> dict[str, User]:
        """Users by id, for the ids that exist."""
        if len(user_ids) <= 2:  # the owner and creator of a data source: the hot path
            found = (self.by_id(user_id) for user_id in user_ids)
            return {user.id: user for user in found if user is not None}
        rows = self._db.execute(select(*_USER_COLUMNS).where(users.c.id.in_(user_ids)))
        return {user.id: user for user in map(_user, rows)}

    def all(self) -> list[User]:
        """Every user, by username."""
        rows = self._db.execute(select(*_USER_COLUMNS).order_by(users.c.username))
        return [_user(row) for row in rows]
