"""C2SP signed notes and the trust policy (``domain.trail.note``, ``domain.trail.trust``):
the rules a verifier must enforce, each with a note made here with ``cryptography``."""

from __future__ import annotations

import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dstrail.audit.tlog_proof import split_views
from dstrail.domain.trail import note
from dstrail.domain.trail.trust import TrustPolicy
from dstrail.errors import InvalidInput

ORIGIN = "log.example/audit"


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _signed(key: Ed25519PrivateKey, size: int, root: bytes) -> note.Note:
    text = note.Checkpoint(ORIGIN, size, root).text()
    verifier = note.verifier_of(ORIGIN, _raw(key))
    return note.Note(text, (note.NoteSignature(ORIGIN, verifier.key_id, key.sign(text.encode())),))


def test_a_bad_line_of_a_known_key_rejects_the_note_even_beside_a_good_one() -> None:
    key = Ed25519PrivateKey.generate()
    good = _signed(key, 5, b"r" * 32)
    verifier = note.verifier_of(ORIGIN, _raw(key))
    assert note.verified_by(good, verifier, _check) == good.signatures[0]
    broken = bytearray(good.signatures[0].signature)
    broken[0] ^= 1
    bad = note.NoteSignature(ORIGIN, verifier.key_id, bytes(broken))
    for signatures in ((good.signatures[0], bad), (bad, good.signatures[0])):
        with pytest.raises(InvalidInput, match="does not verify"):
            note.verified_by(note.Note(good.text, signatures), verifier, _check)


def test_a_cosignature_time_beyond_2_63_is_refused() -> None:
    line = note.NoteSignature("w.example/w", b"\0" * 4, struct.pack(">Q", 2**63) + b"s" * 64)
    with pytest.raises(InvalidInput, match="exceeds"):
        note.cosignature_timestamp(line)
    ok = note.NoteSignature("w.example/w", b"\0" * 4, struct.pack(">Q", 2**63 - 1) + b"s" * 64)
    assert note.cosignature_timestamp(ok) == 2**63 - 1


def test_one_witness_key_under_two_names_is_refused() -> None:
    log = note.verifier_of(ORIGIN, _raw(Ed25519PrivateKey.generate()))
    shared = _raw(Ed25519PrivateKey.generate())
    one = note.verifier_of("a.example/w", shared, note.COSIGNATURE_ED25519)
    same_key = note.verifier_of("b.example/w", shared, note.COSIGNATURE_ED25519)
    other = note.verifier_of(
        "c.example/w", _raw(Ed25519PrivateKey.generate()), note.COSIGNATURE_ED25519
    )
    with pytest.raises(InvalidInput, match="given twice"):
        TrustPolicy.of(log, [one, same_key], 2)
    assert TrustPolicy.of(log, [one, other], 2).min_witnesses == 2


def test_two_log_signed_checkpoints_of_one_size_with_two_roots_are_a_split_view() -> None:
    key = Ed25519PrivateKey.generate()
    policy = TrustPolicy.of(note.verifier_of(ORIGIN, _raw(key)), [], 0)
    first = policy.check_note(_signed(key, 8, b"a" * 32), _check)
    same = policy.check_note(_signed(key, 8, b"a" * 32), _check)
    forked = policy.check_note(_signed(key, 8, b"b" * 32), _check)
    larger = policy.check_note(_signed(key, 9, b"c" * 32), _check)
    assert split_views([first, same, larger]) == []
    [finding] = split_views([first, larger, forked])
    assert (finding.kind.value, finding.seq) == ("split-view", 8)
    unsigned = policy.check_note(
        note.Note(note.Checkpoint(ORIGIN, 8, b"z" * 32).text(), ()), _check
    )
    assert split_views([first, unsigned]) == []  # a note the log did not sign claims nothing
