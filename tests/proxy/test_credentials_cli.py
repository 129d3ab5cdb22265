"""``dstrail datasources credentials set``: who may set what, and secrets never printed."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.datasources import CredentialType, Permissions
from dstrail.services import datasources as ds_service
from dstrail.services.credentials import CredentialVault, credentials_for
from tests.support import Login


def _create(dstrail: Dstrail, owner: Login, name: str, kind: CredentialType, bob: Login) -> str:
    spec = ds_service.DataSourceCreate(
        name=name,
        data_source_type="PostgreSQLConfig",
        auth_type="Basic",
        credential_type=kind,
        config={"host": "127.0.0.1"},
        permissions=Permissions(is_everyone=False, user_ids=(bob.id,)),
    )
    vault = CredentialVault(dstrail.keys.encryption_key)
    with dstrail.store.write() as tx:
        return ds_service.create_data_source(
            tx, vault, spec=spec, actor=owner.user, now_ms=dstrail.clock()
        ).id


def _run(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    storage = [
        "--database-url", dstrail.settings.database_url or "",
        "--data-dir", str(dstrail.settings.data_dir),
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["datasources", "credentials", "set", *args, *storage])
    out, err = capsys.readouterr()
    return code, out, err


def _stored(dstrail: Dstrail, ds_id: str, user: Login) -> dict[str, str] | None:
    with dstrail.store.read() as tx:
        ds = tx.data_sources.by_id(ds_id)
        assert ds is not None
        vault = CredentialVault(dstrail.keys.encryption_key)
        return credentials_for(tx, vault, data_source=ds, user=user.user)


def test_shared_and_individual_credentials(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], alice: Login, bob: Login
) -> None:
    shared = _create(dstrail, alice, "shared-pg", CredentialType.SHARED, bob)
    code, out, _ = _run(dstrail, capsys, "shared-pg", "--field", "username=svc", "--field", "password",
                        stdin="s3cret-shared\n")  # fmt: skip
    assert code == 0
    summary: dict[str, Any] = json.loads(out)
    assert summary == {
        "name": "shared-pg", "dataSourceId": shared, "credentialType": "Shared",
        "fields": ["password", "username"],
    }  # fmt: skip
    assert "s3cret" not in out
    assert _stored(dstrail, shared, bob) == {"username": "svc", "password": "s3cret-shared"}

    individual = _create(dstrail, alice, "own-pg", CredentialType.INDIVIDUAL, bob)
    code, _, err = _run(dstrail, capsys, "own-pg", "--field", "username=bob")
    assert code == 2
    assert "--user" in err
    code, out, _ = _run(dstrail, capsys, "own-pg", "--user", "bob", "--field", "password=pw-bob")
    assert code == 0
    assert json.loads(out)["userId"] == bob.id
    assert _stored(dstrail, individual, bob) == {"password": "pw-bob"}
    assert _stored(dstrail, individual, alice) is None


def test_refused_when_the_user_may_not_use_it(
    dstrail: Dstrail, capsys: pytest.CaptureFixture[str], alice: Login, bob: Login
) -> None:
    _create(dstrail, alice, "pg", CredentialType.INDIVIDUAL, alice)
    code, out, err = _run(dstrail, capsys, "pg", "--user", "bob", "--field", "password=x")
    assert code == 1  # the user exists but may not: a domain error
    assert out == ""
    assert "may not use data source 'pg'" in err
    code, _, err = _run(dstrail, capsys, "nope", "--user", "bob", "--field", "password=x")
    assert code == 1
    assert "no data source named 'nope'" in err
