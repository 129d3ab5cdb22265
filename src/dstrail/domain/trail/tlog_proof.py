"""C2SP ``tlog-proof``: an offline proof that an entry is in a transparency log, as text.

::

    c2sp.org/tlog-proof@v1
    extra <base64 of the event's canonical encoding>
    index <the leaf index: the event's seq - 1>
    <base64 of each hash of the RFC 6962 inclusion proof, the leaf's sibling first>
    <a blank line>
    <the checkpoint note, verbatim, with its signature and cosignature lines>

For dstrail the ``extra`` is the event itself (``encoding.canonical_event``): its leaf is
``SHA-256(0x00 || extra)``, so the proof needs nothing else to be checked. The extra is not
authenticated by itself; it is once its leaf is proven to be in a signed tree.

Pure: no keys, no I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from dstrail.domain.trail.document import API_FIELDS, row_of_document
from dstrail.domain.trail.encoding import canonical_event
from dstrail.domain.trail.event import MAX_SEQ, EventRow
from dstrail.domain.trail.merkle import HASH_SIZE
from dstrail.errors import DstrailError, InvalidInput

HEADER: Final = "c2sp.org/tlog-proof@v1"
EXTENSION: Final = ".tlog-proof"
"""The file extension the specification suggests."""
MAX_PROOF_LINES: Final = 63
"""An inclusion proof in a tree of at most 2**63 leaves has at most 63 hashes."""


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed (or made) proof: the extra data, the leaf index, the inclusion proof and the
    checkpoint note's text as given."""

    index: int
    path: tuple[bytes, ...]
    note: str
    extra: bytes | None = None

    def encode(self) -> str:
        """The proof as text (ends with the note's last signature line and its newline)."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(node).decode() for node in self.path)
        return "\n".join(lines) + "\n\n" + self.note


def _decimal(text: str, *, field: str) -> int:
    if not (text.isascii() and text.isdigit()) or (text != "0" and text.startswith("0")):
        raise InvalidInput(f"tlog-proof: {field} {text[:40]!r} is not a decimal number")
    value = int(text)
    if value >= MAX_SEQ:
        raise InvalidInput(f"tlog-proof: {field} {value} is too large")
    return value


def _base64(text: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"tlog-proof: {what} is not base64: {text[:80]!r}") from None


def parse_tlog_proof(text: str) -> TlogProof:
    """A ``c2sp.org/tlog-proof@v1`` proof; ``InvalidInput`` naming the line that is wrong.
    The note after the blank line is kept as given (``note.parse_note`` reads it)."""
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise InvalidInput(
            "tlog-proof: expected the header, index and proof lines, a blank line, then the "
            "checkpoint note"
        )
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise InvalidInput(f"tlog-proof: the first line is not {HEADER!r}")
    rest = lines[1:]
    extra: bytes | None = None
    if rest and rest[0].startswith("extra "):
        extra = _base64(rest.pop(0).removeprefix("extra "), what="the extra line")
    if not rest or not rest[0].startswith("index "):
        raise InvalidInput("tlog-proof: expected an 'index <n>' line after the header (and extra)")
    index = _decimal(rest.pop(0).removeprefix("index "), field="index")
    if len(rest) > MAX_PROOF_LINES:
        raise InvalidInput(f"tlog-proof: more than {MAX_PROOF_LINES} inclusion proof lines")
    path = []
    for line in rest:
        node = _base64(line, what="an inclusion proof line")
        if len(node) != HASH_SIZE:
            raise InvalidInput(f"tlog-proof: an inclusion proof line is not 32 bytes: {line!r}")
        path.append(node)
    return TlogProof(index=index, path=tuple(path), note=note, extra=extra)


def event_proof(
    event: EventRow, *, path: Sequence[bytes], note: str, metadata: dict[str, Any] | None = None
) -> TlogProof:
    """The proof of a stored event: its canonical encoding as the extra, leaf ``seq - 1``."""
    seq = event[-1]
    return TlogProof(
        index=seq - 1,
        path=tuple(path),
        note=note,
        extra=canonical_event(event, metadata=metadata),
    )


def event_of_extra(extra: bytes) -> tuple[EventRow, dict[str, Any]]:
    """The event a proof's extra encodes, and its document (the seven fields and ``seq``);
    ``InvalidInput`` unless the extra is exactly the canonical encoding of that event
    (``dstrail-event/v1``), so that its leaf is the event's."""
    try:
        decoded = orjson.loads(extra)
        if not isinstance(decoded, dict):
            raise InvalidInput("not a JSON object")
        seq = decoded["seq"]
        if not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            raise InvalidInput(f"seq {seq!r} is not a sequence number")
        row = row_of_document(decoded, seq)
        again = canonical_event(row)
    except (orjson.JSONDecodeError, KeyError, TypeError, DstrailError) as error:
        reason = error.message if isinstance(error, DstrailError) else repr(error)
        raise InvalidInput(f"the extra is not a dstrail-event/v1 encoding: {reason}") from None
    if again != extra:
        raise InvalidInput("the extra is not the canonical dstrail-event/v1 encoding of its event")
    document = {name: decoded[name] for name in API_FIELDS}
    document["seq"] = seq
    return row, document
