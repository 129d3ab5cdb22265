"""Helpers shared by tests: a settable clock, users, and API headers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.trail import EventKind, NewAuditEvent
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import datasources as ds_service
from dstrail.services import users as user_service
from dstrail.services.credentials import CredentialVault

DOMINO_SAMPLE_EVENT = orjson.loads(
    b'{"dataSourceId": "64e67c6005e8b2388f992545", "dataSourceName": "snowflake-ds", '
    b'"dataSourceType": "SnowflakeConfig", "eventKind": "DeleteDataSource", '
    b'"metadata": {"performedByUsername": "sample-admin"}, '
    b'"performedBy": "64e6363605e8b2388f9924c8", "timestamp": "2023-08-23T21:40:21.669Z"}'
)
"""The first event of the reference's unfiltered sample (reference/seed-data-source-audit.txt)."""

DOMINO_EVENT_FIELDS = frozenset(DOMINO_SAMPLE_EVENT)
"""The seven fields of an event in Domino's audit API, taken from Domino's own sample so that
tests hold the code to the contract rather than to itself."""


def new_event(timestamp_ms: int, **fields: Any) -> NewAuditEvent:
    """An event to append in a test: alice's access to ``ds`` unless ``fields`` say otherwise."""
    defaults: dict[str, Any] = {
        "event_kind": EventKind.ACCESS_DATA_SOURCE,
        "data_source_id": "d" * 24,
        "data_source_name": "ds",
        "data_source_type": "S3Config",
        "performed_by": "a" * 24,
        "performed_by_username": "alice",
    }
    return NewAuditEvent(timestamp_ms=timestamp_ms, **{**defaults, **fields})


class SettableClock:
    """A clock the test moves; starts at the real now."""

    def __init__(self, now_ms: int | None = None) -> None:
        self.now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        """Move forward and return the new now."""
        self.now_ms += ms
        return self.now_ms


@dataclass(frozen=True)
class Login:
    """A user with an API key and the headers that carry it."""

    user: User
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Domino-Api-Key": self.api_key}

    @property
    def id(self) -> str:
        return self.user.id


def make_user(dstrail: Dstrail, username: str, role: Role = Role.USER) -> Login:
    """Create a user through the service and return their login."""
    with dstrail.store.write() as tx:
        user, api_key = user_service.create_user(
            tx,
            actor=OPERATOR,
            username=username,
            email=f"{username}@example.com",
            role=role,
            now_ms=dstrail.clock(),
        )
    return Login(user=user, api_key=api_key.secret)


def audit_count(dstrail: Dstrail) -> int:
    """How many events the trail holds."""
    with dstrail.store.read() as tx:
        return tx.audit.size()


def data_source_body(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid create body."""
    body: dict[str, Any] = {
        "name": name,
        "dataSourceType": "S3Config",
        "authType": "AWSIAMBasic",
        "credentialType": "Shared",
        "config": {"bucket": "b", "region": "us-east-1"},
        "credentials": {"accessKeyID": "AKIAEXAMPLE", "secretAccessKey": "s3cr3t-value"},
        "permissions": {"isEveryone": False, "userIds": []},
    }
    body.update(overrides)
    return body


def create_dataset(
    dstrail: Dstrail,
    owner: Login,
    name: str,
    *,
    permissions: Permissions | None = None,
    config: dict[str, str] | None = None,
) -> DataSource:
    """A ``DatasetConfig`` data source of ``owner``, for everyone unless ``permissions``."""
    with dstrail.store.write() as tx:
        return ds_service.create_data_source(
            tx,
            CredentialVault(dstrail.keys.encryption_key),
            spec=ds_service.DataSourceCreate(
                name=name,
                data_source_type="DatasetConfig",
                auth_type="NoAuth",
                credential_type=CredentialType.SHARED,
                config=config or {},
                permissions=permissions or Permissions(is_everyone=True),
            ),
            actor=owner.user,
            now_ms=dstrail.clock(),
        )
