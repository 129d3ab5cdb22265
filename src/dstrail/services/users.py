"""Users and API keys."""

from __future__ import annotations

import hashlib
import re
import secrets

from dstrail.domain.ids import new_object_id
from dstrail.domain.users import Role, User
from dstrail.errors import Forbidden, InvalidInput, NotFound
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


def create_user(
    tx: Repositories, *, username: str, email: str | None, role: Role, now_ms: int
) -> tuple[User, str]:
    """A new user and their first API key (returned once, stored only as a hash)."""
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(f"username: {username!r} is not accepted; accepted: {USERNAME_RULE}")
    if email is not None and (len(email) > 320 or "@" not in email):
        raise InvalidInput(f"email: {email!r} is not an email address")
    user = User(id=new_object_id(), username=username, email=email or "", role=role)
    tx.users.add(user, now_ms=now_ms)
    return user, issue_api_key(tx, user=user, label="initial", now_ms=now_ms)


def issue_api_key(tx: Repositories, *, user: User, label: str, now_ms: int) -> str:
    """A new API key for ``user``; only its hash is kept."""
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    tx.users.add_api_key(
        key_id=new_object_id(),
        user_id=user.id,
        key_hash=hash_api_key(api_key),
        label=label[:128],
        now_ms=now_ms,
    )
    return api_key


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
) -> str:
    """Another API key for the actor themself, or (a SysAdmin's) for anyone."""
    if user_id != actor.id:
        require_admin(actor, "creating keys for other users")
    user = tx.users.by_id(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return issue_api_key(tx, user=user, label=label, now_ms=now_ms)


def list_users(tx: Repositories) -> list[User]:
    """Every user, by username."""
    return tx.users.all()


def find_user(tx: Repositories, reference: str) -> User | None:
    """A user by id, or by username."""
    return tx.users.by_id(reference) or tx.users.by_username(reference)
