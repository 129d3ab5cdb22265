"""Where archives go: a directory, or an S3 bucket (any S3-compatible store).

A target stores named files under a base; names are relative paths with ``/``. Files are
written whole or not at all (a directory writes a temporary file and renames it; S3 makes an
object visible only once its upload completes), so a crash leaves no half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from dstrail.errors import DstrailError, InvalidInput

ARCHIVE_URL_RULE = "an absolute directory path (or file:///path), or s3://bucket[/prefix]"


class ArchiveTarget(Protocol):
    """A place archive files are written to and read back from."""

    url: str
    """Where the target is, as the operator named it (no credentials)."""

    def put(self, name: str, source: Path) -> None:
        """Store the file ``source`` as ``name`` (replacing one of that name)."""
        ...

    def fetch(self, name: str, destination: Path) -> None:
        """Copy ``name`` to the local file ``destination``; ``DstrailError`` when missing."""
        ...

    def names(self, suffix: str) -> list[str]:
        """Every stored name that ends with ``suffix``, sorted."""
        ...

    def location(self, name: str) -> str:
        """The URL of ``name``."""
        ...


class DirectoryTarget:
    """Archive files under a local (or mounted) directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.url = str(base)

    def put(self, name: str, source: Path) -> None:
        final = self.base / name
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=final.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as data:
                shutil.copyfileobj(data, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            Path(temporary).replace(final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def fetch(self, name: str, destination: Path) -> None:
        try:
            shutil.copyfile(self.base / name, destination)
        except FileNotFoundError:
            raise DstrailError(f"the archive has no file {self.location(name)}") from None

    def names(self, suffix: str) -> list[str]:
        if not self.base.is_dir():
            return []
        return sorted(
            path.relative_to(self.base).as_posix()
            for path in self.base.rglob(f"*{suffix}")
            if path.is_file() and not path.name.startswith(".partial-")
        )

    def location(self, name: str) -> str:
        return str(self.base / name)


class S3Target:
    """Archive files as objects under ``s3://bucket/prefix`` (credentials from the AWS
    environment: variables, profile or instance role; never from dstrail's settings)."""

    def __init__(self, bucket: str, prefix: str, *, endpoint: str | None = None) -> None:
        import boto3  # a second of import time, paid only by S3 archives

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client: Any = boto3.client("s3", endpoint_url=endpoint or None)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, name: str, source: Path) -> None:
        try:
            self._client.upload_file(str(source), self.bucket, self._key(name))
        except Exception as error:  # botocore's errors share no base worth naming
            raise DstrailError(f"writing {self.location(name)} failed: {_reason(error)}") from None

    def fetch(self, name: str, destination: Path) -> None:
        try:
            self._client.download_file(self.bucket, self._key(name), str(destination))
        except Exception as error:
            raise DstrailError(f"reading {self.location(name)} failed: {_reason(error)}") from None

    def names(self, suffix: str) -> list[str]:
        found: list[str] = []
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if key.endswith(suffix):
                        found.append(key[len(start) :])
        except Exception as error:
            raise DstrailError(f"listing {self.url} failed: {_reason(error)}") from None
        return sorted(found)

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"


def _reason(error: Exception) -> str:
    """An S3 error in words, without request signatures or credentials."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        details = response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".strip()
    return type(error).__name__


def open_target(url: str, *, s3_endpoint: str | None = None) -> ArchiveTarget:
    """The target ``url`` names; ``InvalidInput`` saying what is accepted otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
            raise InvalidInput(
                f"archive: {url[:200]!r} is not accepted; accepted: {ARCHIVE_URL_RULE}"
            )
        return S3Target(parts.netloc, parts.path, endpoint=s3_endpoint)
    if parts.scheme == "file" and not parts.netloc:
        return DirectoryTarget(Path(parts.path))
    if parts.scheme == "" and Path(url).is_absolute():
        return DirectoryTarget(Path(url))
    raise InvalidInput(f"archive: {url[:200]!r} is not accepted; accepted: {ARCHIVE_URL_RULE}")
