"""The trail as C2SP tlog-tiles (c2sp.org/tlog-tiles) from the real app, on both databases:
tile bytes against the store's Merkle code and against a tree hash computed here with hashlib
only, entry bundles against the events, the path rules, 404s, cache headers and auth."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from dstrail.api.tlog import accepts_gzip
from dstrail.app import create_app
from dstrail.audit import tiles
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.trail import EVENT_COLUMNS, StoredEvent, canonical_event, note
from dstrail.domain.users import Role
from dstrail.settings import Settings
from tests.audit.test_integrity_tamper import attack
from tests.integrity.trails import (
    audit_path,
    bulk_load,
    event_rows,
    hashes_of,
    record_events,
    sha256,
    stored_leaves,
    tree_hash,
)
from tests.support import Login, SettableClock, make_user, new_event

EVENTS = 600
PREFIX = "/api/dstrail/v1/tlog"
IMMUTABLE = "max-age=31536000, immutable"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Checkpoints every 250 events: sizes 1, 250 and 500 of a trail of about 600."""
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, checkpoint_every_events=250
    )


@pytest.fixture
def size(dstrail: Dstrail, admin: Login) -> int:
    """The admin's own events, then ``EVENTS`` more: the trail's size (between 512 and 768)."""
    return record_events(dstrail, EVENTS)


def get(client: TestClient, path: str, login: Login | None, **headers: str) -> bytes:
    """The body of a 200 answer to ``GET <prefix>/<path>``."""
    response = client.get(
        f"{PREFIX}/{path}", headers={**(login.headers if login else {}), **headers}
    )
    assert response.status_code == 200, (path, response.text)
    return response.content


def entries_of(bundle: bytes) -> list[bytes]:
    """An entry bundle's entries (big-endian uint16 length, then the bytes)."""
    entries = []
    while bundle:
        (length,) = struct.unpack(">H", bundle[:2])
        entries.append(bundle[2 : 2 + length])
        bundle = bundle[2 + length :]
    return entries


def tiles_for(size: int) -> list[str]:
    """The level 0 tiles of a tree of ``size`` leaves (below 65,536): full, then partial."""
    paths = [tiles.TileId(0, n).path() for n in range(size // 256)]
    if size % 256:
        paths.append(tiles.TileId(0, size // 256, size % 256).path())
    return paths


def test_level_0_tiles_are_the_events_leaf_hashes(
    client: TestClient, dstrail: Dstrail, admin: Login, size: int
) -> None:
    assert 512 < size < 768
    leaves = stored_leaves(dstrail)
    served = b"".join(get(client, path, admin) for path in tiles_for(size))
    assert tiles_for(size) == ["tile/0/000", "tile/0/001", f"tile/0/002.p/{size - 512}"]
    assert hashes_of(served) == leaves
    # ... and the leaves are SHA-256(0x00 || entry) of the entry bundles' entries.
    entries = [
        entry
        for n, width in ((0, 256), (1, 256), (2, size % 256))
        for entry in entries_of(get(client, tiles.TileId(None, n, width).path(), admin))
    ]
    assert [sha256(b"\x00" + entry) for entry in entries] == leaves


def test_the_tiles_of_each_checkpoint_lead_to_its_root(
    client: TestClient, dstrail: Dstrail, admin: Login, size: int
) -> None:
    """Every signed size's partial tiles are still served once the full tile exists (a
    client checking an old checkpoint needs them)."""
    with dstrail.store.read() as tx:
        checkpoints = tx.integrity.checkpoints()
        roots = {c.tree_size: tx.integrity.root(c.tree_size) for c in checkpoints}
    assert [c.tree_size for c in checkpoints] == [1, 250, 500]
    for record in checkpoints:
        leaves = hashes_of(b"".join(get(client, p, admin) for p in tiles_for(record.tree_size)))
        assert len(leaves) == record.tree_size
        assert tree_hash(leaves) == record.root_hash == roots[record.tree_size]
    assert get(client, "tile/0/000.p/250", admin) == get(client, "tile/0/000", admin)[: 250 * 32]
    # the head's partial tile, past the last checkpoint, too
    leaves = hashes_of(b"".join(get(client, p, admin) for p in tiles_for(size)))
    with dstrail.store.read() as tx:
        assert tree_hash(leaves) == tx.integrity.root(size)
        # and the store's inclusion proofs are those the tiles give
        for seq in (1, 2, 255, 256, 257, 500):
            assert tx.integrity.inclusion_proof(seq, size) == audit_path(seq - 1, leaves)
            assert tx.integrity.inclusion_proof(seq, 500) == audit_path(seq - 1, leaves[:500])
        assert tx.integrity.inclusion_proof(size, size) == audit_path(size - 1, leaves)


def test_a_level_1_partial_tile_holds_the_hashes_of_full_level_0_tiles(
    client: TestClient, dstrail: Dstrail, admin: Login, size: int
) -> None:
    leaves = stored_leaves(dstrail)
    level_1 = hashes_of(get(client, "tile/1/000.p/2", admin))
    assert level_1 == [tree_hash(leaves[:256]), tree_hash(leaves[256:512])]
    assert level_1 == [tree_hash(hashes_of(get(client, f"tile/0/00{n}", admin))) for n in (0, 1)]
    assert hashes_of(get(client, "tile/1/000.p/1", admin)) == level_1[:1]
    with dstrail.store.read() as tx:
        assert tx.integrity.nodes({(8, 0), (8, 1)}) == {(8, 0): level_1[0], (8, 1): level_1[1]}
        assert tx.integrity.root(512) == tree_hash(leaves[:512])


def test_a_full_level_1_tile_and_the_level_2_tile_above_it(
    client: TestClient, dstrail: Dstrail
) -> None:
    """A tree of 65,536 events: 256 full level 0 tiles, one full level 1 tile and a partial
    level 2 tile of width 1 (the specification's example of a tree of 256, one level up)."""
    count = bulk_load(dstrail, 65_536)
    leaves = stored_leaves(dstrail)
    assert len(leaves) == count
    with dstrail.store.read() as tx:
        root = tx.integrity.root(count)
    # made after the load: its own event is number 65,537
    login = make_user(dstrail, "tile-auditor", Role.SYS_ADMIN)
    level_1 = hashes_of(get(client, "tile/1/000", login))
    assert level_1 == [tree_hash(leaves[i * 256 : (i + 1) * 256]) for i in range(256)]
    assert hashes_of(get(client, "tile/0/255", login)) == leaves[-256:]
    assert hashes_of(get(client, "tile/2/000.p/1", login)) == [tree_hash(level_1)] == [root]
    assert hashes_of(get(client, "tile/1/000.p/17", login)) == level_1[:17]
    for beyond in ("tile/1/001.p/1", "tile/2/000", "tile/3/000.p/1", "tile/0/x001/000.p/1"):
        assert client.get(f"{PREFIX}/{beyond}", headers=login.headers).status_code == 404


def test_entry_bundles_hold_each_events_canonical_encoding(
    client: TestClient, dstrail: Dstrail, admin: Login, size: int
) -> None:
    expected = [
        canonical_event(StoredEvent(*(row[name] for name in EVENT_COLUMNS)))
        for row in event_rows(dstrail)
    ]
    full = entries_of(get(client, "tile/entries/001", admin))
    partial = entries_of(get(client, f"tile/entries/002.p/{size % 256}", admin))
    assert full == expected[256:512]
    assert partial == expected[512:]
    assert orjson.loads(partial[-1])["seq"] == size
    assert entries_of(get(client, "tile/entries/002.p/3", admin)) == expected[512:515]


def test_entry_bundles_are_gzip_compressed_for_clients_that_accept_it(
    client: TestClient, admin: Login, size: int
) -> None:
    with client.stream("GET", f"{PREFIX}/tile/entries/000", headers={
        **admin.headers, "Accept-Encoding": "gzip"}) as response:  # fmt: skip
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
    identity = client.get(
        f"{PREFIX}/tile/entries/000", headers={**admin.headers, "Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in identity.headers
    assert gzip.decompress(raw) == identity.content
    assert len(entries_of(identity.content)) == 256
    assert len(raw) < len(identity.content) / 3


@pytest.mark.parametrize(
    ("header", "accepted"),
    [("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.5", True),
     ("*", True), ("identity", False), ("", False), ("gzip;q=0", False), ("GZIP", True),
     ("gzip;q=zero", False)],
)  # fmt: skip
def test_accept_encoding(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_an_entry_too_long_for_a_bundle_is_refused_saying_why(
    client: TestClient, dstrail: Dstrail, admin: Login, clock: SettableClock
) -> None:
    with dstrail.store.write() as tx:
        seq = tx.audit.append(new_event(clock(), metadata={"objectKey": "k" * 70_000}))
    response = client.get(f"{PREFIX}/tile/entries/000.p/{seq}", headers=admin.headers)
    assert response.status_code == 409, response.text
    assert "65,535 bytes" in response.json()["errors"][0]
    assert f"event {seq} is 70," in response.json()["errors"][0]
    # Its leaf is still in the hash tiles, and the bundle of the size before it is served.
    assert len(get(client, f"tile/0/000.p/{seq}", admin)) == 32 * seq
    assert len(entries_of(get(client, f"tile/entries/000.p/{seq - 1}", admin))) == seq - 1


BAD_PATHS = [
    "tile/64/000", "tile/01/000", "tile/-1/000", "tile/a/000", "tile/0/00", "tile/0/0000",
    "tile/0/x000/001", "tile/0/001/000", "tile/0/x001", "tile/0/X001/000", "tile/0/000.p/0",
    "tile/0/000.p/256", "tile/0/000.p/007", "tile/0/000.p/", "tile/0/000.p", "tile/0/",
    "tile/0", "tile/", "tile/0/000/", "tile/0/000.p/1/2", "tile/0/ 000", "tile/0/000.p/1.5",
    "tile/entries/00", "tile/entries/000.p/300", "tile/entries/x000/000", "tile/entries/",
    "tile/entries/000.p/-1", "tile/0/x001/x002/x003/x004/x005/x006/x007/x008/0009",
]  # fmt: skip


def test_malformed_tile_paths_are_400_saying_what_is_accepted(
    client: TestClient, admin: Login, size: int
) -> None:
    for path in BAD_PATHS:
        response = client.get(f"{PREFIX}/{path}", headers=admin.headers)
        assert response.status_code == 400, (path, response.status_code, response.text)
        message = response.json()["errors"][0]
        assert "accepted: tile/" in message, (path, message)


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(0, 0, 256), (0, 5, 1), (0, 1234067, 256), (1, 1000, 17), (63, 999_999, 255),
     (None, 0, 256), (None, 1_000_000, 3)],
)  # fmt: skip
def test_a_tile_path_reads_back_as_the_same_tile(level: int | None, index: int, width: int) -> None:
    tile = tiles.TileId(level, index, width)
    path = tile.path()
    parsed = (
        tiles.parse_entry_bundle(path.removeprefix("tile/entries/"))
        if level is None
        else tiles.parse_hash_tile(path.removeprefix("tile/"))
    )
    assert parsed == tile
    assert tiles.TileId(0, 1234067).path() == "tile/0/x001/x234/067"


def test_tiles_the_trail_does_not_have_are_404(client: TestClient, admin: Login, size: int) -> None:
    width = size % 256
    beyond = [
        "tile/0/003", "tile/0/002", f"tile/0/002.p/{width + 1}", "tile/1/000",
        "tile/1/000.p/3", "tile/2/000.p/1", "tile/63/000.p/1", "tile/entries/002",
        f"tile/entries/002.p/{width + 1}", "tile/0/x001/x000/x000/x000/x000/x000/000",
        "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
    ]  # fmt: skip
    for path in beyond:
        response = client.get(f"{PREFIX}/{path}", headers=admin.headers)
        assert response.status_code == 404, (path, response.text)
        assert "beyond" in response.json()["errors"][0]


def test_cache_headers_and_content_types(client: TestClient, admin: Login, size: int) -> None:
    def headers(path: str) -> tuple[str, str]:
        response = client.get(f"{PREFIX}/{path}", headers=admin.headers)
        assert response.status_code == 200, response.text
        return response.headers["cache-control"], response.headers["content-type"]

    octets = "application/octet-stream"
    assert headers("tile/0/001") == (f"private, {IMMUTABLE}", octets)
    assert headers("tile/0/002.p/3") == ("private, max-age=60", octets)
    assert headers("tile/entries/000") == (f"private, {IMMUTABLE}", octets)
    assert headers("tile/entries/002.p/3") == ("private, max-age=60", octets)
    assert headers("checkpoint") == ("private, no-cache", "text/plain; charset=utf-8")


@pytest.fixture
def public_client(dstrail: Dstrail, settings: Settings) -> Iterator[TestClient]:
    """The same trail served by a dstrail with ``tlog_public``."""
    public = open_dstrail(
        settings.model_copy(update={"tlog_public": True}), clock=dstrail.clock, migrate=False
    )
    try:
        with TestClient(create_app(public)) as test_client:
            yield test_client
    finally:
        public.store.dispose()


def test_everything_needs_an_audit_reader_by_default(
    client: TestClient, admin: Login, alice: Login, size: int
) -> None:
    for path in ("checkpoint", "tile/0/000", "tile/1/000.p/2", "tile/entries/000"):
        assert client.get(f"{PREFIX}/{path}").status_code == 401, path
        assert client.get(f"{PREFIX}/{path}", headers=alice.headers).status_code == 403, path
        assert client.get(f"{PREFIX}/{path}", headers=admin.headers).status_code == 200, path


def test_tlog_public_publishes_the_checkpoint_and_hash_tiles_but_not_entries(
    public_client: TestClient, dstrail: Dstrail, admin: Login, alice: Login, size: int
) -> None:
    checkpoint = public_client.get(f"{PREFIX}/checkpoint")
    assert checkpoint.status_code == 200
    parsed = note.parse_checkpoint(note.parse_note(checkpoint.text).text)
    assert parsed.tree_size == 500
    tile = public_client.get(f"{PREFIX}/tile/0/000")
    assert tile.status_code == 200
    assert tile.headers["cache-control"] == f"public, {IMMUTABLE}"
    assert hashes_of(tile.content) == stored_leaves(dstrail)[:256]
    assert public_client.get(f"{PREFIX}/tile/entries/000").status_code == 401
    assert public_client.get(f"{PREFIX}/tile/entries/000", headers=alice.headers).status_code == 403
    bundle = public_client.get(f"{PREFIX}/tile/entries/000", headers=admin.headers)
    assert bundle.status_code == 200
    assert bundle.headers["cache-control"] == f"private, {IMMUTABLE}"


def test_a_store_missing_an_event_says_so_rather_than_serve_a_wrong_tile(
    client: TestClient, dstrail: Dstrail, admin: Login, size: int
) -> None:
    """Rows deleted behind dstrail's back, leaving a hole: the tiles and bundles over it are
    refused with the reason (a server-side failure: the store is damaged), others served."""
    attack(dstrail, "DELETE FROM audit_events WHERE seq = 300")
    for path, what in (("tile/0/001", "misses node (level 0, index 299)"),
                       ("tile/entries/001", "misses event 300")):  # fmt: skip
        response = client.get(f"{PREFIX}/{path}", headers=admin.headers)
        assert response.status_code == 500, (path, response.text)
        assert what in response.json()["errors"][0], path
        assert "dstrail audit verify" in response.json()["errors"][0]
    assert len(get(client, "tile/0/000", admin)) == 8192
    # Level 1 hashes are kept by events 256 and 512, which are still there.
    assert len(get(client, "tile/1/000.p/2", admin)) == 64
