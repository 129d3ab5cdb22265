"""A C2SP witness for the tests: a test double that follows the published specifications
(c2sp.org/tlog-witness ``add-checkpoint``, c2sp.org/tlog-cosignature Ed25519 v1,
c2sp.org/signed-note, RFC 6962 consistency proofs), written from them apart from dstrail's
own code: it imports nothing of dstrail (only the standard library and ``cryptography``), so
the tests hold dstrail's submitter to an independent reading of the specifications.

It is a real HTTP/1.1 server (keep-alive) on a loopback port. It can be told to answer a
status once or always (409 with its size, 422, 500), to cosign with a key other than its
own (an impostor), and to start from a state of its own (``remember``). It keeps every
request body it received.

The Merkle helpers (``tree_hash``, ``consistency_proof``, ``consistent``) follow RFC 6962
section 2.1 as written (recursive definitions), for tests that need a log of their own.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DASH = "\u2014"
EMPTY_ROOT = hashlib.sha256(b"").digest()

# -- RFC 6962, section 2.1 ---------------------------------------------------------------------


def leaf(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [tree_hash(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), tree_hash(d[k:])]
        return [*subproof(m - k, d[k:], False), tree_hash(d[:k])]

    return [] if m in (0, len(leaves)) else subproof(m, leaves, True)


def consistent(m: int, n: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """Whether ``proof`` is SUBPROOF(m, D[n], true) of trees with these roots: the proof is
    read back along the same recursion, rebuilding both roots (0 < m < n)."""

    def rebuild(m: int, n: int, complete: bool, proof: list[bytes]) -> tuple[bytes, bytes]:
        """(MTH of the first m leaves, MTH of all n) of the subtree the proof describes."""
        if m == n:
            if complete:
                if proof:
                    raise ValueError("too many proof hashes")
                return old_root, old_root
            if len(proof) != 1:
                raise ValueError("a proof of the wrong length")
            return proof[0], proof[0]
        if not proof:
            raise ValueError("too few proof hashes")
        *rest, sibling = proof
        k = _split(n)
        if m <= k:
            old, new_left = rebuild(m, k, complete, rest)
            return old, _node(new_left, sibling)
        old_right, new_right = rebuild(m - k, n - k, False, rest)
        return _node(sibling, old_right), _node(sibling, new_right)

    if not 0 < m < n:
        return False
    try:
        old, new = rebuild(m, n, True, list(proof))
    except ValueError:
        return False
    return old == old_root and new == new_root


# -- signed notes ------------------------------------------------------------------------------


def key_id(name: str, kind: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || signature type || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def vkey_of(name: str, kind: int, public_key: bytes) -> str:
    """<name>+<hex key id>+base64(type || key)."""
    encoded = base64.b64encode(bytes([kind]) + public_key).decode()
    return f"{name}+{key_id(name, kind, public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class Key:
    """A verifier key as a vkey states it."""

    name: str
    id: bytes
    kind: int
    public_key: bytes


def parse_vkey(vkey: str) -> Key:
    name, hex_id, encoded = vkey.split("+", 2)  # base64 has + too
    raw = base64.b64decode(encoded)
    assert len(raw) == 33 and key_id(name, raw[0], raw[1:]) == bytes.fromhex(hex_id), vkey
    return Key(name, bytes.fromhex(hex_id), raw[0], raw[1:])


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(text, [(key name, key id || signature)]); ``ValueError`` when it is not a note."""
    text, separator, lines = note.rpartition("\n\n")
    if not separator or not lines.endswith("\n"):
        raise ValueError("not a signed note")
    signatures = []
    for line in lines[:-1].split("\n"):
        dash, name, encoded = line.split(" ")
        if dash != DASH:
            raise ValueError(f"not a signature line: {line!r}")
        signatures.append((name, base64.b64decode(encoded, validate=True)))
    return text + "\n", signatures


def _ed25519_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_by(note: str, key: Key) -> bool | None:
    """Whether the note's signature by ``key`` verifies (a log's Ed25519 note signature, type
    0x01, or a cosignature v1, type 0x04); ``None`` when it has none by that key."""
    text, signatures = split_note(note)
    for name, raw in signatures:
        if name != key.name or raw[:4] != key.id:
            continue
        if key.kind == 0x04:
            if len(raw) != 4 + 8 + 64:
                return False
            (timestamp,) = struct.unpack(">Q", raw[4:12])
            message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
            return timestamp > 0 and _ed25519_valid(key.public_key, raw[12:], message)
        return _ed25519_valid(key.public_key, raw[4:], text.encode())
    return None


def cosignature_line(key: Ed25519PrivateKey, name: str, id_: bytes, text: str, when: int) -> str:
    """``— <name> base64(key id || u64 time || Ed25519 signature)`` of a cosignature v1."""
    signature = key.sign(f"cosignature/v1\ntime {when}\n{text}".encode())
    encoded = base64.b64encode(id_ + struct.pack(">Q", when) + signature).decode()
    return f"{DASH} {name} {encoded}\n"


def sign_checkpoint(key: Ed25519PrivateKey, origin: str, size: int, root: bytes) -> str:
    """A checkpoint note signed by a log key named ``origin`` (Ed25519, type 0x01)."""
    text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    signature = key_id(origin, 0x01, raw_public(key)) + key.sign(text.encode())
    return f"{text}\n{DASH} {origin} {base64.b64encode(signature).decode()}\n"


# -- the witness -------------------------------------------------------------------------------


Impostor = Literal["other-key", "bad-signature"]


@dataclass
class WitnessDouble:
    """A witness: its name and key, the logs it trusts, what it has cosigned."""

    name: str = "witness.test/double"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    logs: dict[str, Key] = field(default_factory=dict)
    state: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """Each origin's latest cosigned (size, root)."""
    forced: list[tuple[int, str | None]] = field(default_factory=list)
    """(status, body) to answer to the next well-signed requests, once each (``answer_next``)."""
    always: int | None = None
    impostor: Impostor | None = None
    bodies: list[bytes] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def public_key(self) -> bytes:
        return raw_public(self.key)

    @property
    def vkey(self) -> str:
        """Its cosignature verifier key (type 0x04)."""
        return vkey_of(self.name, 0x04, self.public_key)

    @property
    def verifier(self) -> Key:
        return parse_vkey(self.vkey)

    @property
    def url(self) -> str:
        """Its submission prefix."""
        return f"http://127.0.0.1:{self.port}/double"

    def trust(self, log_vkey: str) -> None:
        """Witness the log of this vkey (its key name is the origin)."""
        key = parse_vkey(log_vkey)
        assert key.kind == 0x01
        self.logs[key.name] = key

    def answer_next(self, status: int, body: str | None = None) -> None:
        """Answer ``status`` to the next well-signed request (a 409's body: ``body``, else
        its size)."""
        self.forced.append((status, body))

    def remember(self, origin: str, size: int, root: bytes) -> None:
        """Start from a checkpoint of its own (one dstrail did not send)."""
        self.state[origin] = (size, root)

    def answer(self, body: bytes) -> tuple[int, str, str]:
        """(status, content type, body) of an add-checkpoint request, per tlog-witness."""
        with self.lock:
            self.bodies.append(body)
            status, content_type, text = self._answer(body)
            self.answers.append(status)
            return status, content_type, text

    def _answer(self, body: bytes) -> tuple[int, str, str]:
        try:
            text = body.decode()
            head, _, note = text.partition("\n\n")
            old_line, *proof_lines = head.split("\n")
            word, old_text = old_line.split(" ")
            assert word == "old" and old_text == str(int(old_text))
            old = int(old_text)
            proof = [base64.b64decode(line, validate=True) for line in proof_lines]
            assert len(proof) <= 63 and all(len(p) == 32 for p in proof)
            checkpoint, _ = split_note(note)
            origin, size_text, root_text, *_ = checkpoint.split("\n")
            size, root = int(size_text), base64.b64decode(root_text, validate=True)
            assert size_text == str(size) and len(root) == 32
        except (ValueError, AssertionError, UnicodeDecodeError):
            return 400, "text/plain", "malformed\n"
        if origin not in self.logs:
            return 404, "text/plain", "unknown origin\n"
        if not signed_by(note, self.logs[origin]):
            return 403, "text/plain", "no valid signature by the log's key\n"
        if old > size:
            return 400, "text/plain", "old is larger than the size\n"
        cosigned_size, cosigned_root = self.state.get(origin, (0, EMPTY_ROOT))
        forced, said = self.forced.pop(0) if self.forced else (self.always, None)
        if forced == 409 or (forced is None and old != cosigned_size):
            return 409, "text/x.tlog.size", said or f"{cosigned_size}\n"
        if forced is not None:
            return forced, "text/plain", said or f"told to answer {forced}\n"
        if size == 0 and root != EMPTY_ROOT:
            return 422, "text/plain", "size 0 without the empty root\n"
        if old == 0 and proof:
            return 422, "text/plain", "a proof from size 0\n"
        if old == size and (root != cosigned_root or proof):
            return 422, "text/plain", "same size, other root\n"
        if 0 < old < size and not consistent(old, size, proof, cosigned_root, root):
            return 422, "text/plain", "the consistency proof does not verify\n"
        self.state[origin] = (size, root)
        key, id_ = self.key, key_id(self.name, 0x04, self.public_key)
        if self.impostor == "other-key":
            key = Ed25519PrivateKey.generate()
            id_ = key_id(self.name, 0x04, raw_public(key))
        elif self.impostor == "bad-signature":
            key = Ed25519PrivateKey.generate()
        return (
            200,
            "text/plain",
            cosignature_line(key, self.name, id_, checkpoint, int(time.time())),
        )

    def start(self) -> WitnessDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the specification recommends

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/double/add-checkpoint":
                    status, content_type, text = 404, "text/plain", "no such path\n"
                else:
                    status, content_type, text = double.answer(body)
                encoded = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> WitnessDouble:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
