"""Submitting checkpoints to witnesses (c2sp.org/tlog-witness), checked against a witness
written from the specification apart from dstrail's code (``witness_double``): a cosignature
is kept only when it verifies with the witness's vkey, and is then served with the
checkpoint; a witness at another size gets the proof from its size (409); a fork, a refusal,
an error and an unreachable witness are recorded as its last error, and nothing is raised."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.submission import (
    SubmissionResult,
    WitnessSubmitter,
    new_client,
    submit_to_witnesses,
)
from dstrail.context import Dstrail
from dstrail.domain.users import OPERATOR
from dstrail.services import witnesses as witness_service
from dstrail.store.transparency import WitnessRow
from tests.client.conftest import free_port
from tests.integrity.witness_double import (
    EMPTY_ROOT,
    WitnessDouble,
    parse_vkey,
    raw_public,
    signed_by,
    vkey_of,
)
from tests.support import Login, new_event

CHECKPOINT = "/api/dstrail/v1/tlog/checkpoint"


@pytest.fixture
def double(dstrail: Dstrail) -> Iterator[WitnessDouble]:
    """A witness that trusts this log's key, configured as this log's witness."""
    with WitnessDouble() as witness:
        witness.trust(log_vkey(dstrail))
        add(dstrail, witness.name, witness.vkey, witness.url)
        yield witness


def log_vkey(dstrail: Dstrail) -> str:
    return dstrail.signer.public_key_document()["vkey"]


def add(dstrail: Dstrail, name: str, vkey: str, url: str) -> None:
    with dstrail.store.write() as tx:
        witness_service.add_witness(
            tx, name=name, vkey=vkey, url=url, actor=OPERATOR, now_ms=dstrail.clock()
        )


def remove(dstrail: Dstrail, name: str) -> None:
    with dstrail.store.write() as tx:
        witness_service.remove_witness(tx, name=name, actor=OPERATOR, now_ms=dstrail.clock())


def grow(dstrail: Dstrail, events: int) -> int:
    """Append ``events`` events and sign a checkpoint of the trail; its size."""
    with dstrail.store.write() as tx:
        for number in range(events):
            tx.audit.record(new_event(dstrail.clock(), data_source_name=f"ds-{number}"))
    return checkpoint_now(dstrail.store, now_ms=dstrail.clock()).tree_size


def submit(dstrail: Dstrail) -> list[SubmissionResult]:
    with new_client(timeout=5) as client:
        return submit_to_witnesses(dstrail.store, client, clock=dstrail.clock)


def only(dstrail: Dstrail) -> WitnessRow:
    with dstrail.store.read() as tx:
        (witness,) = tx.transparency.witnesses()
    return witness


def kept(dstrail: Dstrail, size: int) -> list[str]:
    """The names of the witnesses whose cosignature of ``size`` is stored."""
    with dstrail.store.read() as tx:
        return [signature.name for signature in tx.transparency.cosignatures_of(size)]


def served(client: TestClient, admin: Login) -> str:
    response = client.get(CHECKPOINT, headers=admin.headers)
    assert response.status_code == 200, response.text
    return str(response.text)


def failed(results: list[SubmissionResult], pattern: str) -> str:
    (result,) = results
    assert result.outcome == "failed", result
    assert re.search(pattern, result.error), result.error
    return result.error


def test_a_cosignature_is_verified_kept_and_served_with_the_checkpoint(
    dstrail: Dstrail, double: WitnessDouble, client: TestClient, admin: Login
) -> None:
    size = grow(dstrail, 5)
    if size & (size - 1) == 0:  # not a power of two: the proof from it has several hashes
        size = grow(dstrail, 1)
    (result,) = submit(dstrail)
    assert (result.outcome, result.tree_size, result.cosigned_size) == ("cosigned", size, size)
    assert double.bodies[0].startswith(b"old 0\n\n" + dstrail.signer.origin.encode() + b"\n")
    assert kept(dstrail, size) == [double.name]
    witness = only(dstrail)
    assert (witness.cosigned_size, witness.last_error) == (size, "")
    assert witness.last_attempt_ms == dstrail.clock()
    note = served(client, admin)
    assert note.startswith(f"{dstrail.signer.origin}\n{size}\n")
    assert signed_by(note, double.verifier) is True  # checked by the double's own code
    assert signed_by(note, parse_vkey(log_vkey(dstrail))) is True

    (again,) = submit(dstrail)
    assert again.outcome == "up-to-date" and len(double.bodies) == 1

    larger = grow(dstrail, 7)
    (result,) = submit(dstrail)
    assert (result.outcome, result.cosigned_size) == ("cosigned", larger)
    head, _, _ = double.bodies[-1].partition(b"\n\n")
    old_line, *proof = head.split(b"\n")
    assert old_line == f"old {size}".encode() and len(proof) >= 2  # the double verified it
    assert double.state[dstrail.signer.origin][0] == larger
    assert kept(dstrail, larger) == [double.name]
    assert signed_by(served(client, admin), double.verifier) is True


def test_a_witness_at_another_size_is_sent_the_proof_from_its_size(
    dstrail: Dstrail, double: WitnessDouble
) -> None:
    first = grow(dstrail, 3)
    assert submit(dstrail)[0].outcome == "cosigned"
    remove(dstrail, double.name)  # added again: this log no longer knows what it cosigned
    add(dstrail, double.name, double.vkey, double.url)
    second = grow(dstrail, 4)
    (result,) = submit(dstrail)
    assert (result.outcome, result.cosigned_size) == ("cosigned", second)
    assert double.answers == [200, 409, 200]
    assert [body.split(b"\n", 1)[0] for body in double.bodies[1:]] == [
        b"old 0",
        f"old {first}".encode(),
    ]
    assert kept(dstrail, second) == [double.name]


def test_a_witness_that_cosigned_more_than_the_trail_holds_reports_a_rollback(
    dstrail: Dstrail, double: WitnessDouble
) -> None:
    size = grow(dstrail, 2)
    double.answer_next(409, f"{size + 100}\n")
    error = failed(submit(dstrail), r"rolled back, or the witness saw a fork")
    assert f"cosigned size {size + 100}" in error
    assert len(double.bodies) == 1 and kept(dstrail, size) == []
    assert (only(dstrail).cosigned_size, only(dstrail).last_error) == (0, error)


def test_a_fork_is_refused_by_the_witness_and_recorded(
    dstrail: Dstrail, double: WitnessDouble
) -> None:
    size = grow(dstrail, 6)
    double.remember(dstrail.signer.origin, 3, EMPTY_ROOT)  # it cosigned another tree of 3
    failed(submit(dstrail), r"consistency proof from size 3 to .* not a prefix of this trail")
    assert double.answers == [409, 422]
    assert double.state[dstrail.signer.origin] == (3, EMPTY_ROOT)
    assert kept(dstrail, size) == [] and only(dstrail).cosigned_size == 0


@pytest.mark.parametrize(
    ("status", "pattern"),
    [
        (422, r"refused the consistency proof from size 0"),
        (400, r"found the request malformed: told to answer 400"),
        (500, r"answered HTTP 500: told to answer 500"),
    ],
)
def test_a_refusal_is_recorded(
    dstrail: Dstrail, double: WitnessDouble, status: int, pattern: str
) -> None:
    size = grow(dstrail, 2)
    double.always = status
    error = failed(submit(dstrail), pattern)
    assert kept(dstrail, size) == []
    witness = only(dstrail)
    assert (witness.cosigned_size, witness.last_error) == (0, error)
    double.always = None
    assert submit(dstrail)[0].outcome == "cosigned"
    assert only(dstrail).last_error == ""


def test_a_witness_that_does_not_know_the_log_or_its_key_says_so(
    dstrail: Dstrail, double: WitnessDouble
) -> None:
    grow(dstrail, 1)
    trusted = double.logs.pop(dstrail.signer.origin)
    failed(submit(dstrail), rf"does not witness the origin '{dstrail.signer.origin}'")
    other = Ed25519PrivateKey.generate()  # the witness trusts another key for this origin
    double.trust(vkey_of(trusted.name, 0x01, raw_public(other)))
    failed(submit(dstrail), r"does not trust this log's key")


def test_an_unreachable_witness_is_recorded(dstrail: Dstrail) -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    add(dstrail, "gone.test/w", WitnessDouble(name="gone.test/w").vkey, url)
    grow(dstrail, 1)
    error = failed(submit(dstrail), rf"^{re.escape(url)} could not be reached: ConnectError")
    witness = only(dstrail)
    assert (witness.last_error, witness.last_attempt_ms) == (error, dstrail.clock())


@pytest.mark.parametrize(
    ("impostor", "pattern"),
    [
        ("other-key", r"answered no cosignature by its key witness\.test/double\+[0-9a-f]{8}"),
        ("bad-signature", r"the signature of witness\.test/double does not verify"),
    ],
)
def test_a_cosignature_by_another_key_is_not_kept(
    dstrail: Dstrail,
    double: WitnessDouble,
    client: TestClient,
    admin: Login,
    impostor: str,
    pattern: str,
) -> None:
    size = grow(dstrail, 2)
    double.impostor = impostor  # type: ignore[assignment]
    failed(submit(dstrail), pattern)
    assert kept(dstrail, size) == [] and only(dstrail).cosigned_size == 0
    note = served(client, admin)
    assert note.count("\u2014 ") == 1 and signed_by(note, double.verifier) is None


def test_the_background_submitter_sends_new_checkpoints_and_backs_off_a_failing_witness(
    dstrail: Dstrail, double: WitnessDouble
) -> None:
    submitter = WitnessSubmitter(dstrail.store, clock=dstrail.clock, every_seconds=0.05)
    submitter.start()
    try:
        size = grow(dstrail, 3)
        deadline = time.monotonic() + 15
        while double.state.get(dstrail.signer.origin, (0, b""))[0] != size:
            assert time.monotonic() < deadline, double.answers
            time.sleep(0.02)
        double.always = 500
        grow(dstrail, 1)
        time.sleep(1.0)
        failures = double.answers.count(500)
    finally:
        submitter.stop()
    # Every 0.05 s without backing off: about 20; doubling from 0.05 s: at most 5 in 1 s.
    assert 1 <= failures <= 6, double.answers
    assert only(dstrail).last_error.startswith("the witness answered HTTP 500")
