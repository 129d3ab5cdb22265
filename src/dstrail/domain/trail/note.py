"""C2SP signed notes, checkpoints and cosignatures: the text formats of the transparency-log
ecosystem (Go's checksum database, Sigstore, Tessera, the public witnesses), so that anyone's
verifier can check dstrail's checkpoints.

- ``signed-note``: a text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(4-byte key id || signature)``. An Ed25519 key's id is
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``; its verifier key (vkey) is
  ``<name>+<hex key id>+base64(0x01 || public key)``.
- ``tlog-checkpoint``: the note text is the log's origin, the tree size and the base64 root,
  one a line.
- ``tlog-cosignature`` (Ed25519, signature type 0x04): a witness signs ``cosignature/v1``,
  ``time <seconds>`` and the checkpoint's text; its signature is the 8-byte big-endian time
  then the 64-byte Ed25519 signature.

Pure: signing and checking signatures take the key operations as arguments.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from dstrail.errors import InvalidInput

ED25519: Final = 0x01
COSIGNATURE_ED25519: Final = 0x04
DASH: Final = "\u2014"
TEXT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
"""How notes, checkpoints and tlog-proofs are served (C2SP text formats)."""
SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
"""A witness's answer naming the tree size it cosigned (c2sp.org/tlog-witness, 409)."""
MAX_NAME: Final = 255
"""Characters of a key name or origin dstrail keeps (its columns' width)."""
MAX_TIMESTAMP: Final = 2**63 - 1
"""The largest time a cosignature may state (c2sp.org/tlog-cosignature)."""
MAX_SIGNATURES: Final = 64
"""Signature lines a note may carry (the specification asks for at least 16)."""
ORIGIN_RULE: Final = (
    "a non-empty schema-less URL such as dstrail.example.com/audit: printable characters, no "
    "spaces and no '+'"
)
_NAME = re.compile(r"^[^\s+\u2014]+$")
_SIGNATURE_LINE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key's name and id, and the signature bytes after the id."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """``— <name> base64(key id || signature)`` and a newline."""
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (ending in a newline) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        """The note as served: text, blank line, signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a ``tlog-checkpoint`` note's text states."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text: origin, size, base64 root (and extension lines), each ending in a
        newline."""
        lines = [self.origin, str(self.tree_size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))


@dataclass(frozen=True, slots=True)
class Verifier:
    """A known key: its name, id and public key, and what it signs (ED25519 for a log's
    checkpoints, COSIGNATURE_ED25519 for a witness's cosignatures)."""

    name: str
    key_id: bytes
    public_key: bytes
    signature_type: int

    def vkey(self) -> str:
        """``<name>+<hex id>+base64(type || key)``."""
        key = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{key}"


def check_name(name: str, *, field: str) -> str:
    """A key name or origin: non-empty, no spaces and no '+'; ``InvalidInput`` otherwise."""
    if not name or not _NAME.match(name) or not name.isprintable():
        raise InvalidInput(f"{field}: {name[:200]!r} is not accepted; accepted: {ORIGIN_RULE}")
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def verifier_of(name: str, public_key: bytes, signature_type: int = ED25519) -> Verifier:
    """The verifier of an Ed25519 key named ``name``."""
    return Verifier(name, key_id(name, signature_type, public_key), public_key, signature_type)


def parse_vkey(text: str, *, field: str = "vkey") -> Verifier:
    """A verifier key ``<name>+<hex id>+<base64 type||key>`` (Ed25519 or an Ed25519
    cosignature key); ``InvalidInput`` saying what is accepted."""
    accepted = f"{field}: accepted: <name>+<8 hex digits>+<base64 of 0x01 or 0x04 and 32 bytes>"
    name, _, rest = text.strip().partition("+")
    hex_id, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
        identifier = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise InvalidInput(accepted) from None
    check_name(name, field=field)
    if (
        not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id)  # fromhex alone takes "0102 0304"
        or len(raw) != 33
        or raw[0] not in (ED25519, COSIGNATURE_ED25519)
    ):
        raise InvalidInput(accepted)
    verifier = Verifier(name, identifier, raw[1:], raw[0])
    if key_id(name, raw[0], raw[1:]) != identifier:
        raise InvalidInput(f"{field}: the key id does not match the name and key")
    return verifier


def named_vkey(
    name: str, vkey: str, *, name_field: str, signature_type: int, wrong_type: str,
    wrong_name: str,
) -> Verifier:  # fmt: skip
    """The vkey of the key named ``name`` (``name_field`` in messages), of ``signature_type``;
    ``InvalidInput`` otherwise: ``wrong_type`` says what is accepted instead, ``wrong_name``
    (formatted with ``{key}`` and ``{name}``) what a vkey of another name is."""
    check_name(name, field=name_field)
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{name_field}: at most {MAX_NAME} characters")
    verifier = parse_vkey(vkey, field="vkey")
    if verifier.signature_type != signature_type:
        raise InvalidInput(f"vkey: accepted: {wrong_type}")
    if verifier.name != name:
        raise InvalidInput(wrong_name.format(key=verifier.name, name=name))
    return verifier


def parse_note(text: str) -> Note:
    """A signed note's text and signature lines; ``InvalidInput`` when it is not one."""
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InvalidInput("note: control characters other than newlines are not accepted")
    body, separator, signatures = text.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise InvalidInput("note: expected the text, a blank line, then signature lines")
    parsed = []
    for line in signatures[:-1].split("\n"):
        match = _SIGNATURE_LINE.match(line)
        if match is None:
            raise InvalidInput(f"note: not a signature line: {line[:200]!r}")
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"note: a signature is not base64: {line[:200]!r}") from None
        if len(raw) < 5:
            raise InvalidInput(f"note: a signature is too short: {line[:200]!r}")
        parsed.append(NoteSignature(match.group(1), raw[:4], raw[4:]))
    if len(parsed) > MAX_SIGNATURES:
        raise InvalidInput(f"note: more than {MAX_SIGNATURES} signatures")
    return Note(body + "\n", tuple(parsed))


def parse_checkpoint(text: str) -> Checkpoint:
    """The statement of a checkpoint note's text; ``InvalidInput`` when it is not one."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise InvalidInput("checkpoint: expected origin, tree size and root hash lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")):
        raise InvalidInput(f"checkpoint: tree size {size[:40]!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        root_hash = b""
    if len(root_hash) != 32:
        raise InvalidInput("checkpoint: the root hash is not base64 of 32 bytes")
    return Checkpoint(origin, int(size), root_hash, tuple(lines[3:-1]))


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature (v1) signs."""
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The POSIX time a cosignature states (its first 8 bytes, big-endian)."""
    if len(signature.signature) != 72:
        raise InvalidInput("cosignature: expected 8 bytes of time and 64 of signature")
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    if timestamp > MAX_TIMESTAMP:
        raise InvalidInput(f"cosignature: its time {timestamp} exceeds 2^63 - 1")
    return int(timestamp)


def sign_cosignature(
    checkpoint_text: str, *, name: str, key: bytes, timestamp: int,
    sign: Callable[[bytes], bytes],
) -> NoteSignature:  # fmt: skip
    """A witness's cosignature of a checkpoint (``key``: its public key)."""
    signature = sign(cosigned_message(checkpoint_text, timestamp))
    identifier = key_id(name, COSIGNATURE_ED25519, key)
    return NoteSignature(name, identifier, struct.pack(">Q", timestamp) + signature)


Check = Callable[[bytes, bytes, bytes], bool]
"""``check(public_key, signature, message)``: whether an Ed25519 signature is valid."""


def verified_by(note: Note, verifier: Verifier, check: Check) -> NoteSignature | None:
    """The signature of ``verifier`` on ``note`` when it has one and every line of that key
    verifies; ``None`` when it has none; ``InvalidInput`` when a line of that key does not
    verify (c2sp.org/signed-note: a note with a bad signature from a known key is rejected
    whole, even beside a good one)."""
    found: NoteSignature | None = None
    for signature in note.signatures:
        if signature.name != verifier.name or signature.key_id != verifier.key_id:
            continue  # an unknown key: ignored
        if verifier.signature_type == COSIGNATURE_ED25519:
            timestamp = cosignature_timestamp(signature)
            message = cosigned_message(note.text, timestamp)
            valid = check(verifier.public_key, signature.signature[8:], message)
        else:
            valid = check(verifier.public_key, signature.signature, note.text.encode())
        if not valid:
            raise InvalidInput(f"note: the signature of {verifier.name} does not verify")
        found = found or signature
    return found


def with_signatures(note: Note, extra: Iterable[NoteSignature]) -> Note:
    """``note`` with more signature lines (a key and id already there are not repeated)."""
    have = {(s.name, s.key_id) for s in note.signatures}
    added = [s for s in extra if (s.name, s.key_id) not in have]
    return Note(note.text, (*note.signatures, *added))
