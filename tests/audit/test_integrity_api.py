"""The integrity routes, checked with the independent verifier of ``test_merkle``; and export
bundles, verified with no database and failing when tampered with."""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from dstrail.cli import main
from dstrail.context import Dstrail
from dstrail.settings import Settings
from tests.audit.test_merkle import consistent, h_leaf, root_from_path
from tests.support import Login, data_source_body

BASE = "/api/datasource/v1/audit/integrity"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=4
    )


def independent_leaf(event: dict[str, Any], seq: int) -> bytes:
    """The documented canonical encoding, rebuilt with the standard library only."""
    stamp = event["timestamp"]
    seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    document = {**event, "seq": seq, "timestampMs": seconds * 1000 + int(stamp[20:23])}
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return h_leaf(encoded.encode())


def signed_message(checkpoint: dict[str, Any]) -> bytes:
    """A C2SP checkpoint's note text: origin, size, base64 root (c2sp.org/tlog-checkpoint)."""
    root = base64.b64encode(bytes.fromhex(checkpoint["rootHash"])).decode()
    return f"{checkpoint['origin']}\n{checkpoint['treeSize']}\n{root}\n".encode()


def make_events(client: TestClient, owner: Login, count: int) -> None:
    for i in range(count):
        response = client.post(
            "/api/datasource/v1/datasources",
            json=data_source_body(f"ds-{i}"),
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text


def test_proofs_verify_independently(client: TestClient, admin: Login, alice: Login) -> None:
    # Making admin and alice recorded four platform events (a user and a key each): 11 in all.
    make_events(client, alice, 7)
    key = client.get(f"{BASE}/public-key", headers=admin.headers)
    assert key.status_code == 200
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.json()["publicKey"]))
    latest = client.get(f"{BASE}/checkpoint", headers=admin.headers).json()
    assert latest["treeSize"] == 8  # every 4 events; the first one too
    for seq in (1, 5, 8):
        # Each proof is a read of its event, itself recorded: the trail (and its latest
        # checkpoint, by default the one proved against) grows as the proofs are read.
        latest = client.get(f"{BASE}/checkpoint", headers=admin.headers).json()
        public.verify(base64.b64decode(latest["signature"]), signed_message(latest))
        proof = client.get(f"{BASE}/inclusion", params={"seq": seq}, headers=admin.headers)
        assert proof.status_code == 200, proof.text
        body = proof.json()
        assert body["treeSize"] == latest["treeSize"]
        leaf = independent_leaf(body["event"], seq)
        assert leaf.hex() == body["leafHash"]
        path = [bytes.fromhex(h) for h in body["auditPath"]]
        root = bytes.fromhex(latest["rootHash"])
        assert root_from_path(leaf, seq - 1, latest["treeSize"], path) == root
    # Against a tree size without a checkpoint: the root is computed and still consistent.
    body = client.get(
        f"{BASE}/inclusion", params={"seq": 11, "treeSize": 11}, headers=admin.headers
    ).json()
    leaf = independent_leaf(body["event"], 11)
    newest = root_from_path(leaf, 10, 11, [bytes.fromhex(h) for h in body["auditPath"]])
    assert newest is not None and newest.hex() == body["rootHash"]
    first = client.get(f"{BASE}/checkpoint", params={"treeSize": 4}, headers=admin.headers).json()
    for a, b in ((4, 8), (1, 8), (4, 11), (8, 11)):
        response = client.get(
            f"{BASE}/consistency", params={"first": a, "second": b}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        c = response.json()
        proof = [bytes.fromhex(h) for h in c["proof"]]
        assert consistent(
            a, b, proof, bytes.fromhex(c["firstRootHash"]), bytes.fromhex(c["secondRootHash"])
        )
    assert c["secondRootHash"] == newest.hex()
    latest = client.get(f"{BASE}/checkpoint", headers=admin.headers).json()
    c = client.get(f"{BASE}/consistency", params={"first": 4}, headers=admin.headers).json()
    assert c["firstRootHash"] == first["rootHash"] and c["secondRootHash"] == latest["rootHash"]


def test_routes_keep_the_audit_contract(client: TestClient, admin: Login, alice: Login) -> None:
    make_events(client, alice, 2)
    assert client.get(f"{BASE}/checkpoint").status_code == 401
    forbidden = client.get(f"{BASE}/checkpoint", headers=alice.headers)
    assert forbidden.status_code == 403
    assert set(forbidden.json()) == {"requestId", "errors"}
    bad = client.get(f"{BASE}/inclusion", params={"seq": 9, "treeSize": 2}, headers=admin.headers)
    assert bad.status_code in (400, 404)
    bad = client.get(f"{BASE}/consistency", params={"first": 3, "second": 2}, headers=admin.headers)
    assert bad.status_code == 400 and "error" in bad.json()
    missing = client.get(f"{BASE}/checkpoint", params={"treeSize": 2}, headers=admin.headers)
    assert missing.status_code == 404
    # The audit API itself is untouched.
    events = client.get("/api/datasource/v1/audit/", headers=admin.headers).json()
    assert isinstance(events, list) and len(events) == 2


def test_public_key_by_cli_matches_the_route(
    client: TestClient, admin: Login, dstrail: Dstrail, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = ["--database-url", str(dstrail.settings.database_url)]
    storage += ["--data-dir", str(dstrail.settings.data_dir)]
    assert main(["audit", "public-key", *storage]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed == client.get(f"{BASE}/public-key", headers=admin.headers).json()
    assert main(["audit", "public-key", *storage, "--format", "pem"]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = Path(dstrail.settings.data_dir) / "audit-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text() not in printed["pem"]


def test_a_bundle_verifies_without_a_database(
    client: TestClient,
    alice: Login,
    dstrail: Dstrail,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_events(client, alice, 7)
    storage = ["--database-url", str(dstrail.settings.database_url)]
    storage += ["--data-dir", str(dstrail.settings.data_dir)]
    bundle_file = tmp_path / "bundle.json"
    assert (
        main(["audit", "export", *storage, "--data-source-name", "ds-5", "--out", str(bundle_file)])
        == 0
    )
    capsys.readouterr()
    bundle = orjson.loads(bundle_file.read_bytes())
    assert [e["event"]["dataSourceName"] for e in bundle["events"]] == ["ds-5"]
    assert bundle["checkpoint"]["treeSize"] >= bundle["events"][-1]["seq"]
    dstrail.store.dispose()
    # No storage options, a missing database: the bundle alone.
    nowhere = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    assert main(["audit", "verify", *nowhere, "--bundle", str(bundle_file)]) == 0
    assert "OK" in capsys.readouterr().out
    entry = bundle["events"][0]
    assert independent_leaf(entry["event"], entry["seq"]).hex() == entry["leafHash"]

    tampered = json.loads(json.dumps(bundle))
    tampered["events"][0]["event"]["metadata"]["isEveryone"] = "true"
    (tmp_path / "t1.json").write_text(json.dumps(tampered))
    assert main(["audit", "verify", "--bundle", str(tmp_path / "t1.json"), "--format", "json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert report["first"]["kind"] == "event-modified"
    assert report["firstWrongSeq"] == entry["seq"]

    tampered = json.loads(json.dumps(bundle))
    tampered["checkpoint"]["origin"] = "elsewhere.example/audit"  # signed: the note's first line
    (tmp_path / "t2.json").write_text(json.dumps(tampered))
    assert main(["audit", "verify", "--bundle", str(tmp_path / "t2.json"), "--format", "json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert report["first"]["kind"] == "checkpoint-signature-invalid"

    # A key other than the pinned one is refused even when the bundle is self-consistent.
    other = base64.b64encode(hashlib.sha256(b"not the key").digest()).decode()
    assert main(["audit", "verify", "--bundle", str(bundle_file), "--public-key", other]) == 1


def test_the_checkpoint_is_a_c2sp_signed_note_under_the_published_vkey(
    client: TestClient, admin: Login, alice: Login
) -> None:
    make_events(client, alice, 5)
    key = client.get(f"{BASE}/public-key", headers=admin.headers).json()
    response = client.get("/api/dstrail/v1/tlog/checkpoint", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    # Checked here with hashlib and cryptography only (c2sp.org/signed-note, tlog-checkpoint).
    name, hex_id, encoded = key["vkey"].split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01 and len(raw) == 33 and name == key["origin"]
    assert hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4].hex() == hex_id
    body, _, signatures = text.rpartition("\n\n")
    origin, size, root = body.split("\n")
    assert origin == name and int(size) >= 5 and len(base64.b64decode(root)) == 32
    [line] = signatures.rstrip("\n").split("\n")
    dash, signer, signature = line.split(" ")
    assert dash == "\u2014" and signer == name
    blob = base64.b64decode(signature)
    assert blob[:4].hex() == hex_id
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], (body + "\n").encode())
    latest = client.get(f"{BASE}/checkpoint", headers=admin.headers).json()
    assert latest["note"] == text and latest["origin"] == origin
    assert base64.b64decode(root).hex() == latest["rootHash"] and int(size) == latest["treeSize"]
    assert client.get("/api/dstrail/v1/tlog/checkpoint").status_code == 401
