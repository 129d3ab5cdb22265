"""dstrail checked by an independent implementation: ``tests/integrity/go/verifier.go``, built on
Go's own ``golang.org/x/mod/sumdb/note`` and ``sumdb/tlog`` (Debian's golang-golang-x-mod-dev,
GOPATH mode, offline), against a real ``dstrail serve`` on both databases. It passes on an
honest trail and fails, naming the check, on each way of tampering with the database behind
dstrail's back. Without Go the tests skip (fail under ``CI=true``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dstrail.audit import tlog
from dstrail.audit.checkpoints import checkpoint_now
from dstrail.context import Dstrail
from dstrail.domain.trail import note
from dstrail.settings import Settings
from tests.audit.test_integrity_tamper import attack
from tests.client.conftest import free_port
from tests.integrity.golang import build_go, go_environment
from tests.integrity.trails import event_rows, record_events, rewrite
from tests.streaming.servers import serve
from tests.support import Login

VERIFIER = Path(__file__).parent / "go" / "verifier.go"
EVENTS = 600
SERVE_SETTINGS = {
    # no checkpoint signed by the server's ticker while a test runs (it would sign tampering)
    "DSTRAIL_CHECKPOINT_EVERY_SECONDS": "3600",
    "DSTRAIL_STREAM_WORKERS": "off",
}


@pytest.fixture(scope="session")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The verifier, built once a session."""
    return build_go(VERIFIER, tmp_path_factory.mktemp("go"), what="the Go verifier")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 250 events: sizes 1, 250 and 500 of a trail of about 600."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=250
    )


@pytest.fixture
def size(dstrail: Dstrail, admin: Login) -> int:
    """The admin's own events, then ``EVENTS`` more: events past the last checkpoint (500)."""
    return record_events(dstrail, EVENTS)


@dataclass
class Run:
    returncode: int
    out: str

    @property
    def failed_check(self) -> str | None:
        """The check its FAIL line names."""
        lines = [line for line in self.out.splitlines() if line.startswith("FAIL ")]
        return lines[0].removeprefix("FAIL ").split(":")[0] if lines else None


Verify = Callable[..., Run]


@pytest.fixture
def verify(verifier: Path, dstrail: Dstrail, admin: Login, tmp_path: Path) -> Iterator[Verify]:
    """Runs the verifier against ``dstrail serve`` over the test's database (started at the
    first run, once the test has tampered with it), with the admin's key unless told."""
    servers: list[tuple[int, subprocess.Popen[bytes]]] = []

    def run(*flags: str, api_key: str | None = admin.api_key, **settings: str) -> Run:
        if not servers:
            port = free_port()
            process = serve(dstrail, port, tmp_path / "serve.log", **SERVE_SETTINGS, **settings)
            servers.append((port, process))
        port = servers[0][0]
        env = {k: v for k, v in os.environ.items() if k != "DSTRAIL_API_KEY"}
        if api_key is not None:
            env["DSTRAIL_API_KEY"] = api_key
        result = subprocess.run(
            [str(verifier), "-url", f"http://127.0.0.1:{port}/api/dstrail/v1/tlog",
             "-vkey", dstrail.signer.verifier.vkey(), "-seed", "7", *flags],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert not result.stderr, result.stderr
        return Run(result.returncode, result.stdout)

    yield run
    for _, process in servers:
        process.terminate()
        process.wait(timeout=30)


def saved_checkpoint(dstrail: Dstrail, path: Path) -> Path:
    """The checkpoint note the log serves now, kept as an auditor would (``-old``)."""
    with dstrail.store.read() as tx:
        path.write_text(tlog.checkpoint_note(tx))
    return path


def assert_verified(run: Run) -> None:
    assert run.returncode == 0, run.out
    assert run.out.rstrip().endswith("verified"), run.out


def assert_fails(run: Run, check: str) -> None:
    assert run.returncode == 1, run.out
    assert run.failed_check == check, run.out


# An honest trail ----------------------------------------------------------------------------


def test_an_honest_trail_verifies(verify: Verify, size: int) -> None:
    run = verify("-all", "-sample", "32")
    assert_verified(run)
    lines = run.out.splitlines()
    assert lines[0].startswith("checkpoint: dstrail.local/audit, 500 events, root ")
    assert "ok   signature: the checkpoint is signed by dstrail.local/audit+" in run.out
    assert "ok   root: recomputed from" in run.out
    assert "ok   entries: all 500 entries hash to their authenticated leaves" in run.out
    assert "ok   inclusion: 32 events" in run.out


def test_a_grown_trail_extends_a_saved_checkpoint(
    verify: Verify, dstrail: Dstrail, size: int, tmp_path: Path
) -> None:
    old = saved_checkpoint(dstrail, tmp_path / "old.checkpoint")
    record_events(dstrail, 300)
    checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    run = verify("-old", str(old), "-save", str(tmp_path / "new.checkpoint"))
    assert_verified(run)
    assert (
        f"ok   consistency: the tree of {size + 300} events extends the old checkpoint of 500"
        in (run.out)
    )
    assert (
        (tmp_path / "new.checkpoint").read_text().startswith(f"dstrail.local/audit\n{size + 300}\n")
    )
    # the same checkpoint, old and new
    assert_verified(verify("-old", str(tmp_path / "new.checkpoint")))


def test_a_wrong_vkey_fails_the_signature(verify: Verify, dstrail: Dstrail, size: int) -> None:
    """A key of the log's name that did not sign it (``note.Open`` finds no known signer)."""
    other = note.verifier_of("dstrail.local/audit", os.urandom(32)).vkey()
    run = verify("-vkey", other)  # the last -vkey flag wins
    assert_fails(run, "signature")
    assert "does not verify with the vkey" in run.out


def test_with_tlog_public_tiles_need_no_key_but_entries_do(verify: Verify, size: int) -> None:
    assert_verified(verify("-sample", "0", api_key=None, DSTRAIL_TLOG_PUBLIC="true"))
    run = verify("-sample", "4", api_key=None)
    assert_fails(run, "inclusion")
    assert "HTTP 401" in run.out


def test_without_tlog_public_a_key_is_needed(verify: Verify, size: int) -> None:
    run = verify("-sample", "0", api_key=None)
    assert_fails(run, "checkpoint")
    assert "HTTP 401" in run.out


# Tampering behind dstrail's back ---------------------------------------------------------------


def test_an_edited_event_fails_its_entry(verify: Verify, dstrail: Dstrail, size: int) -> None:
    attack(dstrail, "UPDATE audit_events SET data_source_name = 'innocent' WHERE seq = 17")
    run = verify("-all")
    assert_fails(run, "entries")
    assert "(event seq 17) does not hash to its leaf" in run.out


def test_an_edited_event_fails_its_inclusion_proof(
    verify: Verify, dstrail: Dstrail, size: int
) -> None:
    """Without ``-all``: the random sample always holds the first and the last event."""
    attack(dstrail, "UPDATE audit_events SET data_source_name = 'innocent' WHERE seq = 1")
    run = verify("-sample", "2")
    assert_fails(run, "inclusion")
    assert "event seq 1 " in run.out


def test_an_edited_event_with_every_hash_recomputed_fails_the_root(
    verify: Verify, dstrail: Dstrail, size: int
) -> None:
    rows = event_rows(dstrail)
    rows[16]["data_source_name"] = "innocent"
    rewrite(dstrail, rows)
    assert_fails(verify("-all"), "root")


def test_a_deleted_event_fails_the_root(verify: Verify, dstrail: Dstrail, size: int) -> None:
    rows = event_rows(dstrail)
    del rows[16]
    rewrite(dstrail, rows)
    assert_fails(verify(), "root")


def test_an_inserted_event_fails_the_root(verify: Verify, dstrail: Dstrail, size: int) -> None:
    rows = event_rows(dstrail)
    rows.insert(16, {**rows[16], "data_source_name": "forged", "performed_by_username": "mallory"})
    rewrite(dstrail, rows)
    assert_fails(verify(), "root")


def test_swapped_events_fail_the_root(verify: Verify, dstrail: Dstrail, size: int) -> None:
    rows = event_rows(dstrail)
    rows[11], rows[22] = rows[22], rows[11]
    rewrite(dstrail, rows)
    assert_fails(verify(), "root")


def test_a_cut_tail_fails_consistency_with_a_saved_checkpoint(
    verify: Verify, dstrail: Dstrail, size: int, tmp_path: Path
) -> None:
    """Events past 300 and their checkpoints removed, the head rewound: the log left is
    consistent with itself, so only a checkpoint kept elsewhere shows the rollback."""
    old = saved_checkpoint(dstrail, tmp_path / "old.checkpoint")
    rewrite(dstrail, event_rows(dstrail)[:300], checkpoint_size=250)
    attack(dstrail, "DELETE FROM audit_checkpoints WHERE tree_size > 300")
    assert_verified(verify("-all"))
    run = verify("-old", str(old))
    assert_fails(run, "consistency")
    assert "rollback" in run.out


def test_a_forked_trail_fails_consistency_with_a_saved_checkpoint(
    verify: Verify, dstrail: Dstrail, size: int, tmp_path: Path
) -> None:
    """The operator, who has the signing key, rewrites event 17 and signs the new trail: a
    valid checkpoint of other events, which no saved checkpoint's tree is a prefix of."""
    old = saved_checkpoint(dstrail, tmp_path / "old.checkpoint")
    rows = event_rows(dstrail)
    rows[16]["data_source_name"] = "innocent"
    rewrite(dstrail, rows, checkpoint_size=0)
    attack(dstrail, "DELETE FROM audit_checkpoints")
    forked = checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    assert forked.tree_size == size
    assert_verified(verify("-all"))
    run = verify("-old", str(old))
    assert_fails(run, "consistency")
    assert "does not extend the old checkpoint of 500 events" in run.out


def test_the_verifier_is_gofmt_formatted_and_vet_clean(verifier: Path) -> None:
    env = go_environment(verifier.parent / "cache")
    gofmt = subprocess.run(["gofmt", "-l", str(VERIFIER)], capture_output=True, text=True, env=env)
    assert gofmt.returncode == 0 and gofmt.stdout == "", gofmt.stdout + gofmt.stderr
    vet = subprocess.run(
        ["go", "vet", str(VERIFIER)], capture_output=True, text=True, env=env, timeout=300
    )
    assert vet.returncode == 0, vet.stderr
