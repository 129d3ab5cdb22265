"""Archives of purged events: Apache Parquet, one file a UTC month, and a manifest that makes
them checkable offline.

An archive of events ``first`` to ``last`` is a folder ``trail-<first>-<last>/`` on its
target (``archive_targets``):

- ``events-YYYY-MM.parquet``: the events of that month, in seq order; columns named as the
  audit API names them (``seq``, ``timestamp`` as a UTC timestamp in milliseconds,
  ``eventKind``, ``dataSourceId``, ``dataSourceName``, ``dataSourceType``, ``performedBy``,
  ``metadata`` as its JSON text). DuckDB, pandas, Spark and Trino read them as they are.
- ``manifest.json`` (written last: a folder without one is incomplete): each file's SHA-256
  and seq range, the tree's frontier before ``first``, its root at ``last``, a signed
  checkpoint of a larger tree and the consistency proof from ``last`` to it.

Checking one (``verify_archive``) needs only the files and the log's public key: the leaves
of the archived events, recomputed from their columns and folded onto the frontier, must give
the root at ``last``, which the proof must show inside the signed checkpoint.
"""

from __future__ import annotations

import hashlib
import heapq
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from dstrail.audit.archive_targets import ArchiveTarget
from dstrail.audit.checkpoints import verify_signature
from dstrail.audit.report import Finding, FindingKind
from dstrail.domain.retention import month_label
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import (
    DATA_SOURCE_ID,
    DATA_SOURCE_NAME,
    DATA_SOURCE_TYPE,
    ENCODING_VERSION,
    EVENT_KIND,
    LEAF_HASH,
    METADATA,
    PERFORMED_BY,
    SEQ,
    TS_MS,
    CheckpointRecord,
    SealedRow,
    StoredEvent,
    checkpoint_document,
    checkpoint_from_document,
    event_leaf,
    merkle,
)
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store import Store

ARCHIVE_FORMAT: Final = "dstrail-archive/v1"
MANIFEST: Final = "manifest.json"
CHUNK_ROWS: Final = 20_000

PARQUET_SCHEMA: Final = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("eventKind", pa.string(), nullable=False),
        pa.field("dataSourceId", pa.string(), nullable=False),
        pa.field("dataSourceName", pa.string(), nullable=False),
        pa.field("dataSourceType", pa.string(), nullable=False),
        pa.field("performedBy", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
    ]
)
"""The archive's columns, as the audit API names the fields (``metadata``: its JSON text)."""

# Where each Parquet column comes from in a stored row (``StoredEvent`` order).
_FROM_ROW: Final = {
    "seq": SEQ,
    "timestamp": TS_MS,
    "eventKind": EVENT_KIND,
    "dataSourceId": DATA_SOURCE_ID,
    "dataSourceName": DATA_SOURCE_NAME,
    "dataSourceType": DATA_SOURCE_TYPE,
    "performedBy": PERFORMED_BY,
    "metadata": METADATA,
}


class ArchiveInvalid(DstrailError):
    """An archive that does not prove what its manifest says (named in the message)."""


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """One month's Parquet file of an archive."""

    name: str
    month: str
    events: int
    first_seq: int
    last_seq: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Archive:
    """An archive as written or checked: where, which events, and its manifest's digest."""

    folder: str
    location: str
    first_seq: int
    last_seq: int
    manifest_sha256: str
    files: tuple[ArchivedFile, ...]
    checkpoint_size: int

    @property
    def events(self) -> int:
        """How many events it holds."""
        return self.last_seq - self.first_seq + 1


def folder_of(first: int, last: int) -> str:
    """The folder an archive of events ``first`` to ``last`` is written to."""
    return f"trail-{first:012d}-{last:012d}"


# -- writing ------------------------------------------------------------------------------------


class _MonthFiles:
    """Open Parquet writers, one a month, in a local work folder."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.ranges: dict[str, list[int]] = {}

    def add(self, rows: list[SealedRow]) -> None:
        by_month: dict[str, list[SealedRow]] = {}
        for row in rows:
            by_month.setdefault(month_label(row[TS_MS]), []).append(row)
        for month, month_rows in by_month.items():
            writer = self.writers.get(month)
            if writer is None:
                path = self.work / f"events-{month}.parquet"
                writer = pq.ParquetWriter(path, PARQUET_SCHEMA, compression="zstd")
                self.writers[month] = writer
                self.ranges[month] = [month_rows[0][SEQ], 0, 0]
            columns = {name: [row[i] for row in month_rows] for name, i in _FROM_ROW.items()}
            writer.write_table(pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA))
            span = self.ranges[month]
            span[1] = month_rows[-1][SEQ]
            span[2] += len(month_rows)

    def close(self) -> list[tuple[str, Path, int, int, int]]:
        """(month, path, first seq, last seq, events) of each file, in month order."""
        for writer in self.writers.values():
            writer.close()
        files = []
        for month in sorted(self.writers):
            first, last, events = self.ranges[month]
            files.append((month, self.work / f"events-{month}.parquet", first, last, events))
        return files


def write_archive(
    store: Store,
    target: ArchiveTarget,
    *,
    first: int,
    last: int,
    checkpoint: CheckpointRecord,
    now_ms: int,
) -> Archive:
    """Write events ``first`` to ``last`` to ``target`` with a manifest proving them inside
    ``checkpoint`` (of at least ``last`` events). Files first, the manifest last; a crash
    leaves a folder without a manifest, which is written again by the next purge."""
    if not 1 <= first <= last <= checkpoint.tree_size:
        raise DstrailError(f"cannot archive events {first}-{last} under checkpoint {checkpoint}")
    folder = folder_of(first, last)
    with tempfile.TemporaryDirectory(prefix="dstrail-archive-") as work_dir:
        work = Path(work_dir)
        months = _MonthFiles(work)
        with store.read() as tx:
            before = merkle.frontier_nodes(first - 1)
            stored = tx.integrity.nodes(set(before))
            frontier = [stored[node] for node in before]
            builder = merkle.FrontierBuilder.resume(first - 1, frontier)
            after, expected = first - 1, first
            while after < last:
                rows = tx.integrity.events_after(after, limit=min(CHUNK_ROWS, last - after))
                if not rows:
                    break
                for row in rows:
                    leaf = row[LEAF_HASH]
                    if row[SEQ] != expected or leaf is None:
                        raise DstrailError(
                            f"event {expected} is missing or has no leaf hash: run "
                            "`dstrail audit verify` before purging"
                        )
                    builder.add(bytes(leaf))
                    expected += 1
                months.add(rows)
                after = rows[-1][SEQ]
            if expected != last + 1:
                raise DstrailError(f"events {expected}-{last} are missing: nothing was archived")
            proof = tx.integrity.consistency_proof(last, checkpoint.tree_size)
        files = []
        for month, path, first_seq, last_seq, events in months.close():
            name = path.name
            target.put(f"{folder}/{name}", path)
            files.append(ArchivedFile(name, month, events, first_seq, last_seq, _sha256(path)))
        manifest = _manifest(
            first=first,
            last=last,
            frontier=frontier,
            root=builder.root(),
            checkpoint=checkpoint,
            proof=proof,
            files=files,
            now_ms=now_ms,
        )
        manifest_path = work / MANIFEST
        manifest_path.write_bytes(manifest)
        target.put(f"{folder}/{MANIFEST}", manifest_path)
    return Archive(
        folder=folder,
        location=target.location(folder),
        first_seq=first,
        last_seq=last,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        files=tuple(files),
        checkpoint_size=checkpoint.tree_size,
    )


def _manifest(
    *,
    first: int,
    last: int,
    frontier: list[bytes],
    root: bytes,
    checkpoint: CheckpointRecord,
    proof: list[bytes],
    files: list[ArchivedFile],
    now_ms: int,
) -> bytes:
    document: dict[str, Any] = {
        "format": ARCHIVE_FORMAT,
        "encoding": ENCODING_VERSION,
        "createdAt": format_ms(now_ms),
        "firstSeq": first,
        "lastSeq": last,
        "events": last - first + 1,
        "columns": PARQUET_SCHEMA.names,
        "treeBefore": {"size": first - 1, "frontier": [value.hex() for value in frontier]},
        "treeAtLast": {"size": last, "rootHash": root.hex()},
        "checkpoint": checkpoint_document(checkpoint),
        "consistencyProof": [value.hex() for value in proof],
        "files": [
            {
                "name": item.name,
                "month": item.month,
                "events": item.events,
                "firstSeq": item.first_seq,
                "lastSeq": item.last_seq,
                "sha256": item.sha256,
            }
            for item in files
        ],
    }
    if checkpoint.origin is not None:
        document["checkpointNote"] = checkpoint.note().text
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- checking -----------------------------------------------------------------------------------


def archive_folders(target: ArchiveTarget) -> list[str]:
    """The folders of complete archives (those with a manifest) on ``target``, oldest first."""
    suffix = f"/{MANIFEST}"
    return sorted(name[: -len(suffix)] for name in target.names(suffix))


def verify_archive(target: ArchiveTarget, folder: str, *, public_key: bytes) -> Archive:
    """Read an archive back and check it whole: every file's digest, every event in seq order
    with none missing, their leaves onto the manifest's frontier giving its root, and that
    root inside a checkpoint the log's key signed. ``ArchiveInvalid`` naming the first thing
    wrong; the archive as checked otherwise."""
    with tempfile.TemporaryDirectory(prefix="dstrail-verify-") as work_dir:
        work = Path(work_dir)
        manifest_path = work / MANIFEST
        target.fetch(f"{folder}/{MANIFEST}", manifest_path)
        raw = manifest_path.read_bytes()
        manifest = _parse_manifest(raw, where=target.location(f"{folder}/{MANIFEST}"))
        first, last = manifest.first, manifest.last
        for item in manifest.files:
            local = work / item.name
            target.fetch(f"{folder}/{item.name}", local)
            if _sha256(local) != item.sha256:
                raise ArchiveInvalid(f"{target.location(f'{folder}/{item.name}')}: its SHA-256 "
                                     "is not the one the manifest records")  # fmt: skip
        builder = merkle.FrontierBuilder.resume(first - 1, manifest.frontier)
        expected = first
        for event in _merged(work, manifest.files):
            if event.seq != expected:
                raise ArchiveInvalid(
                    f"{target.location(folder)}: event {expected} is missing"
                    if event.seq > expected
                    else f"{target.location(folder)}: event {event.seq} appears twice"
                )
            builder.add(event_leaf(event))
            expected += 1
        if expected != last + 1:
            raise ArchiveInvalid(f"{target.location(folder)}: events {expected}-{last} are missing")
        _check_proof(manifest, builder.root(), public_key, where=target.location(folder))
    return Archive(
        folder=folder,
        location=target.location(folder),
        first_seq=first,
        last_seq=last,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        files=manifest.files,
        checkpoint_size=manifest.checkpoint.tree_size,
    )


def verify_archives(
    target: ArchiveTarget, *, public_key: bytes, purged_through: int | None
) -> tuple[list[Archive], list[Finding]]:
    """Check every archive on ``target``; with ``purged_through`` (a store's boundary), also
    that together they hold events 1 to it. Returns the archives that verify and findings."""
    checked: list[Archive] = []
    findings: list[Finding] = []
    for folder in archive_folders(target):
        try:
            checked.append(verify_archive(target, folder, public_key=public_key))
        except DstrailError as error:
            findings.append(Finding(FindingKind.ARCHIVE_INVALID, _first_of(folder), error.message))
    if purged_through:
        covered = 0
        for archive in sorted(checked, key=lambda a: a.first_seq):
            if archive.first_seq > covered + 1:
                break
            covered = max(covered, archive.last_seq)
        if covered < purged_through:
            message = (
                f"events {covered + 1}-{purged_through} were purged but no archive on "
                f"{target.url} that verifies holds them"
            )
            findings.append(Finding(FindingKind.ARCHIVE_MISSING, covered + 1, message))
    return checked, findings


def _first_of(folder: str) -> int:
    """The first seq a folder's name claims (0 when it does not parse)."""
    parts = folder.rsplit("/", 1)[-1].split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


@dataclass(frozen=True, slots=True)
class _Manifest:
    first: int
    last: int
    frontier: list[bytes]
    root: bytes
    checkpoint: CheckpointRecord
    proof: list[bytes]
    files: tuple[ArchivedFile, ...]


def _parse_manifest(raw: bytes, *, where: str) -> _Manifest:
    try:
        document = orjson.loads(raw)
        if document.get("format") != ARCHIVE_FORMAT:
            raise ArchiveInvalid(f"{where}: not a {ARCHIVE_FORMAT} manifest")
        files = tuple(
            ArchivedFile(
                name=str(item["name"]),
                month=str(item["month"]),
                events=int(item["events"]),
                first_seq=int(item["firstSeq"]),
                last_seq=int(item["lastSeq"]),
                sha256=str(item["sha256"]),
            )
            for item in document["files"]
        )
        if any("/" in item.name or item.name.startswith(".") for item in files):
            raise ArchiveInvalid(f"{where}: a file name leaves the archive's folder")
        return _Manifest(
            first=int(document["firstSeq"]),
            last=int(document["lastSeq"]),
            frontier=[bytes.fromhex(v) for v in document["treeBefore"]["frontier"]],
            root=bytes.fromhex(document["treeAtLast"]["rootHash"]),
            checkpoint=checkpoint_from_document(document["checkpoint"]),
            proof=[bytes.fromhex(v) for v in document["consistencyProof"]],
            files=files,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ArchiveInvalid(f"{where}: the manifest does not parse ({error})") from None
    except InvalidInput as error:
        raise ArchiveInvalid(f"{where}: {error.message}") from None


def _merged(work: Path, files: tuple[ArchivedFile, ...]) -> Iterator[StoredEvent]:
    """The events of every file in seq order (each file is; months may interleave)."""
    return heapq.merge(*(_events_of(work / item.name) for item in files), key=lambda e: e.seq)


def _events_of(path: Path) -> Iterator[StoredEvent]:
    parquet = pq.ParquetFile(path)
    if not parquet.schema_arrow.equals(PARQUET_SCHEMA):
        raise ArchiveInvalid(f"{path.name}: its columns are not the archive's columns")
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        columns = batch.to_pydict()
        timestamps = batch.column("timestamp").cast(pa.int64()).to_pylist()
        for i, seq in enumerate(columns["seq"]):
            yield StoredEvent(
                data_source_id=columns["dataSourceId"][i],
                data_source_name=columns["dataSourceName"][i],
                data_source_type=columns["dataSourceType"][i],
                event_kind=columns["eventKind"][i],
                metadata=columns["metadata"][i],
                performed_by=columns["performedBy"][i],
                ts_ms=timestamps[i],
                seq=seq,
            )


def _check_proof(manifest: _Manifest, root: bytes, public_key: bytes, *, where: str) -> None:
    if root != manifest.root:
        raise ArchiveInvalid(
            f"{where}: the archived events hash to another root than the manifest records"
        )
    checkpoint = manifest.checkpoint
    if not verify_signature(checkpoint, public_key):
        raise ArchiveInvalid(f"{where}: its checkpoint does not verify under the log's key")
    if not merkle.verify_consistency(
        manifest.last, checkpoint.tree_size, manifest.proof, root, checkpoint.root_hash
    ):
        raise ArchiveInvalid(
            f"{where}: the consistency proof does not show events 1-{manifest.last} inside "
            f"the signed checkpoint of {checkpoint.tree_size} events"
        )
