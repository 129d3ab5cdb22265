"""Files of ``DatasetConfig`` data sources, kept under ``<data dir>/datasets/<id>/``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from dstrail.errors import DstrailError, InvalidInput, NotFound
from dstrail.services.access import check_object_key


def dataset_root(data_dir: Path, data_source_id: str) -> Path:
    """The directory of one data source's files."""
    if not data_source_id.isalnum():
        raise NotFound(f"no data source with id {data_source_id!r}")
    return data_dir.resolve() / "datasets" / data_source_id


def file_path(data_dir: Path, data_source_id: str, key: str) -> Path:
    """Where ``key`` lives; ``InvalidInput`` for keys that would leave the data source's root."""
    root = dataset_root(data_dir, data_source_id)
    path = (root / check_object_key(key)).resolve()
    if not path.is_relative_to(root):
        raise InvalidInput(f"objectKey: {key!r} leaves the data source")
    return path


def list_keys(data_dir: Path, data_source_id: str, prefix: str, page_size: int) -> list[str]:
    """Keys (``/``-separated, sorted) that start with ``prefix``, at most ``page_size``."""
    root = dataset_root(data_dir, data_source_id)
    if not root.is_dir():
        return []
    keys = []
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            if name.startswith(".dstrail-upload-"):
                continue
            key = (Path(directory) / name).relative_to(root).as_posix()
            if key.startswith(prefix):
                keys.append(_text_key(key))
    keys.sort()
    return keys[:page_size]


def _text_key(key: str) -> str:
    """A key the client can read; a file name that is not UTF-8 (written to the folder by
    something else) fails the listing, naming it, rather than being left out unseen."""
    try:
        key.encode()
    except UnicodeEncodeError:
        shown = key.encode(errors="surrogateescape").decode(errors="backslashreplace")
        raise DstrailError(
            f"Error listing files: the file name {shown!r} is not UTF-8; rename it in the "
            "dataset's folder"
        ) from None
    return key


async def write_file(path: Path, chunks: AsyncIterator[bytes]) -> int:
    """Write a stream to ``path`` atomically (temporary file, then rename); bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise InvalidInput(f"objectKey: {path.name!r} is a folder")
    descriptor, temporary = tempfile.mkstemp(prefix=".dstrail-upload-", dir=path.parent)
    size = 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return size
