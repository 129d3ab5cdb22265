"""Users and their roles."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a user may do beyond their own data sources."""

    SYS_ADMIN = "SysAdmin"
    AUDITOR = "Auditor"
    USER = "User"


@dataclass(frozen=True, slots=True)
class User:
    """A person or service account known to dstrail."""

    id: str
    username: str
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """SysAdmins manage every data source."""
        return self.role is Role.SYS_ADMIN

    @property
    def can_read_audit(self) -> bool:
        """SysAdmins and Auditors read the trail."""
        return self.role in (Role.SYS_ADMIN, Role.AUDITOR)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is known of an API key besides its secret: it is stored only as a hash."""

    id: str
    label: str
    created_ms: int
    revoked_ms: int | None

    @property
    def is_live(self) -> bool:
        """Whether the key still authenticates."""
        return self.revoked_ms is None


OPERATOR = User(id="0" * 24, username="operator", email="", role=Role.SYS_ADMIN)
"""Who the trail names for changes made with the operator CLI, which signs in as nobody: the
person holding the data directory (or the database URL) acts with SysAdmin rights."""
