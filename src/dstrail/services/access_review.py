"""What a change of who may use a data source would do, before it is made: the console shows
it and asks to confirm (``set_permissions`` and ``transfer_ownership`` make the change).

Access is what ``can_use`` says: the owner, the named users, or everyone. A review names the
users who gain it and who lose it, and, apart from that, the named users added to or taken
off the list (which matters while everyone may use it, and again once that is turned off).
A review carries a fingerprint of the permissions it was made against, so that confirming
after someone else changed them asks for a new review instead of saving blindly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from dstrail.domain.datasources import DataSource, Permissions, can_use
from dstrail.domain.users import User
from dstrail.errors import Conflict, InvalidInput
from dstrail.services.datasources import get_visible
from dstrail.store import Repositories


def permissions_fingerprint(ds: DataSource) -> str:
    """A short digest of who may use ``ds`` now (and who owns it)."""
    permissions = ds.permissions
    text = "|".join(
        (ds.owner_id, "1" if permissions.is_everyone else "0", *sorted(permissions.user_ids))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PermissionsReview:
    """The change ``permissions`` would make to ``data_source``."""

    data_source: DataSource
    permissions: Permissions
    gains: tuple[User, ...]
    """Users who may not use it now and would."""
    loses: tuple[User, ...]
    """Users who may use it now and would not."""
    named_added: tuple[User, ...]
    """Users added to the named list."""
    named_removed: tuple[User, ...]
    """Users taken off the named list."""
    fingerprint: str
    """``permissions_fingerprint`` of the data source as reviewed."""

    @property
    def everyone_before(self) -> bool:
        """Whether everyone may use it now."""
        return self.data_source.permissions.is_everyone

    @property
    def everyone_after(self) -> bool:
        """Whether everyone would."""
        return self.permissions.is_everyone

    @property
    def changed(self) -> bool:
        """Whether saving would change anything (and record an event)."""
        return bool(
            self.everyone_before != self.everyone_after or self.named_added or self.named_removed
        )


def review_permissions(
    tx: Repositories, *, data_source_id: str, permissions: Permissions, actor: User
) -> PermissionsReview:
    """What ``set_permissions`` with ``permissions`` would change; ``InvalidInput`` naming an
    id that is no user's."""
    ds = get_visible(tx, data_source_id=data_source_id, actor=actor)
    users = {user.id: user for user in tx.users.all()}
    unknown = [user_id for user_id in permissions.user_ids if user_id not in users]
    if unknown:
        raise InvalidInput(f"users: no user with id {unknown[0]!r}; reload the page and try again")
    # The owner is not offered in the list: their place on it (if any) is kept as it is.
    kept = (ds.owner_id,) if ds.owner_id in ds.permissions.user_ids else ()
    wanted = tuple(sorted({*kept, *(u for u in permissions.user_ids if u != ds.owner_id)}))
    asked = Permissions(is_everyone=permissions.is_everyone, user_ids=wanted)
    after = replace(ds, permissions=asked)
    people = sorted(users.values(), key=lambda user: user.username)
    before_named, after_named = set(ds.permissions.user_ids), set(wanted)
    return PermissionsReview(
        data_source=ds,
        permissions=asked,
        gains=tuple(u for u in people if can_use(after, u) and not can_use(ds, u)),
        loses=tuple(u for u in people if can_use(ds, u) and not can_use(after, u)),
        named_added=tuple(u for u in people if u.id in after_named - before_named),
        named_removed=tuple(u for u in people if u.id in before_named - after_named),
        fingerprint=permissions_fingerprint(ds),
    )


@dataclass(frozen=True, slots=True)
class TransferReview:
    """What giving ``data_source`` to ``new_owner`` would do."""

    data_source: DataSource
    previous_owner: User | None
    new_owner: User
    previous_keeps_access: bool
    """Whether the current owner may still use it afterwards (named, or everyone may)."""
    fingerprint: str


def review_transfer(
    tx: Repositories, *, data_source_id: str, new_owner_id: str, actor: User
) -> TransferReview:
    """What ``transfer_ownership`` to ``new_owner_id`` would change; ``InvalidInput`` for an
    unknown user, ``Conflict`` when they own it already."""
    ds = get_visible(tx, data_source_id=data_source_id, actor=actor)
    new_owner = tx.users.by_id(new_owner_id)
    if new_owner is None:
        raise InvalidInput("new owner: choose one of the users in the list")
    if new_owner.id == ds.owner_id:
        raise Conflict(f"new owner: {new_owner.username!r} already owns {ds.name!r}")
    previous = tx.users.by_id(ds.owner_id)
    after = replace(ds, owner_id=new_owner.id)
    return TransferReview(
        data_source=ds,
        previous_owner=previous,
        new_owner=new_owner,
        previous_keeps_access=previous is not None and can_use(after, previous),
        fingerprint=permissions_fingerprint(ds),
    )
