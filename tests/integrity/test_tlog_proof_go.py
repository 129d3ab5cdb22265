"""dstrail's tlog-proofs checked by an independent implementation: ``go_proof/check_proof.go``,
built on Go's ``golang.org/x/mod/sumdb/note`` and ``sumdb/tlog`` (Debian's
golang-golang-x-mod-dev, GOPATH mode, offline), with Ed25519 cosignatures v1 checked there
with ``crypto/ed25519``. It accepts an honest proof and refuses each tampered one. Without Go
the tests skip (fail under ``CI=true``)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import note
from dstrail.domain.trail.tlog_proof import parse_tlog_proof
from dstrail.settings import Settings
from tests.integrity.golang import build_go
from tests.integrity.test_tlog_proof import FakeWitness, append_events, cosign, storage
from tests.integrity.test_tlog_proof import _with as changed

CHECKER = Path(__file__).parent / "go_proof" / "check_proof.go"


@pytest.fixture(scope="session")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built once a session."""
    return build_go(CHECKER, tmp_path_factory.mktemp("go-proof"), what="the Go proof checker")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 4 events (and on the first)."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=4
    )


def test_go_checks_dstrail_tlog_proofs_and_refuses_tampered_ones(
    checker: Path, dstrail: Dstrail, tmp_path: Path
) -> None:
    append_events(dstrail, 8)
    w1, w2, w3 = (FakeWitness(f"witness{i}.test/w") for i in (1, 2, 3))
    cosign(dstrail, 8, w1, w2)
    vkey = dstrail.signer.public_key_document()["vkey"]

    def go(proof: str, *policy: str, key: str = vkey) -> tuple[int, str]:
        path = tmp_path / "candidate.tlog-proof"
        path.write_text(proof)
        result = subprocess.run(
            [str(checker), key, str(path), *policy], capture_output=True, text=True, timeout=60
        )
        return result.returncode, result.stdout.strip()

    policy = ("2", w1.vkey(), w2.vkey(), w3.vkey())
    for seq in (1, 4, 5, 8):  # by default, against the smallest cosigned checkpoint: 8
        out = tmp_path / f"{seq}.tlog-proof"
        assert main(["audit", "proof", str(seq), *storage(dstrail), "--out", str(out)]) == 0
        assert go(out.read_text(), *policy) == (0, f"OK event {seq} in tree 8, 2 cosignatures")
    for seq, size in ((1, 1), (3, 4)):  # the checkpoints of 1 and 4 were not cosigned
        out = tmp_path / f"{seq}-{size}.tlog-proof"
        asked = ["audit", "proof", str(seq), "--tree-size", str(size), "--out", str(out)]
        assert main([*asked, *storage(dstrail)]) == 0
        status, said = go(out.read_text(), *policy)
        assert status == 1 and said == "FAILED: 0 witnesses cosigned, 2 required"
        assert go(out.read_text())[0] == 0
    good = (tmp_path / "5.tlog-proof").read_text()
    parsed = parse_tlog_proof(good)
    assert parsed.extra is not None
    edited = orjson.loads(parsed.extra)
    edited["metadata"]["objectKey"] = "k/other"
    tampered = {
        "an edited event": changed(
            parsed, extra=orjson.dumps(edited, option=orjson.OPT_SORT_KEYS)
        ).encode(),
        "an edited proof line": changed(
            parsed, path=(hashlib.sha256(b"x").digest(), *parsed.path[1:])
        ).encode(),
        "a wrong index": changed(parsed, index=5).encode(),
    }
    lines = good.splitlines(keepends=True)
    forged_line = note.NoteSignature(w2.name, w2.key_id, bytes(8) + bytes(range(64))).line()
    tampered["a forged cosignature"] = "".join(
        forged_line if line.startswith(f"\u2014 {w2.name} ") else line for line in lines
    )
    why = {
        "an edited event": "FAILED: the inclusion proof",
        "an edited proof line": "FAILED: the inclusion proof",
        "a wrong index": "FAILED: the extra is event 5, the index 5",
        "a forged cosignature": f"FAILED: the cosignature of {w2.name} does not verify",
    }
    for what, proof in tampered.items():
        status, said = go(proof, *policy)
        assert status == 1 and said.startswith(why[what]), (what, said)
    # Fewer than K; another log's key.
    assert go(good, "3", w1.vkey(), w2.vkey(), w3.vkey())[0] == 1
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    status, said = go(good, key=note.verifier_of(dstrail.signer.origin, other).vkey())
    assert status == 1 and said.startswith("FAILED: the checkpoint note"), said
