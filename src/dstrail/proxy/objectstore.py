"""Serving a granted object-store access: signed URLs and listings, by data source type."""

from __future__ import annotations

from pathlib import Path

from dstrail.errors import NotFound
from dstrail.proxy import datasets, s3
from dstrail.proxy.datasets import file_path
from dstrail.proxy.signing import sign_dataset_url
from dstrail.services.access import Grant


def signed_url(
    grant: Grant,
    *,
    key: str,
    write: bool,
    base_url: str,
    signing_key: str,
    now_ms: int,
    ttl_s: int,
    data_dir: Path,
) -> str:
    """A short-lived URL the client GETs (or PUTs, for ``write``) directly. A read of a
    ``DatasetConfig`` file that does not exist is ``NotFound``, as Domino answers it, rather
    than a URL that would fail later."""
    ds = grant.data_source
    if ds.data_source_type == "DatasetConfig":
        stored_key = _dataset_subfolder(grant) + key
        if not write and not file_path(data_dir, ds.id, stored_key).is_file():
            raise NotFound(f"no object {key!r} in data source {ds.name!r}")
        return sign_dataset_url(
            base_url,
            signing_key=signing_key,
            method="PUT" if write else "GET",
            data_source_id=ds.id,
            key=stored_key,
            now_s=now_ms // 1000,
            ttl_s=ttl_s,
        )
    return s3.presigned_url(
        ds.data_source_type, grant.config, grant.credentials or {}, key=key, write=write,
        ttl_s=ttl_s,
    )  # fmt: skip


def list_keys(grant: Grant, *, prefix: str, page_size: int, data_dir: Path) -> list[str]:
    """The keys under ``prefix``."""
    ds = grant.data_source
    if ds.data_source_type == "DatasetConfig":
        subfolder = _dataset_subfolder(grant)
        keys = datasets.list_keys(data_dir, ds.id, subfolder + prefix, page_size)
        return [stored[len(subfolder) :] for stored in keys]
    return s3.list_keys(
        ds.data_source_type, grant.config, grant.credentials or {}, prefix=prefix,
        page_size=page_size,
    )  # fmt: skip


def _dataset_subfolder(grant: Grant) -> str:
    """``subfolder/`` of a dataset's config ('' for none); ``NotFound`` for a ``snapshotID``:
    dstrail keeps a dataset's current files, no snapshots."""
    snapshot = grant.config.get("snapshotID", "")
    if snapshot:
        raise NotFound(
            f"snapshotID: no snapshot {snapshot!r} of data source {grant.data_source.name!r}: "
            "dstrail serves a dataset's current files and keeps no snapshots; call without "
            "snapshotID"
        )
    subfolder = grant.config.get("subfolder", "").strip("/")
    return f"{subfolder}/" if subfolder else ""
