"""Helpers for console tests: signing in through the form, reading CSRF tokens, making events."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dstrail.audit.recorder import record_event
from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.projects import Project, Run, RunType
from dstrail.domain.trail import EventKind
from dstrail.services import datasources as ds_service
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services.credentials import CredentialVault
from tests.support import Login

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: TestClient, login: Login) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/signin")
    response = client.post(
        "/signin",
        data={"csrf_token": csrf_of(form.text), "api_key": login.api_key, "next": "/datasources"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/datasources").text)


def create_ds(
    dstrail: Dstrail,
    owner: Login,
    name: str,
    *,
    everyone: bool = False,
    users: tuple[str, ...] = (),
) -> DataSource:
    """A data source created through the service."""
    spec = ds_service.DataSourceCreate(
        name=name,
        data_source_type="S3Config",
        auth_type="AWSIAMBasic",
        credential_type=CredentialType.SHARED,
        config={"bucket": "b"},
        permissions=Permissions(is_everyone=everyone, user_ids=users),
    )
    with dstrail.store.write() as tx:
        return ds_service.create_data_source(
            tx,
            CredentialVault(dstrail.keys.encryption_key),
            spec=spec,
            actor=owner.user,
            now_ms=dstrail.clock(),
        )


def project_and_run(dstrail: Dstrail, owner: Login, name: str) -> tuple[Project, Run]:
    """A project of ``owner`` and a running workspace of theirs in it."""
    with dstrail.store.write() as tx:
        project = project_service.create_project(
            tx,
            actor=owner.user,
            name=name,
            owner=owner.user,
            collaborators=[],
            now_ms=dstrail.clock(),
        )
        run = run_service.start_run(
            tx,
            actor=owner.user,
            project=project,
            user=owner.user,
            run_type=RunType.WORKSPACE,
            now_ms=dstrail.clock(),
        )
    return project, run


def access(
    dstrail: Dstrail, ds: DataSource, who: Login, run: Run | None = None, **meta: str
) -> int:
    """An ``AccessDataSource`` event; its sequence number."""
    metadata = {"clientSource": "Python", "operation": "getDataSource", **meta}
    with dstrail.store.write() as tx:
        record_event(
            tx,
            kind=EventKind.ACCESS_DATA_SOURCE,
            data_source=ds,
            actor=who.user,
            now_ms=dstrail.clock(),
            run=run,
            metadata=metadata,
        )
    with dstrail.store.read() as tx:
        return tx.audit.size()
