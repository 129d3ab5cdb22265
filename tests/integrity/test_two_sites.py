"""Two dstrail sites, as real processes: site A's ``dstrail witness serve`` witnesses site B's
log, B's ``dstrail serve`` submits each new checkpoint to A, and serves it with A's
cosignature (checked with the witness double's code, not dstrail's). A refuses a forked
checkpoint signed with B's key (the same size with another root: 422; a smaller size: 409;
old above the size: 400), and a copy of B's key with another trail (a rolled-back or forked
B) is refused, and records why; A's state stays B's."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.submission import new_client, submit_to_witnesses
from dstrail.audit.tlog import checkpoint_note
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.users import OPERATOR
from dstrail.services import witnesses as witness_service
from dstrail.settings import Settings
from tests.client.conftest import free_port
from tests.conftest import PG_ADMIN_URL
from tests.integrity.test_witnessing import body
from tests.integrity.witness_double import parse_vkey, sign_checkpoint, signed_by
from tests.streaming.servers import BIN, create, environment, serve, wait_until
from tests.support import Login, audit_count, new_event

A_NAME = "a.test/witness"
A_ENVIRONMENT = {"DSTRAIL_WITNESS_NAME": A_NAME}


@pytest.fixture
def site_a(database_url: str, tmp_path: Path, pg_template: str | None) -> Iterator[list[str]]:
    """Site A's storage flags: a database of the kind B's is, and its own data directory."""
    data = ["--data-dir", str(tmp_path / "site-a")]
    if database_url.startswith("sqlite"):
        yield ["--database-url", f"sqlite:///{tmp_path / 'site-a.sqlite3'}", *data]
        return
    assert pg_template is not None
    name = f"dstrail_a_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield ["--database-url", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", *data]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dstrail_command(*args: str) -> str:
    """A ``dstrail`` command run as site A; its stdout."""
    done = subprocess.run(
        [str(BIN / "dstrail"), *args], env=environment(**A_ENVIRONMENT), capture_output=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def witness_serve(storage: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "dstrail"), "witness", "serve", "--port", str(port), "--prefix", "/witness",
         *storage],
        env=environment(**A_ENVIRONMENT), stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(lambda: _healthy(port, process, log), "the witness answers")
    return process


def _healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, log.read_text()[-2000:]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/witness/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    assert process.wait(30) == 0


def b_checkpoint(port: int, admin: Login) -> str:
    response = httpx.get(
        f"http://127.0.0.1:{port}/api/dstrail/v1/tlog/checkpoint", headers=admin.headers,
        timeout=10,
    )  # fmt: skip
    return response.text if response.status_code == 200 else ""


def test_two_sites_watch_each_other_and_a_fork_or_rollback_is_refused(
    dstrail: Dstrail, admin: Login, site_a: list[str], tmp_path: Path
) -> None:
    origin = dstrail.signer.origin
    b_key = base64.b64decode(dstrail.keys.audit_signing_key)
    a_vkey = dstrail_command("witness", "public-key", "--format", "vkey", *site_a).strip()
    dstrail_command(
        "witness", "logs", "add", origin, "--vkey", dstrail.signer.public_key_document()["vkey"],
        *site_a,
    )  # fmt: skip
    a_port, b_port = free_port(), free_port()
    a_url = f"http://127.0.0.1:{a_port}/witness"
    with dstrail.store.write() as tx:
        witness_service.add_witness(
            tx, name=A_NAME, vkey=a_vkey, url=a_url, actor=OPERATOR, now_ms=dstrail.clock()
        )
    log = tmp_path / "sites.log"
    site_a_process = witness_serve(site_a, a_port, log)
    try:
        site_b = serve(
            dstrail, b_port, log, DSTRAIL_WITNESS_SUBMIT_SECONDS="0.2",
            DSTRAIL_CHECKPOINT_EVERY_EVENTS="1",
        )  # fmt: skip
        try:
            for name in ("first", "second", "third"):
                create(b_port, admin, name)
            size = audit_count(dstrail)
            wait_until(
                lambda: (
                    b_checkpoint(b_port, admin).startswith(f"{origin}\n{size}\n")
                    and f"\u2014 {A_NAME} " in b_checkpoint(b_port, admin)
                ),
                "B serves its latest checkpoint with A's cosignature",
            )
        finally:
            stop(site_b)
        note = b_checkpoint_after(dstrail, size)
        assert signed_by(note, parse_vkey(a_vkey)) is True
        hashed = hashlib.sha256(origin.encode()).hexdigest()
        monitored = httpx.get(f"{a_url}/{hashed}/checkpoint", timeout=10)
        assert monitored.status_code == 200 and monitored.text == note

        # A fork: checkpoints signed with B's key that do not extend what A cosigned.
        key = Ed25519PrivateKey.from_private_bytes(b_key)
        other_root = hashlib.sha256(b"another trail").digest()
        forked = sign_checkpoint(key, origin, size, other_root)
        add = f"{a_url}/add-checkpoint"
        same_size = httpx.post(add, content=body(size, [], forked), timeout=10)
        assert same_size.status_code == 422, same_size.text
        smaller = sign_checkpoint(key, origin, size - 1, other_root)
        rolled_back = httpx.post(add, content=body(size - 1, [], smaller), timeout=10)
        assert (rolled_back.status_code, rolled_back.text) == (409, f"{size}\n")
        assert rolled_back.headers["content-type"] == "text/x.tlog.size"
        assert httpx.post(add, content=body(size, [], smaller), timeout=10).status_code == 400

        # A copy of B's key with another trail: shorter (rolled back), then longer (forked).
        copy = open_dstrail(
            Settings(
                data_dir=tmp_path / "copy", database_url=f"sqlite:///{tmp_path / 'copy.sqlite3'}",
                audit_signing_key=dstrail.keys.audit_signing_key,
            )
        )  # fmt: skip
        try:
            assert copy.signer.origin == origin
            with copy.store.write() as tx:
                witness_service.add_witness(
                    tx, name=A_NAME, vkey=a_vkey, url=a_url, actor=OPERATOR, now_ms=copy.clock()
                )
            errors = [submitted(copy)]
            with copy.store.write() as tx:
                for number in range(size + 3):
                    tx.audit.record(new_event(copy.clock(), data_source_name=f"fork-{number}"))
            errors.append(submitted(copy))
        finally:
            copy.store.dispose()
        assert "this trail was rolled back, or the witness saw a fork" in errors[0]
        assert f"consistency proof from size {size} to" in errors[1]
        assert "not a prefix of this trail" in errors[1]
        after = httpx.get(f"{a_url}/{hashed}/checkpoint", timeout=10)
        assert after.text == note  # A still holds B's checkpoint
    finally:
        stop(site_a_process)
    written = log.read_text()
    assert written.count(f"refused a checkpoint of {origin} (422)") == 2, written[-3000:]
    assert "Traceback" not in written, written[-3000:]


def b_checkpoint_after(dstrail: Dstrail, size: int) -> str:
    """B's latest checkpoint as its API serves it (read from its database)."""
    with dstrail.store.read() as tx:
        note = checkpoint_note(tx)
    assert note.startswith(f"{dstrail.signer.origin}\n{size}\n")
    return note


def submitted(dstrail: Dstrail) -> str:
    """Sign a checkpoint and submit it to the one witness: the error recorded."""
    checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    with new_client(timeout=10) as client:
        (result,) = submit_to_witnesses(dstrail.store, client, clock=dstrail.clock)
    assert result.outcome == "failed", result
    return result.error
