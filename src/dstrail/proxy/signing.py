"""Short-lived HMAC-signed URLs for the files dstrail keeps itself (``DatasetConfig``)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

DATASET_FILES_PATH = "/objectstore/datasets"
_PURPOSE = b"dstrail signed object URLs v1"


def _url_key(signing_key: str) -> bytes:
    return hmac.new(signing_key.encode(), _PURPOSE, hashlib.sha256).digest()


def _signature(
    signing_key: str, *, method: str, data_source_id: str, key: str, expires: int
) -> str:
    message = f"{method}\n{data_source_id}\n{key}\n{expires}".encode()
    return hmac.new(_url_key(signing_key), message, hashlib.sha256).hexdigest()


def sign_dataset_url(
    base_url: str,
    *,
    signing_key: str,
    method: str,
    data_source_id: str,
    key: str,
    now_s: int,
    ttl_s: int,
) -> str:
    """A URL that allows ``method`` (GET or PUT) on one file until ``now_s + ttl_s``."""
    expires = now_s + ttl_s
    signature = _signature(
        signing_key, method=method, data_source_id=data_source_id, key=key, expires=expires
    )
    query = urlencode({"method": method, "expires": expires, "signature": signature})
    path = f"{DATASET_FILES_PATH}/{data_source_id}/{quote(key, safe='/')}"
    return f"{base_url.rstrip('/')}{path}?{query}"


def verify_dataset_url(
    *,
    signing_key: str,
    method: str,
    data_source_id: str,
    key: str,
    signed_method: str,
    expires: int,
    signature: str,
    now_s: int,
) -> str | None:
    """Why the URL is not valid for this request, or ``None`` when it is."""
    if signed_method != method:
        return f"this URL is signed for {signed_method}, not {method}"
    expected = _signature(
        signing_key, method=method, data_source_id=data_source_id, key=key, expires=expires
    )
    if not hmac.compare_digest(expected, signature):
        return "the signature does not match"
    if now_s > expires:
        return "the URL has expired"
    return None
