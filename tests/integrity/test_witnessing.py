"""dstrail as a C2SP witness (``dstrail witness serve``'s app), held to c2sp.org/tlog-witness
case by case: a log of the test's own (its key, and its tree built with the RFC 6962 code of
``witness_double``, not dstrail's) submits checkpoints; the cosignatures are checked with the
double's code. The check and the update are atomic: concurrent submissions never roll the
state back."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from dstrail.api.witness import create_witness_app
from dstrail.audit import witnessing
from dstrail.audit.witnessing import WitnessSigner
from dstrail.context import Dstrail
from dstrail.errors import InvalidInput
from tests.integrity.witness_double import (
    DASH,
    EMPTY_ROOT,
    consistency_proof,
    leaf,
    parse_vkey,
    raw_public,
    sign_checkpoint,
    signed_by,
    tree_hash,
    vkey_of,
)

ORIGIN = "log.test/audit"
WITNESS = "a.test/witness"
LEAVES = [leaf(f"event {number}".encode()) for number in range(40)]
FORKED = [leaf(f"forked {number}".encode()) for number in range(40)]


@dataclass
class Log:
    """A log of the test's own: its key, and checkpoints of its first ``size`` leaves."""

    key: Ed25519PrivateKey

    @property
    def vkey(self) -> str:
        return vkey_of(ORIGIN, 0x01, raw_public(self.key))

    def checkpoint(self, size: int, leaves: Sequence[bytes] = LEAVES) -> str:
        return sign_checkpoint(self.key, ORIGIN, size, tree_hash(leaves[:size]))


@dataclass
class Witness:
    client: TestClient
    signer: WitnessSigner
    log: Log

    def post(self, old: int, proof: Sequence[bytes], note: str) -> tuple[int, str, str]:
        response = self.client.post("/w/add-checkpoint", content=body(old, proof, note))
        return response.status_code, response.headers["content-type"], response.text

    def add(self, old: int, size: int, leaves: Sequence[bytes] = LEAVES) -> tuple[int, str]:
        """Submit the log's checkpoint of ``size`` with the proof from ``old``."""
        proof = consistency_proof(old, leaves[:size])
        status, _, text = self.post(old, proof, self.log.checkpoint(size, leaves))
        return status, text

    def latest(self) -> tuple[int, str]:
        response = self.client.get(f"/w/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint")
        return response.status_code, response.text


def body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(hash_).decode() + "\n" for hash_ in proof)
    return f"old {old}\n{lines}\n{note}".encode()


@pytest.fixture
def witness(dstrail: Dstrail) -> Iterator[Witness]:
    """Instance A, witnessing the test's log under the prefix ``/w``."""
    log = Log(Ed25519PrivateKey.generate())
    with dstrail.store.write() as tx:
        witnessing.add_witnessed_log(tx, origin=ORIGIN, vkey=log.vkey)
    signer = WitnessSigner(Ed25519PrivateKey.generate(), name=WITNESS)
    with TestClient(create_witness_app(dstrail, signer, prefix="/w")) as client:
        yield Witness(client, signer, log)


def cosigned_size(dstrail: Dstrail) -> int:
    with dstrail.store.read() as tx:
        (log,) = witnessing.witnessed_logs(tx)
    return log.tree_size


def test_it_cosigns_checkpoints_that_extend_the_last_and_serves_the_latest(
    witness: Witness,
) -> None:
    assert witness.latest()[0] == 404
    status, text = witness.add(0, 5)
    assert status == 200
    assert text.startswith(f"{DASH} {WITNESS} ") and text.count("\n") == 1
    cosigner = parse_vkey(witness.signer.vkey())
    assert cosigner.kind == 0x04
    assert signed_by(witness.log.checkpoint(5) + text, cosigner) is True
    status, latest = witness.latest()
    assert status == 200 and latest.startswith(f"{ORIGIN}\n5\n")
    assert signed_by(latest, parse_vkey(witness.log.vkey)) is True
    assert signed_by(latest, cosigner) is True
    for old, size in ((5, 9), (9, 9), (9, 16), (16, 33)):
        status, text = witness.add(old, size)
        assert status == 200, (old, size, text)
        assert signed_by(witness.log.checkpoint(size) + text, cosigner) is True
    assert witness.latest()[1].startswith(f"{ORIGIN}\n33\n")
    assert witness.client.get("/w/" + "0" * 64 + "/checkpoint").status_code == 404
    assert witness.client.get("/w/not-a-hash/checkpoint").status_code == 404


def _other_key(log: Log, size: int) -> str:
    return Log(Ed25519PrivateKey.generate()).checkpoint(size)


def _bad_signature(log: Log, size: int) -> str:
    good = log.checkpoint(size)
    text, _, line = good.rpartition("\n\n")
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    return f"{text}\n\n{DASH} {ORIGIN} {base64.b64encode(bytes(raw)).decode()}\n"


def _good_and_bad_signature(log: Log, size: int) -> str:
    """A valid signature of the trusted key, and a second line of that key that fails."""
    return _bad_signature(log, size) + log.checkpoint(size).rpartition("\n\n")[2]


def _without_root(log: Log, size: int) -> str:
    lines = log.checkpoint(size).split("\n")
    del lines[2]
    return "\n".join(lines)


def _other_origin(log: Log, size: int) -> str:
    return sign_checkpoint(log.key, "other.test/log", size, tree_hash(LEAVES[:size]))


Request = Callable[[Log], bytes]
CASES: dict[str, tuple[int, Request]] = {
    # 400: malformed, or old larger than the size
    "no blank line": (400, lambda log: b"old 5\n" + log.checkpoint(9).encode()),
    "old with a leading zero": (400, lambda log: body(0, [], log.checkpoint(9)).replace(b"old 0", b"old 05")),
    "old not a number": (400, lambda log: body(0, [], log.checkpoint(9)).replace(b"old 0", b"old x")),
    "no old line": (400, lambda log: b"\n" + log.checkpoint(9).encode()),
    "a proof line not base64": (400, lambda log: b"old 5\n!!\n\n" + log.checkpoint(9).encode()),
    "a proof line of 31 bytes": (400, lambda log: body(5, [b"x" * 31], log.checkpoint(9))),
    "64 proof lines": (400, lambda log: body(5, [b"x" * 32] * 64, log.checkpoint(9))),
    "not UTF-8": (400, lambda log: body(5, [], log.checkpoint(9)) + b"\xff"),
    "no signature": (400, lambda log: body(5, [], log.checkpoint(9).split("\n\n")[0] + "\n")),
    "no root line": (400, lambda log: body(5, [], _without_root(log, 9))),
    "old larger than the size": (400, lambda log: body(5, [], log.checkpoint(3))),
    # 404: an origin it does not witness
    "another origin": (404, lambda log: body(5, [], _other_origin(log, 9))),
    # 403: no valid signature by the trusted key
    "signed by another key": (403, lambda log: body(5, [], _other_key(log, 9))),
    "a bad signature by the trusted key": (403, lambda log: body(5, [], _bad_signature(log, 9))),
    "a good and a bad signature by the trusted key": (403, lambda log: body(5, consistency_proof(5, LEAVES[:9]), _good_and_bad_signature(log, 9))),
    # 409: old is not the size it cosigned
    "old below its size": (409, lambda log: body(3, consistency_proof(3, LEAVES[:9]), log.checkpoint(9))),
    "old above its size": (409, lambda log: body(7, consistency_proof(7, LEAVES[:9]), log.checkpoint(9))),
    "old 0": (409, lambda log: body(0, [], log.checkpoint(9))),
    # 422: inconsistent
    "a proof that does not verify": (422, lambda log: body(5, consistency_proof(5, LEAVES[:9])[::-1], log.checkpoint(9))),
    "no proof": (422, lambda log: body(5, [], log.checkpoint(9))),
    "a fork: the same size, another root": (422, lambda log: body(5, [], log.checkpoint(5, FORKED))),
    "a fork: a proof of another tree": (422, lambda log: body(5, consistency_proof(5, FORKED[:9]), log.checkpoint(9, FORKED))),
    "a proof between equal sizes": (422, lambda log: body(5, [b"x" * 32], log.checkpoint(5))),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_request_it_must_refuse_is_refused_and_changes_nothing(
    dstrail: Dstrail, witness: Witness, case: str
) -> None:
    assert witness.add(0, 5)[0] == 200
    before = witness.latest()
    status, request = CASES[case]
    response = witness.client.post("/w/add-checkpoint", content=request(witness.log))
    assert response.status_code == status, response.text
    if status == 409:
        assert response.headers["content-type"] == "text/x.tlog.size"
        assert response.text == "5\n"
    assert witness.latest() == before
    assert cosigned_size(dstrail) == 5


@pytest.mark.parametrize(
    ("old", "proof", "size", "root"),
    [
        (0, [], 0, hashlib.sha256(b"x").digest()),  # size 0 needs the empty tree's root
        (0, [LEAVES[0]], 1, LEAVES[0]),  # no proof from size 0
    ],
    ids=["size 0, another root", "a proof from size 0"],
)
def test_from_the_empty_tree_the_rules_of_the_empty_tree_hold(
    dstrail: Dstrail, witness: Witness, old: int, proof: list[bytes], size: int, root: bytes
) -> None:
    note = sign_checkpoint(witness.log.key, ORIGIN, size, root)
    assert witness.post(old, proof, note)[0] == 422
    assert witness.latest()[0] == 404 and cosigned_size(dstrail) == 0
    status, _, text = witness.post(0, [], sign_checkpoint(witness.log.key, ORIGIN, 0, EMPTY_ROOT))
    assert status == 200 and text.startswith(f"{DASH} {WITNESS} ")


def test_the_witness_answers_only_its_routes(witness: Witness) -> None:
    assert witness.client.get("/w/add-checkpoint").status_code == 405
    assert witness.client.post("/add-checkpoint", content=b"").status_code == 404
    assert witness.client.get("/w/healthz").text == "ok\n"
    too_large = witness.client.post("/w/add-checkpoint", content=b"x" * (1 << 20 | 1))
    assert too_large.status_code == 413


def test_concurrent_submissions_never_roll_the_state_back(
    dstrail: Dstrail, witness: Witness
) -> None:
    """Eight submissions from size 0 at once, each of another size: one is cosigned, the
    others are told its size (409), and the state is the one cosigned."""
    results: dict[int, int] = {}
    start = threading.Barrier(8)

    def submit(size: int) -> None:
        start.wait()
        with dstrail.store.write() as tx:
            answer = witnessing.add_checkpoint(
                tx, body(0, [], witness.log.checkpoint(size)), signer=witness.signer,
                now_ms=dstrail.clock(),
            )  # fmt: skip
        results[size] = answer.status

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results.values()) == [200] + [409] * 7, results
    (winner,) = [size for size, status in results.items() if status == 200]
    assert cosigned_size(dstrail) == winner
    assert witness.latest()[1].startswith(f"{ORIGIN}\n{winner}\n")


def test_the_witnessed_log_must_be_named_by_its_ed25519_vkey(dstrail: Dstrail) -> None:
    key = raw_public(Ed25519PrivateKey.generate())
    refused = {
        "a cosignature key": vkey_of(ORIGIN, 0x04, key),
        "another name": vkey_of("other.test/log", 0x01, key),
    }
    for vkey in refused.values():
        with pytest.raises(InvalidInput):
            witnessing.check_log_vkey(ORIGIN, vkey)
    assert witnessing.check_log_vkey(ORIGIN, vkey_of(ORIGIN, 0x01, key)).name == ORIGIN
