"""``S3Config`` and ``GenericS3Config`` through boto3: presigned URLs and listings.

``S3Config`` reaches AWS the standard way (region from the config; ``AWS_ENDPOINT_URL_S3`` in
the server's environment points it elsewhere, e.g. at a local S3-compatible server).
``GenericS3Config`` reaches the ``host`` of its config (``https://`` unless a scheme is given)
with path-style addressing.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from dstrail.errors import InvalidInput, UpstreamError

_CLIENTS: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 64


def _endpoint(data_source_type: str, config: dict[str, str]) -> str | None:
    if data_source_type != "GenericS3Config":
        return None
    host = config.get("host") or config.get("endpoint") or ""
    if not host:
        raise InvalidInput("config: a GenericS3Config data source needs a 'host'")
    endpoint = host if "://" in host else f"https://{host}"
    if not endpoint.startswith(("https://", "http://")):
        raise InvalidInput(f"config: 'host' {host!r} must be an http(s) URL or a host name")
    return endpoint


def _client(data_source_type: str, config: dict[str, str], credentials: dict[str, str]) -> Any:
    access_key = credentials.get("accessKeyID") or credentials.get("accessKeyId") or ""
    secret_key = credentials.get("secretAccessKey") or ""
    if not access_key or not secret_key:
        raise InvalidInput("credentials: S3 data sources need 'accessKeyID' and 'secretAccessKey'")
    token = credentials.get("sessionToken") or None
    endpoint = _endpoint(data_source_type, config)
    region = config.get("region") or "us-east-1"
    fingerprint = hashlib.sha256(f"{access_key}\n{secret_key}\n{token}".encode()).hexdigest()
    cache_key = (data_source_type, endpoint or "", region, fingerprint)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is not None:
            _CLIENTS.move_to_end(cache_key)
            return client
        session = boto3.session.Session()
        try:
            client = session.client(
                "s3",
                region_name=region,
                endpoint_url=endpoint,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=token,
                config=BotoConfig(
                    signature_version="s3v4",
                    s3={"addressing_style": "path" if endpoint else "auto"},
                    retries={"max_attempts": 2},
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        except (ValueError, BotoCoreError) as error:  # a host or region S3 cannot take
            raise InvalidInput(f"config: 'host' or 'region' is not usable by S3: {error}") from None
        _CLIENTS[cache_key] = client
        if len(_CLIENTS) > _MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
        return client


def _bucket(config: dict[str, str]) -> str:
    bucket = config.get("bucket", "")
    if not bucket:
        raise InvalidInput("config: an S3 data source needs a 'bucket'")
    return bucket


def _subfolder(config: dict[str, str]) -> str:
    subfolder = config.get("subfolder", "").strip("/")
    return f"{subfolder}/" if subfolder else ""


def presigned_url(
    data_source_type: str,
    config: dict[str, str],
    credentials: dict[str, str],
    *,
    key: str,
    write: bool,
    ttl_s: int,
) -> str:
    """A presigned GET (or PUT, for ``write``) URL of one object."""
    client = _client(data_source_type, config, credentials)
    try:
        url: str = client.generate_presigned_url(
            "put_object" if write else "get_object",
            Params={"Bucket": _bucket(config), "Key": _subfolder(config) + key},
            ExpiresIn=ttl_s,
        )
    except (BotoCoreError, ClientError) as error:
        raise UpstreamError(f"S3 could not sign the URL: {error}") from None
    return url


def list_keys(
    data_source_type: str,
    config: dict[str, str],
    credentials: dict[str, str],
    *,
    prefix: str,
    page_size: int,
) -> list[str]:
    """Keys under ``prefix`` (relative to the configured subfolder), at most ``page_size``."""
    client = _client(data_source_type, config, credentials)
    subfolder = _subfolder(config)
    try:
        answer = client.list_objects_v2(
            Bucket=_bucket(config), Prefix=subfolder + prefix, MaxKeys=page_size
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        raise UpstreamError(
            f"S3 refused the listing: {details.get('Code', '')}: {details.get('Message', '')}"
        ) from None
    except BotoCoreError as error:
        raise UpstreamError(f"S3 is not reachable: {error}") from None
    return [item["Key"][len(subfolder) :] for item in answer.get("Contents", [])]
