"""The trail as C2SP ``tlog-tiles`` (c2sp.org/tlog-tiles): hash tiles and entry bundles, read
from the hashes the store keeps, for any tlog client (Go's ``sumdb/tlog``, Tessera's...).

- A *hash tile* ``tile/<L>/<N>`` holds 256 consecutive Merkle tree hashes of level ``8 * L``:
  hash ``i`` is the perfect subtree (``8 * L``, ``N * 256 + i``) of RFC 6962, i.e. the tree
  hash of the leaves ``[(N * 256 + i) * 256**L, (N * 256 + i + 1) * 256**L)``. Level 0 tiles
  are the events' leaf hashes (``audit_events.leaf_hash``), higher levels the subtree hashes
  the store keeps in the event that completes each subtree (``IntegrityRepository.nodes``).
- An *entry bundle* ``tile/entries/<N>`` holds the events of leaves ``N * 256`` onwards, each as
  a big-endian uint16 length then its canonical encoding (``canonical_event``, the bytes whose
  ``SHA-256(0x00 || bytes)`` is its leaf), re-encoded from the event's stored columns: an
  event edited behind dstrail's back no longer hashes to its tile's leaf.
- ``<N>`` is written in 3-digit path elements, all but the last prefixed with ``x``
  (``x001/x234/067`` is 1234067); ``.p/<W>`` names a partial tile of ``W`` (1 to 255) hashes.
  Paths are accepted only in this one canonical form (no leading zeros, no ``x000`` first
  element), so each tile has one URL and caches hold one copy.

Which tiles exist: a full tile once the trail has all its leaves, ``(N + 1) * 256**(L + 1)``.
A partial tile of width ``W`` once the trail has ``N * 256**(L + 1) + W * 256**L`` leaves:
that is the partial tile of the tree of exactly that size (``floor(size / 256**L) mod 256 ==
W``), and its ``W`` hashes are those of perfect subtrees, which never change. So every partial
tile of every size the trail has had is served, in particular of every size a checkpoint was
signed at (which the specification requires), and dstrail deletes none once the full tile
exists (which it allows): a client checking an old checkpoint still finds its tiles. The size
is the trail's head, which may be ahead of the latest checkpoint; clients fetch only the tiles
of a checkpoint they verified. Anything else is ``NotFound``; a path not in the form above is
``InvalidInput`` naming what is accepted.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

from dstrail.domain.trail import MAX_SEQ, SEQ, canonical_event
from dstrail.errors import Conflict, DstrailError, InvalidInput, NotFound
from dstrail.store import Repositories

TILE_HEIGHT: Final = 8
"""Levels of the Merkle tree a tile spans (the specification's, fixed)."""
TILE_WIDTH: Final = 1 << TILE_HEIGHT
"""Hashes (or entries) in a full tile: 256."""
MAX_LEVEL: Final = 63
MAX_ENTRY_BYTES: Final = 0xFFFF
"""The longest entry a bundle can hold (its length is a uint16)."""
_MAX_INDEX_ELEMENTS: Final = 7
"""Path elements of ``<N>`` past which no tile can exist (10**21 tiles > 2**63 events)."""

HASH_TILE_FORM: Final = (
    "tile/<L>/<N>[.p/<W>]: L 0 to 63, N in 3-digit path elements all but the last prefixed "
    "with x (1234067 is x001/x234/067), W 1 to 255, decimal without leading zeros"
)
ENTRY_BUNDLE_FORM: Final = (
    "tile/entries/<N>[.p/<W>]: N in 3-digit path elements all but the last prefixed with x "
    "(1234067 is x001/x234/067), W 1 to 255, decimal without leading zeros"
)

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_INNER_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST_ELEMENT = re.compile(r"[0-9]{3}")


class EntryTooLong(Conflict):
    """An event whose canonical encoding does not fit an entry bundle's uint16 length."""


@dataclass(frozen=True, slots=True)
class TileId:
    """A hash tile (``level`` 0 to 63) or an entry bundle (``level`` None), its index within
    its level and its width (256: full)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def full(self) -> bool:
        """Whether the tile holds all 256 hashes (or entries)."""
        return self.width == TILE_WIDTH

    @property
    def hash_level(self) -> int:
        """The Merkle tree level of its hashes (entry bundles: the leaves, 0)."""
        return TILE_HEIGHT * (self.level or 0)

    def path(self) -> str:
        """Its path under the log's prefix, in the canonical form."""
        elements = [f"{self.index % 1000:03d}"]
        rest = self.index // 1000
        while rest:
            elements.append(f"x{rest % 1000:03d}")
            rest //= 1000
        level = "entries" if self.level is None else str(self.level)
        partial = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{'/'.join(reversed(elements))}{partial}"

    def leaves_needed(self) -> int:
        """The tree size from which the tile exists."""
        return (self.index * TILE_WIDTH + self.width) << self.hash_level

    def first_hash(self) -> int:
        """The index, within its level, of the tile's first hash."""
        return self.index * TILE_WIDTH


def parse_hash_tile(path: str) -> TileId:
    """The hash tile of ``<L>/<N>[.p/<W>]`` (the path after ``tile/``); ``InvalidInput``
    naming the accepted form."""
    level_text, _, rest = path.partition("/")
    if not _LEVEL.fullmatch(level_text) or int(level_text) > MAX_LEVEL:
        raise InvalidInput(
            f"tile level {level_text[:20]!r} is not accepted; accepted: {HASH_TILE_FORM}"
        )
    index, width = _index_and_width(rest, form=HASH_TILE_FORM)
    return TileId(level=int(level_text), index=index, width=width)


def parse_entry_bundle(path: str) -> TileId:
    """The entry bundle of ``<N>[.p/<W>]`` (the path after ``tile/entries/``)."""
    index, width = _index_and_width(path, form=ENTRY_BUNDLE_FORM)
    return TileId(level=None, index=index, width=width)


def _index_and_width(path: str, *, form: str) -> tuple[int, int]:
    elements = path.split("/")
    width = TILE_WIDTH
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        width_text = elements.pop()
        elements[-1] = elements[-1][: -len(".p")]
        if not _WIDTH.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
            raise InvalidInput(
                f"partial tile width {width_text[:20]!r} is not accepted; accepted: {form}"
            )
        width = int(width_text)
    *inner, last = elements
    well_formed = (
        _LAST_ELEMENT.fullmatch(last) is not None
        and all(_INNER_ELEMENT.fullmatch(element) for element in inner)
        and (not inner or inner[0] != "x000")
    )
    if not well_formed:
        raise InvalidInput(f"tile index {path[:80]!r} is not accepted; accepted: {form}")
    if len(elements) > _MAX_INDEX_ELEMENTS:
        raise NotFound(f"tile index {path[:80]!r} is beyond any trail (at most 2**63 events)")
    index = 0
    for element in elements:
        index = index * 1000 + int(element.removeprefix("x"))
    return index, width


def _require_in_tree(tx: Repositories, tile: TileId) -> None:
    """``NotFound`` unless the trail has every leaf the tile covers."""
    size, _ = tx.integrity.head()
    needed = tile.leaves_needed()
    if needed > MAX_SEQ:
        raise NotFound(f"{tile.path()} is beyond any trail (at most 2**63 - 1 events)")
    if needed > size:
        raise NotFound(
            f"{tile.path()} is beyond the trail: it exists from {needed:,} events on and the "
            f"trail has {size:,}"
        )


def hash_tile(tx: Repositories, tile: TileId) -> bytes:
    """The tile's ``32 * width`` bytes: its hashes, read from the store; ``NotFound`` when
    the trail does not have them (yet)."""
    assert tile.level is not None, "an entry bundle is not a hash tile"
    _require_in_tree(tx, tile)
    level, first = tile.hash_level, tile.first_hash()
    wanted = [(level, first + offset) for offset in range(tile.width)]
    stored = tx.integrity.nodes(set(wanted))
    missing = [node for node in wanted if node not in stored]
    if missing:
        level, index = missing[0]
        raise DstrailError(
            f"the Merkle tree misses node (level {level}, index {index}) of {tile.path()}: "
            "the store was changed around dstrail; run `dstrail audit verify`"
        )
    return b"".join(stored[node] for node in wanted)


def entry_bundle(tx: Repositories, tile: TileId) -> bytes:
    """The bundle's entries: for each event, its canonical encoding's length (uint16, big
    endian) then the encoding; ``NotFound`` when the trail does not have them (yet),
    ``EntryTooLong`` for an event of more than 65,535 bytes."""
    assert tile.level is None, "a hash tile is not an entry bundle"
    _require_in_tree(tx, tile)
    first_seq = tile.first_hash() + 1
    retention = tx.retention.state()
    if first_seq <= retention.purge_through:
        where = retention.last_archive or "named by the AuditTrailPurged events"
        raise NotFound(
            f"{tile.path()}: events 1-{retention.purge_through} were purged by the retention "
            f"policy; their bodies are in the archive ({where}); their hash tiles are served"
        )
    rows = tx.integrity.events_after(first_seq - 1, limit=tile.width)
    parts: list[bytes] = []
    for expected_seq, row in enumerate(rows, start=first_seq):
        seq = row[SEQ]
        if seq != expected_seq:
            break
        entry = canonical_event(row[:8])
        if len(entry) > MAX_ENTRY_BYTES:
            raise EntryTooLong(
                f"event {seq} is {len(entry):,} bytes encoded; a C2SP entry bundle holds "
                f"entries of at most {MAX_ENTRY_BYTES:,} bytes, so {tile.path()} cannot be "
                "served: read the event from /api/datasource/v1/audit/integrity/inclusion"
            )
        parts.append(struct.pack(">H", len(entry)) + entry)
    if len(parts) != tile.width:
        missing_seq = first_seq + len(parts)
        raise DstrailError(
            f"the trail misses event {missing_seq} of {tile.path()}: the store was changed "
            "around dstrail; run `dstrail audit verify`"
        )
    return b"".join(parts)
