"""Data sources: types, auth, credentials, permissions, and who may do what with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dstrail.domain.users import User

DATA_SOURCE_TYPES: frozenset[str] = frozenset(
    [
        "ADLSConfig",
        "AzureBlobStorageConfig",
        "BigQueryConfig",
        "ClickHouseConfig",
        "DatabricksConfig",
        "DatasetConfig",
        "DB2Config",
        "DB2NativeConfig",
        "DruidConfig",
        "GCSConfig",
        "GenericJDBCConfig",
        "GenericS3Config",
        "GreenplumConfig",
        "IgniteConfig",
        "MariaDBConfig",
        "MongoDBConfig",
        "MySQLConfig",
        "NetAppVolumeConfig",
        "NetezzaConfig",
        "OracleConfig",
        "PalantirConfig",
        "PostgreSQLConfig",
        "RedshiftConfig",
        "S3Config",
        "SAPHanaConfig",
        "SingleStoreConfig",
        "SnowflakeConfig",
        "SQLServerConfig",
        "SynapseConfig",
        "TabularS3GlueConfig",
        "TeradataConfig",
        "TrinoConfig",
        "VerticaConfig",
    ]
)
"""``DatasourceDtoDataSourceType`` of the dominodatalab-data client."""

AUTH_TYPES: frozenset[str] = frozenset(
    [
        "AWSIAMBasic",
        "AWSIAMBasicNoOverride",
        "AWSIAMRole",
        "AWSIAMRoleWithUsername",
        "AzureBasic",
        "Basic",
        "CertAuth",
        "ClientIdSecret",
        "CustomDSN",
        "GCPBasic",
        "KeyPair",
        "NoAuth",
        "OAuth",
        "OAuthToken",
        "PersonalToken",
    ]
)
"""``DatasourceDtoAuthType`` of the dominodatalab-data client."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
NAME_RULE = "1-128 letters, digits, '-', '_' or '.', starting with a letter or digit"


class CredentialType(StrEnum):
    """Whose credentials the data path uses."""

    INDIVIDUAL = "Individual"
    SHARED = "Shared"


class Status(StrEnum):
    """Deletion is soft."""

    ACTIVE = "Active"
    DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class Permissions:
    """Who may use a data source besides its owner."""

    is_everyone: bool
    user_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class DataSource:
    """A managed data source as stored (credentials are kept apart)."""

    id: str
    name: str
    display_name: str
    description: str
    data_source_type: str
    auth_type: str
    credential_type: CredentialType
    config: dict[str, str]
    owner_id: str
    permissions: Permissions
    project_ids: tuple[str, ...]
    status: Status
    added_by: str
    created_at_ms: int
    last_updated_ms: int
    last_updated_by: str

    @property
    def is_active(self) -> bool:
        """Not deleted."""
        return self.status is Status.ACTIVE


def can_use(data_source: DataSource, user: User) -> bool:
    """Owner, listed user, or a data source for everyone."""
    return (
        data_source.owner_id == user.id
        or data_source.permissions.is_everyone
        or user.id in data_source.permissions.user_ids
    )


def can_manage(data_source: DataSource, user: User) -> bool:
    """The owner or a SysAdmin edits, transfers and deletes."""
    return data_source.owner_id == user.id or user.is_admin


def can_see(data_source: DataSource, user: User) -> bool:
    """SysAdmins and (read-only) Auditors see all; others see what they may use."""
    return user.can_read_audit or can_use(data_source, user)
