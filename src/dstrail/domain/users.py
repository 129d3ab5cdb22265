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
