"""dstrail as a C2SP witness for other logs (c2sp.org/tlog-witness, ``dstrail witness serve``):
it keeps the latest checkpoint it cosigned for each log it is configured for, and cosigns a
newer one only when a consistency proof shows it extends that one. Two sites can so watch
each other: neither can then show a rolled-back or forked trail without the other refusing it.

``add-checkpoint`` answers (in this order of checks, as the specification lists them): 400
for a malformed body; 404 for an origin it does not witness; 403 without a valid signature
of the log's key; 400 when ``old`` exceeds the size; 409 (body: its size, ``text/x.tlog.size``)
when ``old`` is not the size it cosigned last; 422 for a size-0 checkpoint without the empty
tree's root, a proof sent with ``old 0``, a proof that does not verify, or the same size with
another root; else 200 and its cosignature (Ed25519 cosignature v1, signature type 0x04),
after the new state is committed. The check and the update run in one write transaction
holding the log's row lock, so two concurrent submissions cannot roll the state back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dstrail.audit.checkpoints import check_ed25519, private_key_from_text, public_key_bytes
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import merkle, note
from dstrail.errors import InvalidInput
from dstrail.settings import Settings
from dstrail.store import Repositories
from dstrail.store.transparency import WitnessedLog

MAX_LOGGED_NOTE = 4096
"""Characters of a refused note a log line keeps."""
logger = logging.getLogger("dstrail.witness")

MAX_PROOF_LINES: Final = 63
MAX_TREE_SIZE: Final = 2**63 - 1
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,18})")
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


def witness_name(settings: Settings) -> str:
    """This instance's key name as a witness: ``witness_name`` when set, else the host of the
    log's origin then ``/witness`` (``dstrail.example.com/witness``)."""
    if settings.witness_name:
        return note.check_name(settings.witness_name, field="witness_name")
    host = settings.resolved_log_origin().split("/", 1)[0]
    return f"{host}/witness"


class WitnessSigner:
    """Cosigns other logs' checkpoints with the witness's own Ed25519 key (never the audit
    signing key: an Ed25519 cosignature does not commit to the cosigner's name, so the
    specification asks for a key per cosigner). ``repr`` shows no secret."""

    def __init__(self, private_key: Ed25519PrivateKey, *, name: str) -> None:
        self._key = private_key
        checked = note.check_name(name, field="witness_name")
        if len(checked) > note.MAX_NAME:
            raise InvalidInput(f"witness_name: at most {note.MAX_NAME} characters")
        public_raw = public_key_bytes(private_key.public_key())
        self.verifier = note.verifier_of(checked, public_raw, note.COSIGNATURE_ED25519)

    @classmethod
    def from_text(cls, private_key_text: str, *, name: str) -> WitnessSigner:
        """From the key file's text (base64 of the 32-byte seed, or PEM)."""
        return cls(private_key_from_text(private_key_text, what="witness signing key"), name=name)

    def __repr__(self) -> str:
        return f"WitnessSigner(name={self.name!r}, key_id={self.verifier.key_id.hex()!r})"

    @property
    def name(self) -> str:
        """The key name of its cosignatures."""
        return self.verifier.name

    def vkey(self) -> str:
        """Its cosignature verifier key: ``<name>+<hex id>+base64(0x04 || key)``."""
        return self.verifier.vkey()

    def cosign(self, checkpoint_text: str, *, timestamp: int) -> note.NoteSignature:
        """A cosignature (v1) of a checkpoint's note text as of ``timestamp`` (seconds)."""
        return note.sign_cosignature(
            checkpoint_text, name=self.name, key=self.verifier.public_key, timestamp=timestamp,
            sign=self._key.sign,
        )  # fmt: skip


def public_key_document(signer: WitnessSigner) -> dict[str, str]:
    """What ``dstrail witness public-key`` prints: the name, the key id and the vkey."""
    return {
        "name": signer.name,
        "noteKeyId": signer.verifier.key_id.hex(),
        "publicKey": base64.b64encode(signer.verifier.public_key).decode(),
        "vkey": signer.vkey(),
    }


# -- the logs witnessed ------------------------------------------------------------------------


def check_log_vkey(origin: str, vkey: str) -> note.Verifier:
    """A log's verifier key: an Ed25519 note key (type 0x01) whose key name is ``origin``."""
    return note.named_vkey(
        origin, vkey, name_field="origin", signature_type=note.ED25519,
        wrong_type="the log's Ed25519 checkpoint key (signature type 0x01, as "
        "`dstrail audit public-key` prints in vkey); this one is a cosignature key (0x04)",
        wrong_name="vkey: its key name {key!r} is not the origin {name!r}; accepted: the "
        "vkey of the log whose checkpoints start with that origin",
    )  # fmt: skip


def add_witnessed_log(tx: Repositories, *, origin: str, vkey: str) -> WitnessedLog:
    """Start witnessing a log (its checkpoints then start at size 0); ``Conflict`` when it is
    witnessed already."""
    verifier = check_log_vkey(origin, vkey)
    tx.transparency.add_witnessed(origin=origin, vkey=verifier.vkey())
    added = tx.transparency.witnessed(origin)
    assert added is not None
    return added


def witnessed_logs(tx: Repositories) -> list[WitnessedLog]:
    """Every log this instance witnesses, by origin."""
    return tx.transparency.witnessed_logs()


def witnessed_document(log: WitnessedLog) -> dict[str, Any]:
    """A witnessed log as ``dstrail witness logs list`` prints it."""
    return {
        "origin": log.origin,
        "originHash": origin_hash(log.origin),
        "vkey": log.vkey,
        "treeSize": log.tree_size,
        "rootHash": base64.b64encode(log.root_hash).decode() if log.root_hash else None,
        "updatedAt": format_ms(log.updated_at_ms) if log.updated_at_ms is not None else None,
    }


def origin_hash(origin: str) -> str:
    """The lowercase hex SHA-256 of an origin: its path under the monitoring prefix."""
    return hashlib.sha256(origin.encode()).hexdigest()


def cosigned_checkpoint(tx: Repositories, origin_hex: str) -> str | None:
    """The latest checkpoint cosigned for the log whose origin hashes to ``origin_hex``, with
    the log's signature and the witness's cosignature; ``None`` when there is none."""
    if not _ORIGIN_HASH.fullmatch(origin_hex):
        return None
    for log in tx.transparency.witnessed_logs():
        if origin_hash(log.origin) == origin_hex:
            return log.checkpoint
    return None


# -- add-checkpoint ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    """The HTTP answer to an ``add-checkpoint`` request."""

    status: int
    body: str
    media_type: str = note.TEXT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class Submission:
    """An ``add-checkpoint`` body: the old size, the consistency proof and the checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    signed: note.Note
    checkpoint: note.Checkpoint


def parse_submission(body: bytes) -> Submission:
    """The parts of an ``add-checkpoint`` body; ``InvalidInput`` saying what is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8") from None
    head, separator, rest = text.partition("\n\n")
    if not separator:
        raise InvalidInput(
            "expected an old size line, the proof lines, a blank line, then the checkpoint"
        )
    old_line, *proof_lines = head.split("\n")
    match = _OLD_LINE.fullmatch(old_line)
    if match is None or int(match.group(1)) > MAX_TREE_SIZE:
        raise InvalidInput(f"the first line {old_line[:80]!r} is not 'old <size>'")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise InvalidInput(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != merkle.HASH_SIZE:
            raise InvalidInput(f"a proof line {line[:80]!r} is not the base64 of a 32-byte hash")
        proof.append(value)
    signed = note.parse_note(rest)
    checkpoint = note.parse_checkpoint(signed.text)
    if checkpoint.tree_size > MAX_TREE_SIZE:
        raise InvalidInput("the checkpoint's tree size is too large")
    return Submission(int(match.group(1)), tuple(proof), signed, checkpoint)


def add_checkpoint(
    tx: Repositories, body: bytes, *, signer: WitnessSigner, now_ms: int
) -> WitnessAnswer:
    """Answer an ``add-checkpoint`` request in the write transaction ``tx``: on success the
    new state is written in it (the caller commits before answering)."""
    try:
        submission = parse_submission(body)
    except InvalidInput as error:
        return WitnessAnswer(400, f"malformed add-checkpoint request: {error.message}\n")
    checkpoint = submission.checkpoint
    log = tx.transparency.witnessed(checkpoint.origin, for_update=True)
    if log is None:
        return WitnessAnswer(404, f"unknown log origin {checkpoint.origin[: note.MAX_NAME]!r}\n")
    trusted = note.parse_vkey(log.vkey)
    try:
        own = note.verified_by(submission.signed, trusted, check_ed25519)
    except InvalidInput:
        own = None
    if own is None:
        return _refused(log, submission, 403, f"no valid signature by {trusted.vkey()}")
    old, size = submission.old_size, checkpoint.tree_size
    if old > size:
        return _refused(log, submission, 400, f"old size {old} is larger than the size {size}")
    if old != log.tree_size:
        _log_refusal(log, submission, 409, f"old size {old}, cosigned {log.tree_size}")
        return WitnessAnswer(409, f"{log.tree_size}\n", note.SIZE_MEDIA_TYPE)
    problem = _inconsistency(log, submission)
    if problem is not None:
        return _refused(log, submission, 422, problem)
    timestamp = max(now_ms // 1000, 1)
    cosignature = signer.cosign(submission.signed.text, timestamp=timestamp)
    kept = note.Note(submission.signed.text, (own, cosignature)).encode()
    tx.transparency.set_witnessed(
        checkpoint.origin, tree_size=size, root_hash=checkpoint.root_hash, checkpoint=kept,
        now_ms=now_ms,
    )  # fmt: skip
    logger.info("cosigned %s at size %d (from %d)", checkpoint.origin, size, old)
    return WitnessAnswer(200, cosignature.line())


def _inconsistency(log: WitnessedLog, submission: Submission) -> str | None:
    """Why the checkpoint does not extend the one cosigned last, or ``None`` when it does."""
    old, proof = submission.old_size, submission.proof
    size, root = submission.checkpoint.tree_size, submission.checkpoint.root_hash
    if size == 0 and root != merkle.EMPTY_ROOT:
        return "a checkpoint of size 0 must have the empty tree's root"
    if old == 0:
        return "a consistency proof from size 0 must be empty" if proof else None
    previous = log.root_hash or b""
    if old == size:
        if root != previous:
            return f"size {size} was cosigned with another root hash: a fork of the log"
        return "a consistency proof between equal sizes must be empty" if proof else None
    if not merkle.verify_consistency(old, size, proof, previous, root):
        return f"the consistency proof from size {old} to {size} does not verify"
    return None


def _refused(log: WitnessedLog, submission: Submission, status: int, why: str) -> WitnessAnswer:
    _log_refusal(log, submission, status, why)
    return WitnessAnswer(status, why + "\n")


def _log_refusal(log: WitnessedLog, submission: Submission, status: int, why: str) -> None:
    """A refused checkpoint of a known log. One the log's key signed (a 409 or 422) may be
    evidence of its misbehaviour: logged with the note (public: sizes, hashes, signatures),
    cut at ``MAX_LOGGED_NOTE`` characters. Anyone can send one without a valid signature (a
    403): only its digest and length are logged, so that nobody can fill the log."""
    submitted = f"old {submission.old_size}\n" + submission.signed.encode()
    if status == 403:
        digest = hashlib.sha256(submitted.encode()).hexdigest()
        logger.info(
            "refused a checkpoint of %s (403): %s; %d characters, SHA-256 %s",
            log.origin, why, len(submitted), digest,
        )  # fmt: skip
        return
    level = logging.WARNING if status == 422 else logging.INFO
    logger.log(
        level, "refused a checkpoint of %s (%d): %s; submitted: %r", log.origin, status, why,
        submitted[:MAX_LOGGED_NOTE],
    )  # fmt: skip
