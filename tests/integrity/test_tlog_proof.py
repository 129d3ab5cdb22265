"""Offline proofs in the C2SP tlog-proof form, bundles of them, and witness policy in
``dstrail audit verify``, on both databases.

Proofs are checked three ways: by the CLI with no database, by an independent verifier in
this file written from the specifications with hashlib and cryptography only
(c2sp.org/tlog-proof, tlog-checkpoint, signed-note, tlog-cosignature, RFC 6962), and by
tampering with them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import text

from dstrail.audit.verify import FindingKind, WitnessedNote, verify_store
from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.domain.trail import CheckpointRecord, merkle, note
from dstrail.domain.trail.checkpoints import checkpoint_message
from dstrail.domain.trail.tlog_proof import TlogProof, parse_tlog_proof
from dstrail.domain.trail.trust import TrustPolicy
from dstrail.errors import InvalidInput
from dstrail.settings import Settings
from dstrail.streaming.formats import native
from tests.audit.test_integrity_tamper import attack
from tests.support import Login, new_event

BASE = "/api/datasource/v1/audit/integrity"
NOWHERE = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
"""No database: offline checks must not need one."""


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 4 events (and on the first)."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=4
    )


def append_events(dstrail: Dstrail, count: int) -> int:
    """Append ``count`` events; the trail's size after."""
    for i in range(count):
        with dstrail.store.write() as tx:
            tx.audit.append(
                new_event(
                    dstrail.clock(),
                    data_source_name=f"ds-{i}",
                    metadata={"operation": "objectKey", "objectKey": f"k/{i}", "é": "ü"},
                )
            )
    with dstrail.store.read() as tx:
        return tx.audit.size()


def storage(dstrail: Dstrail) -> list[str]:
    return [
        "--database-url",
        str(dstrail.settings.database_url),
        "--data-dir",
        str(dstrail.settings.data_dir),
    ]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI; its exit status and stdout (stderr is dropped)."""
    capsys.readouterr()
    status = main(args)
    return status, capsys.readouterr().out


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status, out = run([*args, "--format", "json"], capsys)
    return status, orjson.loads(out)


# --- a witness key (c2sp.org/tlog-cosignature, Ed25519, type 0x04): a test double ---------------


@dataclass
class FakeWitness:
    """A witness's cosigning key, as c2sp.org/tlog-cosignature specifies it (Ed25519,
    signature type 0x04, ``cosignature/v1`` messages): a test double that signs whatever it is
    handed (a real witness checks consistency first)."""

    name: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x04" + self.public).digest()[:4]

    def vkey(self) -> str:
        encoded = base64.b64encode(b"\x04" + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def cosign(self, checkpoint_text: str, timestamp: int = 1_700_000_000) -> note.NoteSignature:
        return note.sign_cosignature(
            checkpoint_text, name=self.name, key=self.public, timestamp=timestamp,
            sign=self.key.sign,
        )  # fmt: skip


def cosign(dstrail: Dstrail, tree_size: int, *witnesses: FakeWitness) -> None:
    """Store the witnesses' cosignatures of the checkpoint of ``tree_size``."""
    with dstrail.store.write() as tx:
        record = tx.integrity.checkpoint_at(tree_size)
        assert record is not None and record.origin is not None
        for witness in witnesses:
            signature = witness.cosign(record.statement().text())
            tx.transparency.add_cosignature(
                tree_size, signature, note.cosignature_timestamp(signature)
            )


def log_vkey(dstrail: Dstrail) -> str:
    return dstrail.signer.public_key_document()["vkey"]


# --- the independent verifier ------------------------------------------------------------------


def h_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def h_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def climb(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """The root an RFC 6962 audit path leads to, by the recursive definition of PATH(m, D[n])
    (section 2.1.1): the last hash of the path is the sibling of the top split."""
    if size == 1:
        assert not path, "a path longer than the tree is deep"
        return leaf
    assert path, "a path shorter than the tree is deep"
    k = 1
    while k * 2 < size:
        k *= 2
    *below, top = path
    if index < k:
        return h_node(climb(leaf, index, k, below), top)
    return h_node(top, climb(leaf, index - k, size - k, below))


def independent_check(
    proof: str, vkey: str, witnesses: tuple[FakeWitness, ...] = ()
) -> tuple[dict[str, Any], set[str], int]:
    """Verify a tlog-proof from the specifications alone; the event (the extra, parsed), the
    witnesses whose cosignature verifies, and the checkpoint's tree size. Raises on failure."""
    head, separator, signed_note = proof.partition("\n\n")
    assert separator
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("extra ") and lines[2].startswith("index ")
    extra = base64.b64decode(lines[1].removeprefix("extra "), validate=True)
    index = int(lines[2].removeprefix("index "))
    path = [base64.b64decode(line, validate=True) for line in lines[3:]]
    # signed-note: the text is everything up to the last blank line.
    body, _, signature_lines = signed_note.rpartition("\n\n")
    note_text = (body + "\n").encode()
    origin, size_line, root_line = body.split("\n")
    size, root = int(size_line), base64.b64decode(root_line)
    name, hex_id, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 0x01 and origin == name
    assert hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4].hex() == hex_id
    log_signed = False
    cosigned: set[str] = set()
    for line in signature_lines.rstrip("\n").split("\n"):
        dash, signer, encoded = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(encoded)
        if signer == name and blob[:4].hex() == hex_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], note_text)
            log_signed = True
        for witness in witnesses:
            if signer == witness.name and blob[:4] == witness.key_id:
                timestamp = int.from_bytes(blob[4:12], "big")
                message = f"cosignature/v1\ntime {timestamp}\n".encode() + note_text
                Ed25519PublicKey.from_public_bytes(witness.public).verify(blob[12:], message)
                cosigned.add(witness.name)
    assert log_signed
    # The extra is the event's canonical encoding (docs/integrity.md): sorted keys, no spaces.
    event = json.loads(extra)
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical.encode() == extra
    assert event["seq"] == index + 1
    assert climb(h_leaf(extra), index, size, path) == root
    return event, cosigned, size


# --- proofs from the API and the CLI -----------------------------------------------------------


def test_a_proof_from_the_api_and_the_cli_verifies_offline_and_independently(
    client: TestClient,
    admin: Login,
    dstrail: Dstrail,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    size = append_events(dstrail, 10)
    assert size == 12  # admin's user and key, then 10: checkpoints at 1, 4, 8, 12
    vkey = client.get(f"{BASE}/public-key", headers=admin.headers).json()["vkey"]
    assert vkey == log_vkey(dstrail)
    for seq, covering in ((1, 1), (3, 4), (4, 4), (5, 8), (12, 12)):
        response = client.get(f"{BASE}/proof", params={"seq": seq}, headers=admin.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert f"dstrail-event-{seq}.tlog-proof" in response.headers["content-disposition"]
        event, _, tree_size = independent_check(response.text, vkey)
        assert tree_size == covering  # the smallest C2SP checkpoint covering the event
        assert event["seq"] == seq
        saved = tmp_path / f"api-{seq}.tlog-proof"
        saved.write_text(response.text)
        status, report = run_json(
            ["audit", "verify", *NOWHERE, "--proof", str(saved), "--vkey", vkey], capsys
        )
        assert status == 0, report
        assert report["ok"] and report["event"]["seq"] == seq and report["treeSize"] == covering
    # The same proof from the CLI; the event as the API lists it.
    out = tmp_path / "cli.tlog-proof"
    status, printed = run(["audit", "proof", "5", *storage(dstrail), "--out", str(out)], capsys)
    assert status == 0 and orjson.loads(printed)["out"] == str(out)
    api = client.get(f"{BASE}/proof", params={"seq": 5}, headers=admin.headers).text
    assert out.read_text() == api
    status, stdout = run(["audit", "proof", "5", *storage(dstrail)], capsys)
    assert status == 0 and stdout == api
    event, _, _ = independent_check(out.read_text(), vkey)
    listed = client.get(f"{BASE}/inclusion", params={"seq": 5}, headers=admin.headers).json()
    assert {k: v for k, v in event.items() if k not in ("seq", "timestampMs")} == listed["event"]
    status, said = run(["audit", "verify", *NOWHERE, "--proof", str(out), "--vkey", vkey], capsys)
    assert status == 0
    assert "OK: the event is in the log's signed checkpoint" in said
    assert '"dataSourceName":"ds-2"' in said.split("event: ", 1)[1]
    # Against a larger checkpoint, when asked.
    response = client.get(f"{BASE}/proof", params={"seq": 3, "treeSize": 12}, headers=admin.headers)
    assert response.status_code == 200 and independent_check(response.text, vkey)[2] == 12


def test_the_proof_route_keeps_the_audit_contract(
    client: TestClient, admin: Login, alice: Login, dstrail: Dstrail
) -> None:
    size = append_events(dstrail, 5)
    assert client.get(f"{BASE}/proof", params={"seq": 1}).status_code == 401
    assert client.get(f"{BASE}/proof", params={"seq": 1}, headers=alice.headers).status_code == 403
    for params, status in (
        ({"seq": 0}, 400),
        ({"seq": "x"}, 400),
        ({}, 400),
        ({"seq": size + 5}, 404),
        ({"seq": 5, "treeSize": 4}, 400),  # the checkpoint of 4 does not cover 5
        ({"seq": 2, "treeSize": 3}, 404),  # no checkpoint of 3 events
    ):
        response = client.get(f"{BASE}/proof", params=params, headers=admin.headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/json")
    # The newest events, past the last checkpoint, are covered by none yet.
    newest = client.get(f"{BASE}/proof", params={"seq": size}, headers=admin.headers)
    assert size % 4 != 0 and newest.status_code == 404
    assert "no checkpoint covers" in newest.text


def test_tampered_proofs_fail(
    dstrail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_events(dstrail, 8)
    w1, w2, w3 = (FakeWitness(f"witness{i}.test/w") for i in (1, 2, 3))
    cosign(dstrail, 8, w1, w2)
    good_file = tmp_path / "good.tlog-proof"
    assert main(["audit", "proof", "6", *storage(dstrail), "--out", str(good_file)]) == 0
    good = good_file.read_text()
    vkey = log_vkey(dstrail)
    witnesses = ("--witness", w1.vkey(), "--witness", w2.vkey(), "--witness", w3.vkey())
    policy = [*witnesses, "--min-witnesses", "2"]
    _, cosigned, _ = independent_check(good, vkey, (w1, w2, w3))
    assert cosigned == {w1.name, w2.name}

    def check(proof: str, *extra: str) -> tuple[int, dict[str, Any]]:
        path = tmp_path / "candidate.tlog-proof"
        path.write_text(proof)
        args = ["audit", "verify", *NOWHERE, "--proof", str(path), *extra]
        return run_json(args, capsys)

    status, report = check(good, "--vkey", vkey, *policy)
    assert status == 0, report
    assert report["witnessing"].startswith(f"checkpoint 8 cosigned by {w1.name}, {w2.name}")
    # A witness key given as a file works as well.
    (tmp_path / "w1.vkey").write_text(w1.vkey() + "\n")
    assert check(good, "--vkey", vkey, "--witness", str(tmp_path / "w1.vkey"))[0] == 0

    def kinds(report: dict[str, Any]) -> set[str]:
        return {f["kind"] for f in report["findings"]}

    parsed = parse_tlog_proof(good)
    assert parsed.extra is not None
    # An edited event (the extra): still a canonical event, but not the one in the tree.
    edited = orjson.loads(parsed.extra)
    edited["dataSourceName"] = "elsewhere"
    extra = orjson.dumps(edited, option=orjson.OPT_SORT_KEYS)
    status, report = check(_with(parsed, extra=extra).encode(), "--vkey", vkey, *policy)
    assert status == 1 and kinds(report) == {FindingKind.BAD_PROOF.value}
    independent_fails(_with(parsed, extra=extra).encode(), vkey)
    # An extra that is not a dstrail event encoding at all.
    status, report = check(_with(parsed, extra=b"not json").encode(), "--vkey", vkey)
    assert status == 1 and kinds(report) == {FindingKind.MODIFIED.value}
    # An edited inclusion proof line.
    path = (hashlib.sha256(b"another node").digest(), *parsed.path[1:])
    status, report = check(_with(parsed, path=path).encode(), "--vkey", vkey, *policy)
    assert status == 1 and kinds(report) == {FindingKind.BAD_PROOF.value}
    independent_fails(_with(parsed, path=path).encode(), vkey)
    # A wrong index (the event says seq 6, the proof index 6 = seq 7).
    status, report = check(_with(parsed, index=6).encode(), "--vkey", vkey)
    assert status == 1 and report["first"]["kind"] == FindingKind.BAD_PROOF.value
    independent_fails(_with(parsed, index=6).encode(), vkey)
    # Another log's key under the same origin; and a vkey of another origin.
    other_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    impostor = note.verifier_of(dstrail.signer.origin, other_key).vkey()
    status, report = check(good, "--vkey", impostor)
    assert status == 1 and kinds(report) == {FindingKind.BAD_SIGNATURE.value}
    independent_fails(good, impostor)
    elsewhere = note.verifier_of("elsewhere.example/audit", dstrail.signer.public_raw).vkey()
    status, report = check(good, "--vkey", elsewhere)
    assert status == 1 and FindingKind.ORIGIN_MISMATCH.value in kinds(report)
    # A forged cosignature: w2's line with another signature.
    forged_line = note.NoteSignature(w2.name, w2.key_id, bytes(8) + bytes(range(64))).line()
    lines = good.splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if line.startswith(f"\u2014 {w2.name} ")]
    forged = "".join([*lines[:at], forged_line, *lines[at + 1 :]])
    status, report = check(forged, "--vkey", vkey, *policy)
    assert status == 1 and FindingKind.BAD_COSIGNATURE.value in kinds(report)
    independent_fails(forged, vkey, (w2,))
    # Fewer than K witnesses: w3 never cosigned.
    status, report = check(good, "--vkey", vkey, *witnesses, "--min-witnesses", "3")
    assert status == 1 and kinds(report) == {FindingKind.WITNESS_POLICY.value}
    status, report = check(good, "--vkey", vkey, *witnesses)  # default: all of them
    assert status == 1 and kinds(report) == {FindingKind.WITNESS_POLICY.value}
    # Without the cosigned lines, the same proof meets no witness at all.
    bare = "".join(line for line in lines if not line.startswith("\u2014 witness"))
    status, report = check(bare, "--vkey", vkey, "--witness", w1.vkey())
    assert status == 1 and kinds(report) == {FindingKind.WITNESS_POLICY.value}
    assert check(bare, "--vkey", vkey)[0] == 0


def _with(proof: TlogProof, **changes: Any) -> TlogProof:
    values = {"index": proof.index, "path": proof.path, "note": proof.note, "extra": proof.extra}
    return TlogProof(**{**values, **changes})


def independent_fails(proof: str, vkey: str, witnesses: tuple[FakeWitness, ...] = ()) -> None:
    """The independent verifier refuses it too."""
    with pytest.raises((AssertionError, InvalidSignature)):
        independent_check(proof, vkey, witnesses)


def test_bad_proof_input_is_a_usage_error(
    dstrail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_events(dstrail, 4)
    proof_file = tmp_path / "p.tlog-proof"
    assert main(["audit", "proof", "2", *storage(dstrail), "--out", str(proof_file)]) == 0
    vkey = log_vkey(dstrail)
    garbage = tmp_path / "garbage.tlog-proof"
    garbage.write_text("not a proof\n")
    witness = FakeWitness("w.test/w")
    for args in (
        ["--proof", str(proof_file)],  # no --vkey
        ["--proof", str(garbage), "--vkey", vkey],
        ["--proof", str(tmp_path / "missing"), "--vkey", vkey],
        ["--proof", str(proof_file), "--vkey", "not-a-vkey"],
        ["--proof", str(proof_file), "--vkey", vkey, "--witness", vkey],  # a log key, not 0x04
        ["--proof", str(proof_file), "--vkey", witness.vkey()],  # a witness key as the log's
        ["--proof", str(proof_file), "--vkey", vkey, "--min-witnesses", "1"],  # 1 of 0
        ["--proof", str(proof_file), "--vkey", vkey, "--witness", witness.vkey(),
         "--witness", witness.vkey()],
        ["--proof", str(proof_file), "--bundle", str(proof_file), "--vkey", vkey],
    ):  # fmt: skip
        capsys.readouterr()
        assert main(["audit", "verify", *NOWHERE, *args]) == 2, args
        error = capsys.readouterr().err
        assert error.startswith("dstrail: error: ") and "Traceback" not in error
    assert main(["audit", "proof", "0", *storage(dstrail)]) == 2
    assert main(["audit", "proof", "99", *storage(dstrail)]) == 1  # no such event


# --- bundles ----------------------------------------------------------------------------------


def test_tlog_proof_bundles_round_trip(
    dstrail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = append_events(dstrail, 9)
    witness = FakeWitness("witness.test/w1")
    out = tmp_path / "bundle.json"
    status, printed = run(
        ["audit", "export", *storage(dstrail), "--data-source-name", "ds-2",
         "--data-source-name", "ds-8", "--format", "tlog-proof", "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert status == 0
    summary = orjson.loads(printed)
    assert summary["events"] == 2 and summary["treeSize"] == size  # signed for the newest
    bundle = orjson.loads(out.read_bytes())
    assert bundle["format"] == "dstrail-tlog-proof-bundle/v1"
    assert bundle["vkey"] == log_vkey(dstrail)
    events = [independent_check(proof, bundle["vkey"])[0] for proof in bundle["proofs"]]
    assert [(e["seq"], e["dataSourceName"]) for e in events] == [(3, "ds-2"), (9, "ds-8")]
    # Offline, with the carried vkey, then pinned; then with a witness once it cosigned.
    dstrail.store.dispose()
    status, report = run_json(["audit", "verify", *NOWHERE, "--bundle", str(out)], capsys)
    assert status == 0 and report["events"] == 2 and report["checkpoints"] == 1, report
    pinned = ["--vkey", log_vkey(dstrail)]
    assert run(["audit", "verify", *NOWHERE, "--bundle", str(out), *pinned], capsys)[0] == 0
    witnessed = ["--witness", witness.vkey()]
    assert run(["audit", "verify", *NOWHERE, "--bundle", str(out), *witnessed], capsys)[0] == 1
    cosign(dstrail, size, witness)
    again = tmp_path / "again.json"
    assert main(["audit", "export", *storage(dstrail), "--data-source-name", "ds-2",
                 "--format", "tlog-proof", "--out", str(again)]) == 0  # fmt: skip
    status, report = run_json(
        ["audit", "verify", *NOWHERE, "--bundle", str(again), *pinned, *witnessed], capsys
    )
    assert status == 0 and report["witnessing"].startswith(f"checkpoint {size} cosigned by")
    # Another vkey pinned; a tampered event; an event proven twice.
    other = note.verifier_of(dstrail.signer.origin, hashlib.sha256(b"x").digest()).vkey()
    assert run(["audit", "verify", *NOWHERE, "--bundle", str(out), "--vkey", other], capsys)[0] == 1
    tampered = json.loads(out.read_text())
    tampered["proofs"][0] = tampered["proofs"][0].replace("index 2\n", "index 3\n")
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    status, report = run_json(["audit", "verify", "--bundle", str(tmp_path / "t.json")], capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.BAD_PROOF.value
    doubled = json.loads(out.read_text())
    doubled["proofs"].append(doubled["proofs"][0])
    (tmp_path / "d.json").write_text(json.dumps(doubled))
    status, report = run_json(["audit", "verify", "--bundle", str(tmp_path / "d.json")], capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.INSERTED.value
    # The JSON bundle is still the default, and still verifies.
    plain = tmp_path / "plain.json"
    assert main(["audit", "export", *storage(dstrail), "--data-source-name", "ds-2",
                 "--out", str(plain)]) == 0  # fmt: skip
    assert orjson.loads(plain.read_bytes())["format"] == "dstrail-audit-bundle/v1"
    assert run(["audit", "verify", *NOWHERE, "--bundle", str(plain)], capsys)[0] == 0
    assert run(["audit", "verify", *NOWHERE, "--bundle", str(plain), *pinned], capsys)[0] == 0
    status, _ = run(["audit", "verify", *NOWHERE, "--bundle", str(plain), *witnessed], capsys)
    assert status == 2  # a JSON bundle carries no cosignatures
    bad = ["audit", "export", *storage(dstrail), "--format", "xml", "--out", str(plain)]
    assert main(bad) == 2


# --- store verification with witnesses --------------------------------------------------------


def roll_back(dstrail: Dstrail, keep: int) -> None:
    """Cut the trail to ``keep`` events with their checkpoints and rebuild its head: all an
    operator with the database but no witness can do."""
    with dstrail.store.read() as tx:
        leaves = [row[11] for row in tx.integrity.events_after(0, limit=keep)]
    hashes: list[bytes] = []
    for index, leaf in enumerate(leaves):
        assert leaf is not None
        hashes, _ = merkle.append_leaf(hashes, index, leaf)
    frontier = merkle.pack_frontier(hashes)
    attack(
        dstrail,
        f"DELETE FROM audit_events WHERE seq > {keep}",
        f"DELETE FROM audit_checkpoints WHERE tree_size > {keep}",
        f"UPDATE audit_head SET size = {keep}, frontier = :f, checkpoint_size = {keep}",
        params={"f": frontier},
    )


def witnessed_note(dstrail: Dstrail, tree_size: int, *witnesses: FakeWitness) -> str:
    """The checkpoint of ``tree_size`` as a witness serves it: the note with its cosignature."""
    with dstrail.store.read() as tx:
        record = tx.integrity.checkpoint_at(tree_size)
    assert record is not None
    statement = record.statement().text()
    return record.note([w.cosign(statement) for w in witnesses]).encode()


def test_store_verification_applies_the_witness_policy(
    dstrail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_events(dstrail, 8)
    w1, w2 = FakeWitness("witness1.test/w"), FakeWitness("witness2.test/w")
    verify = ["audit", "verify", *storage(dstrail)]
    assert run(verify, capsys)[0] == 0  # no policy: as before
    both = ["--witness", w1.vkey(), "--witness", w2.vkey()]
    status, report = run_json([*verify, *both, "--min-witnesses", "1"], capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.WITNESS_POLICY.value
    assert report["first"]["seq"] == 8
    cosign(dstrail, 8, w1)
    status, said = run([*verify, *both, "--min-witnesses", "1"], capsys)
    assert status == 0, said
    assert f"witnesses: latest C2SP checkpoint 8 cosigned by {w1.name}; policy: 1 of 2" in said
    status, report = run_json([*verify, *both], capsys)  # all of them
    assert status == 1 and report["first"]["kind"] == FindingKind.WITNESS_POLICY.value
    # w2's cosignature, as w2 serves it, counts for the same checkpoint.
    served = tmp_path / "w2.note"
    served.write_text(witnessed_note(dstrail, 8, w2))
    status, report = run_json([*verify, *both, "--witnessed", str(served)], capsys)
    assert status == 0, report
    # A forged stored cosignature is named.
    with dstrail.store.write() as tx:
        forged = note.NoteSignature(w2.name, w2.key_id, bytes(72))
        tx.transparency.add_cosignature(8, forged, 0)
    status, report = run_json([*verify, *both, "--min-witnesses", "1"], capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.BAD_COSIGNATURE.value
    # The pinned vkey must be the trail's key and name its log.
    other = note.verifier_of(dstrail.signer.origin, hashlib.sha256(b"x").digest()).vkey()
    status, report = run_json([*verify, "--vkey", other], capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.BAD_SIGNATURE.value
    assert run([*verify, "--vkey", log_vkey(dstrail)], capsys)[0] == 0
    assert main([*verify, "--min-witnesses", "1"]) == 2  # 1 of no witnesses


def test_store_verification_reports_rollback_and_split_view(
    dstrail: Dstrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_events(dstrail, 12)
    witness = FakeWitness("witness.test/w1")
    vkey = log_vkey(dstrail)
    verify = ["audit", "verify", *storage(dstrail), "--vkey", vkey, "--witness", witness.vkey()]
    cosign(dstrail, 12, witness)
    served = tmp_path / "served-12.note"
    served.write_text(witnessed_note(dstrail, 12, witness))
    assert run([*verify, "--witnessed", str(served)], capsys)[0] == 0
    # A split view: the log signed another tree of 8 events and a witness cosigned it.
    with dstrail.store.read() as tx:
        real = tx.integrity.checkpoint_at(8)
    assert real is not None and real.origin is not None
    fork = note.Checkpoint(real.origin, 8, hashlib.sha256(b"a forked trail").digest()).text()
    forked_note = note.Note(
        fork,
        (
            note.NoteSignature(
                real.origin,
                dstrail.signer.verifier.key_id,
                dstrail.signer.sign_bytes(fork.encode()),
            ),
            witness.cosign(fork),
        ),
    ).encode()
    split = tmp_path / "fork-8.note"
    split.write_text(forked_note)
    status, report = run_json([*verify, "--witnessed", str(split)], capsys)
    assert status == 1, report
    assert report["first"]["kind"] == FindingKind.SPLIT_VIEW.value
    assert str(split) in report["first"]["message"] and witness.name in report["first"]["message"]
    # The same without a witness key: the log's own signature is evidence enough.
    bare = ["audit", "verify", *storage(dstrail), "--witnessed", str(split)]
    status, report = run_json(bare, capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.SPLIT_VIEW.value
    # A rollback: the trail cut to 8 events, its later checkpoints removed with it. The store
    # is consistent with itself; the witness's checkpoint of 12 is not.
    roll_back(dstrail, 8)
    assert run(["audit", "verify", *storage(dstrail)], capsys)[0] == 0
    status, report = run_json([*verify, "--witnessed", str(served)], capsys)
    assert status == 1, report
    assert (report["first"]["kind"], report["first"]["seq"]) == (FindingKind.ROLLBACK.value, 9)
    # A note not signed by the log is named, and is no claim; one of another log is refused.
    unsigned = tmp_path / "unsigned.note"
    unsigned.write_text(note.Note(fork, (witness.cosign(fork),)).encode())
    status, report = run_json(["audit", "verify", *storage(dstrail), "--vkey", vkey,
                               "--witnessed", str(unsigned)], capsys)  # fmt: skip
    assert status == 1
    assert {f["kind"] for f in report["findings"]} == {FindingKind.BAD_SIGNATURE.value}
    elsewhere = tmp_path / "elsewhere.note"
    elsewhere.write_text(served.read_text().replace(real.origin, "elsewhere.example/log"))
    assert main([*verify, "--witnessed", str(elsewhere)]) == 2
    assert main([*verify, "--witnessed", str(tmp_path / "missing.note")]) == 2


def test_rollback_and_split_view_in_the_library(dstrail: Dstrail) -> None:
    """``verify_store`` itself, without the CLI: a witnessed note larger than the trail."""
    append_events(dstrail, 4)
    witness = FakeWitness("witness.test/w1")
    served = witnessed_note(dstrail, 4, witness)
    trust = TrustPolicy.of(dstrail.signer.verifier, [note.parse_vkey(witness.vkey())], 1)
    cosign(dstrail, 4, witness)
    report = verify_store(
        dstrail.store,
        public_key=dstrail.signer.public_raw,
        trust=trust,
        witnessed=[WitnessedNote("w1", served)],
    )
    assert report.ok, report.text()
    roll_back(dstrail, 1)
    report = verify_store(
        dstrail.store,
        public_key=dstrail.signer.public_raw,
        trust=trust,
        witnessed=[WitnessedNote("w1", served)],
    )
    kinds = {f.kind for f in report.findings}
    assert FindingKind.ROLLBACK in kinds, report.text()


# --- checkpoints of the former form -----------------------------------------------------------


def former_checkpoint(dstrail: Dstrail, tree_size: int) -> None:
    """A checkpoint as dstrail signed them before C2SP (origin NULL, its own message)."""
    with dstrail.store.read() as tx:
        root = tx.integrity.root(tree_size)
    timestamp = dstrail.clock()
    signature = dstrail.signer.sign_bytes(checkpoint_message(tree_size, root, timestamp))
    key_id = hashlib.sha256(dstrail.signer.public_raw).hexdigest()[:16]
    with dstrail.store.engine.connect() as connection, connection.begin():
        connection.execute(
            text(
                "INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ms, key_id, "
                "signature, origin) VALUES (:n, :r, :t, :k, :s, NULL)"
            ),
            {"n": tree_size, "r": root, "t": timestamp, "k": key_id, "s": signature},
        )


def test_former_form_checkpoints_still_verify_and_get_no_tlog_proof(
    client: TestClient,
    admin: Login,
    dstrail: Dstrail,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    size = append_events(dstrail, 4)
    assert size == 6  # C2SP checkpoints at 1 and 4
    former_checkpoint(dstrail, 6)
    with dstrail.store.read() as tx:
        record = tx.integrity.checkpoint_at(6)
    assert record is not None and record.origin is None and record.message.startswith(b"dstrail")
    verify = ["audit", "verify", *storage(dstrail)]
    status, report = run_json(verify, capsys)
    assert status == 0 and report["checkpoints"] == 3, report
    pinned = [*verify, "--vkey", log_vkey(dstrail)]
    assert run(pinned, capsys)[0] == 0
    # Only the former checkpoint covers events 5 and 6: no tlog-proof for them yet.
    response = client.get(f"{BASE}/proof", params={"seq": 5}, headers=admin.headers)
    assert response.status_code == 404 and "former form" in response.text
    response = client.get(f"{BASE}/proof", params={"seq": 2, "treeSize": 6}, headers=admin.headers)
    assert response.status_code == 404 and "former form" in response.text
    assert main(["audit", "proof", "5", *storage(dstrail)]) == 1
    assert "no C2SP checkpoint covers seq 5" in capsys.readouterr().err
    # Events before it are proven against the C2SP checkpoint of 4.
    response = client.get(f"{BASE}/proof", params={"seq": 2}, headers=admin.headers)
    assert (
        response.status_code == 200 and independent_check(response.text, log_vkey(dstrail))[2] == 4
    )
    # A tampered former checkpoint is still caught.
    attack(dstrail, "UPDATE audit_checkpoints SET root_hash = :r WHERE tree_size = 6",
           params={"r": hashlib.sha256(b"x").digest()})  # fmt: skip
    status, report = run_json(verify, capsys)
    assert status == 1 and report["first"]["kind"] == FindingKind.BAD_SIGNATURE.value
    # Once the trail grows, a C2SP checkpoint covers event 5.
    append_events(dstrail, 2)
    with dstrail.store.write() as tx:
        tx.integrity.checkpoint(now_ms=dstrail.clock())
    response = client.get(f"{BASE}/proof", params={"seq": 5}, headers=admin.headers)
    assert (
        response.status_code == 200 and independent_check(response.text, log_vkey(dstrail))[2] == 8
    )


# --- the format itself, and streamed records --------------------------------------------------


def test_the_text_format_round_trips_and_refuses_what_it_is_not() -> None:
    proof = TlogProof(
        index=5,
        path=(bytes(32), bytes(range(32))),
        note="example.com/log\n7\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 x AAAA\n",
        extra=b'{"a":1}',
    )
    assert parse_tlog_proof(proof.encode()) == proof
    lines = proof.encode().split("\n")
    assert lines[:3] == ["c2sp.org/tlog-proof@v1", "extra eyJhIjoxfQ==", "index 5"]
    no_extra = TlogProof(index=0, path=(), note=proof.note)
    assert no_extra.encode().startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    assert parse_tlog_proof(no_extra.encode()) == no_extra
    for bad in (
        proof.encode().replace("tlog-proof@v1", "tlog-proof@v2"),
        proof.encode().replace("index 5", "index 05"),
        proof.encode().replace("index 5", "index \u0665"),
        proof.encode().replace("index 5", "index -5"),
        proof.encode().replace("extra eyJhIjoxfQ==", "extra !!"),
        proof.encode().replace("\n\n", "\n"),
        proof.encode().replace(base64.b64encode(bytes(32)).decode() + "\nAAEC", "AAAA\nAAEC", 1),
    ):
        with pytest.raises(InvalidInput):
            parse_tlog_proof(bad)


def test_streamed_native_records_name_the_checkpoint_origin(dstrail: Dstrail) -> None:
    append_events(dstrail, 4)
    with dstrail.store.read() as tx:
        rows = tx.integrity.events_after(0, limit=4)
        c2sp = tx.integrity.checkpoint_at(4)
    assert c2sp is not None and c2sp.origin == dstrail.signer.origin
    [record] = [orjson.loads(r.body) for r in native.encode(rows[:1], c2sp)]
    assert record["checkpoint"] == {
        "treeSize": 4, "rootHash": c2sp.root_hash.hex(), "origin": dstrail.signer.origin,
    }  # fmt: skip
    former = CheckpointRecord(4, c2sp.root_hash, 0, "00" * 8, bytes(64), origin=None)
    [record] = [orjson.loads(r.body) for r in native.encode(rows[:1], former)]
    assert record["checkpoint"] == {"treeSize": 4, "rootHash": c2sp.root_hash.hex()}
