"""Users and API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

from dstrail.audit.recorder import record_platform_event
from dstrail.domain.ids import new_object_id
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR, ApiKeyRecord, Role, User
from dstrail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dstrail.store import Repositories

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
USERNAME_RULE = "1-128 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
API_KEY_PREFIX = "dstrail_"


def hash_api_key(api_key: str) -> str:
    """SHA-256 of a key: keys are 256 random bits, so a fast hash is safe to store."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def parse_role(value: str) -> Role:
    """The role named ``value``; ``InvalidInput`` naming the accepted ones otherwise."""
    try:
        return Role(value)
    except ValueError:
        accepted = ", ".join(role.value for role in Role)
        raise InvalidInput(f"role: unknown role {value!r}; accepted: {accepted}") from None


class IssuedApiKey(NamedTuple):
    """A new API key: its id (for listing and revoking) and its secret, shown this once."""

    id: str
    secret: str


def create_user(
    tx: Repositories, *, actor: User, username: str, email: str | None, role: Role, now_ms: int
) -> tuple[User, IssuedApiKey]:
    """A new user and their first API key (returned once, stored only as a hash); records
    ``UserCreated`` and ``ApiKeyIssued``, performed by ``actor``."""
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(f"username: {username!r} is not accepted; accepted: {USERNAME_RULE}")
    if username == OPERATOR.username:
        raise InvalidInput(f"username: {username!r} is reserved: the trail names the CLI so")
    if email is not None and (len(email) > 320 or "@" not in email):
        raise InvalidInput(f"email: {email!r} is not an email address")
    user = User(id=new_object_id(), username=username, email=email or "", role=role)
    tx.users.add(user, now_ms=now_ms)
    record_platform_event(
        tx, kind=EventKind.USER_CREATED, actor=actor, now_ms=now_ms,
        metadata={"userId": user.id, "username": user.username, "role": user.role.value},
    )  # fmt: skip
    return user, issue_api_key(tx, actor=actor, user=user, label="initial", now_ms=now_ms)


def issue_api_key(
    tx: Repositories, *, actor: User, user: User, label: str, now_ms: int
) -> IssuedApiKey:
    """A new API key for ``user``; only its hash is kept, and ``ApiKeyIssued`` names its id."""
    key = IssuedApiKey(id=new_object_id(), secret=API_KEY_PREFIX + secrets.token_urlsafe(32))
    label = label[:128]
    tx.users.add_api_key(
        key_id=key.id, user_id=user.id, key_hash=hash_api_key(key.secret), label=label,
        now_ms=now_ms,
    )  # fmt: skip
    record_platform_event(
        tx, kind=EventKind.API_KEY_ISSUED, actor=actor, now_ms=now_ms,
        metadata={"userId": user.id, "username": user.username, "keyId": key.id, "label": label},
    )  # fmt: skip
    return key


def revoke_api_key(
    tx: Repositories, *, actor: User, user_id: str, key_id: str, now_ms: int
) -> None:
    """Revoke one of the actor's own keys, or (a SysAdmin's) anyone's; records
    ``ApiKeyRevoked``. ``NotFound`` unless the key is live."""
    if user_id != actor.id:
        require_admin(actor, "revoking other users' keys")
    user = tx.users.by_id(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    if not tx.users.revoke_api_key(key_id=key_id, user_id=user.id, now_ms=now_ms):
        raise NotFound(f"user {user.username!r} has no live API key with id {key_id!r}")
    record_platform_event(
        tx, kind=EventKind.API_KEY_REVOKED, actor=actor, now_ms=now_ms,
        metadata={"userId": user.id, "username": user.username, "keyId": key_id},
    )  # fmt: skip


def api_keys_of(tx: Repositories, *, actor: User, user_id: str) -> list[ApiKeyRecord]:
    """The actor's own keys, or (a SysAdmin's) anyone's: ids, labels and dates, no secrets."""
    if user_id != actor.id:
        require_admin(actor, "listing other users' keys")
    if tx.users.by_id(user_id) is None:
        raise NotFound(f"no user with id {user_id!r}")
    return tx.users.api_keys_of(user_id)


def set_role(tx: Repositories, *, actor: User, user_id: str, role: Role, now_ms: int) -> User:
    """Give a user another role (SysAdmins only); records ``UserRoleChanged`` when it changes.
    ``Conflict`` when it would leave no SysAdmin."""
    require_admin(actor, "changing roles")
    user = tx.users.by_id(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    if user.role is role:
        return user
    if user.is_admin and tx.users.lock_count_with_role(Role.SYS_ADMIN) == 1:
        raise Conflict(f"role: {user.username!r} is the last SysAdmin; make another one first")
    tx.users.set_role(user.id, role)
    record_platform_event(
        tx, kind=EventKind.USER_ROLE_CHANGED, actor=actor, now_ms=now_ms,
        metadata={
            "userId": user.id, "username": user.username, "previousRole": user.role.value,
            "role": role.value,
        },
    )  # fmt: skip
    return User(id=user.id, username=user.username, email=user.email, role=role)


def user_by_api_key(tx: Repositories, api_key: str) -> User | None:
    """The owner of a live API key."""
    return tx.users.by_api_key_hash(hash_api_key(api_key))


def session_user(tx: Repositories, key_hash: str) -> User | None:
    """The owner of the live API key a console session was signed in with (by its hash)."""
    return tx.users.by_api_key_hash(key_hash)


def require_user(tx: Repositories, *, username: str, field: str) -> User:
    """The user named ``username``; ``NotFound`` naming the field otherwise."""
    user = tx.users.by_username(username)
    if user is None:
        raise NotFound(f"{field}: no user named {username!r}")
    return user


def require_admin(user: User, action: str) -> None:
    """``Forbidden`` unless ``user`` is a SysAdmin; ``action`` says what they tried."""
    if not user.is_admin:
        raise Forbidden(f"{action} requires the SysAdmin role")


def user_by_id(tx: Repositories, user_id: str, *, field: str) -> User:
    """The user with this id; ``InvalidInput`` naming the field otherwise."""
    user = tx.users.by_id(user_id)
    if user is None:
        raise InvalidInput(f"{field}: no user with id {user_id!r}")
    return user


def issue_api_key_for(
    tx: Repositories, *, actor: User, user_id: str, label: str, now_ms: int
) -> IssuedApiKey:
    """Another API key for the actor themself, or (a SysAdmin's) for anyone."""
    if user_id != actor.id:
        require_admin(actor, "creating keys for other users")
    user = tx.users.by_id(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return issue_api_key(tx, actor=actor, user=user, label=label, now_ms=now_ms)


def list_users(tx: Repositories) -> list[User]:
    """Every user, by username."""
    return tx.users.all()


def find_user(tx: Repositories, reference: str) -> User | None:
    """A user by id, or by username."""
    return tx.users.by_id(reference) or tx.users.by_username(reference)
