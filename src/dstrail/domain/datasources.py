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

CONFIG_OVERWRITES: dict[str, frozenset[str]] = {
    data_source_type: frozenset(keys)
    for data_source_type, keys in {
        "ADLSConfig": ("bucket",),
        "AzureBlobStorageConfig": ("bucket",),
        "BigQueryConfig": ("project", "datetimePrecision"),
        "ClickHouseConfig": ("datetimePrecision",),
        "DatabricksConfig": ("datetimePrecision", "catalog", "schema"),
        "DatasetConfig": ("snapshotID", "subfolder"),
        "DB2Config": ("datetimePrecision",),
        "DB2NativeConfig": ("database", "datetimePrecision"),
        "DruidConfig": ("datetimePrecision",),
        "GCSConfig": ("bucket",),
        "GenericJDBCConfig": ("datetimePrecision",),
        "GenericS3Config": ("bucket", "subfolder", "host", "region"),
        "GreenplumConfig": ("datetimePrecision",),
        "IgniteConfig": ("datetimePrecision",),
        "MariaDBConfig": ("datetimePrecision",),
        "MongoDBConfig": ("datetimePrecision",),
        "MySQLConfig": ("database", "datetimePrecision", "region"),
        "NetAppVolumeConfig": ("snapshotVersion", "subfolder"),
        "NetezzaConfig": ("datetimePrecision",),
        "OracleConfig": ("database", "datetimePrecision"),
        "PalantirConfig": ("datetimePrecision",),
        "PostgreSQLConfig": ("database", "datetimePrecision", "region"),
        "RedshiftConfig": ("database", "datetimePrecision", "region"),
        "S3Config": ("bucket", "subfolder", "region"),
        "SAPHanaConfig": ("datetimePrecision",),
        "SingleStoreConfig": ("datetimePrecision",),
        "SnowflakeConfig": ("datetimePrecision", "database", "role", "schema", "warehouse"),
        "SQLServerConfig": ("database", "datetimePrecision"),
        "SynapseConfig": ("datetimePrecision",),
        "TabularS3GlueConfig": ("database", "datetimePrecision", "region"),
        "TeradataConfig": ("datetimePrecision",),
        "TrinoConfig": ("catalog", "datetimePrecision", "schema"),
        "VerticaConfig": ("datetimePrecision",),
    }.items()
}
"""The config keys a caller may overwrite per call, by type: those of the client's config
classes (``domino_data.configuration_gen``), as Domino accepts them."""

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
class ProjectLink:
    """A data source's place in one project: who added it and when, and its last use there."""

    project_id: str
    added_by: str
    added_at_ms: int
    last_accessed_ms: int
    """The last granted access from a run of the project; 0 for never."""


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
    project_links: tuple[ProjectLink, ...]
    """Its place in each project it is in, by project id."""
    status: Status
    added_by: str
    created_at_ms: int
    last_updated_ms: int
    last_updated_by: str
    config_overwrites_allowed: bool = True
    """Whether calls may overwrite config keys (``CONFIG_OVERWRITES``); the owner or a SysAdmin
    turns it off. On by default, as on Domino."""

    @property
    def project_ids(self) -> tuple[str, ...]:
        """The projects it is in, sorted."""
        return tuple(link.project_id for link in self.project_links)

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
