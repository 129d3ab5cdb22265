"""Signing checkpoints: the server's Ed25519 key, public key documents (with the C2SP vkey),
signature checks, and checkpoints signed on demand or on a timer. What a checkpoint is, and the message its
signature covers, is ``dstrail.domain.trail.checkpoints``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dstrail.domain.trail import CheckpointPolicy, CheckpointRecord, note
from dstrail.domain.trail.checkpoints import ALGORITHM
from dstrail.errors import InvalidInput
from dstrail.store import Store

logger = logging.getLogger("dstrail.audit.checkpoints")


def new_private_key_text() -> str:
    """A fresh Ed25519 private key, as the base64 of its 32-byte seed."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def private_key_from_text(value: str, *, what: str = "audit signing key") -> Ed25519PrivateKey:
    """An Ed25519 private key from base64 of its 32-byte seed, or from PKCS#8 PEM;
    ``InvalidInput`` naming ``what`` (never echoing the value: it is a secret)."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise InvalidInput(f"{what}: the PEM is not an unencrypted private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInput(f"{what}: the PEM key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(
            f"{what}: not accepted; accepted: base64 of a 32-byte Ed25519 seed, or PEM"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_raw: bytes) -> str:
    """A short name of a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


class Ed25519CheckpointSigner:
    """Signs checkpoints as C2SP notes with the server's Ed25519 key, under the log's origin
    (``repr`` shows no secret)."""

    def __init__(self, private_key: Ed25519PrivateKey, *, origin: str) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.public_raw = public_key_bytes(self.public_key)
        self.verifier = note.verifier_of(note.check_name(origin, field="origin"), self.public_raw)

    def __repr__(self) -> str:
        return f"Ed25519CheckpointSigner(origin={self.origin!r}, key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """The note key id under the origin (4 bytes, hex)."""
        return self.verifier.key_id.hex()

    @property
    def origin(self) -> str:
        """The log's origin: its checkpoints' first line and its key name."""
        return self.verifier.name

    def sign(self, *, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
        """The 64-byte signature of one checkpoint's note text (its time is not in it: C2SP
        checkpoints state the origin, size and root only)."""
        del timestamp_ms
        return self._key.sign(note.Checkpoint(self.origin, tree_size, root_hash).text().encode())

    def sign_bytes(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message`` (a cosignature, when witnessing)."""
        return self._key.sign(message)

    def public_key_document(self) -> dict[str, str]:
        """The public key as the API and the CLI publish it, with its vkey."""
        return public_key_document(self.public_raw, origin=self.origin)


def public_key_document(public_raw: bytes, *, origin: str | None = None) -> dict[str, str]:
    """``{algorithm, keyId, publicKey (base64 raw), pem}``, and with the log's origin its
    ``origin``, ``noteKeyId`` and ``vkey`` (C2SP signed-note verifier key)."""
    pem = (
        Ed25519PublicKey.from_public_bytes(public_raw)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    document = {
        "algorithm": ALGORITHM,
        "keyId": key_id_of(public_raw),
        "publicKey": base64.b64encode(public_raw).decode(),
        "pem": pem,
    }
    if origin is not None:
        verifier = note.verifier_of(origin, public_raw)
        document.update(origin=origin, noteKeyId=verifier.key_id.hex(), vkey=verifier.vkey())
    return document


def check_ed25519(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` (``note.Check``)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_from_text(value: str) -> bytes:
    """Raw public key bytes from base64, PEM, or a public-key JSON document's fields."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput("public key: the PEM key is not an Ed25519 key")
        return public_key_bytes(key)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidInput("public key: not accepted; accepted: base64 of 32 bytes, or PEM")
    return raw


def verify_signature(record: CheckpointRecord, public_raw: bytes) -> bool:
    """Whether the checkpoint's signature is valid under this public key (either form)."""
    return check_ed25519(public_raw, record.signature, record.message)


def checkpoint_policy(
    signer: Ed25519CheckpointSigner, *, every_events: int, every_seconds: int
) -> CheckpointPolicy:
    """When appends sign checkpoints."""
    return CheckpointPolicy(signer=signer, every_events=every_events, every_ms=every_seconds * 1000)


def checkpoint_now(store: Store, *, now_ms: int) -> CheckpointRecord:
    """Sign a checkpoint of the trail as it is (or return the latest when nothing changed)."""
    with store.write() as tx:
        return tx.integrity.checkpoint(now_ms=now_ms)


def start_checkpoint_ticker(
    store: Store, *, clock: Callable[[], int], every_seconds: int
) -> threading.Event:
    """A daemon thread that checkpoints every ``every_seconds`` when events arrived since the
    last one (so idle periods are covered too). Set the returned event to stop it."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_seconds):
            try:
                checkpoint_now(store, now_ms=clock())
            except Exception:  # the next tick retries; the server keeps serving
                logger.exception("signing an audit checkpoint failed")

    threading.Thread(target=tick, name="dstrail-checkpoints", daemon=True).start()
    return stop
