"""Runs inside a subprocess: drives the unmodified dominodatalab-data client.

Reads a JSON list of operations from argv[1], prints one JSON line per operation:
``{"ok": <result>}`` or ``{"error": "<type>: <message>"}``. Configured only by the DOMINO_*
environment variables, as code inside a run is.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from domino_data import configuration_gen
from domino_data.data_sources import DataSourceClient


def run(client: DataSourceClient, op: list[Any], scratch: Path) -> Any:
    name, *args = op
    if name == "get_datasource":
        ds = client.get_datasource(args[0])
        return {
            "id": ds.identifier,
            "name": ds.name,
            "type": ds.datasource_type,
            "owner": ds.owner,
            "config": ds.config,
        }
    if name == "key_url":  # the proxy alone, by data source id, as the client's objects call it
        return client.get_key_url(args[0], args[1], False, {}, {})
    ds = client.get_datasource(args[0])
    if name == "update_then":  # ds.update(<Type>Config(**fields)), then another operation
        config_class, fields, then = args[1], args[2], args[3]
        ds.update(getattr(configuration_gen, config_class)(**fields))
        name, *args = then
    if name == "get":
        return ds.get(args[1]).decode()
    if name == "put":
        ds.put(args[1], args[2].encode())
        return None
    if name == "list":
        return [o.key for o in ds.list_objects(args[1])]
    if name == "download_file":
        target = scratch / "download.bin"
        ds.download_file(args[1], str(target))
        return target.read_text()
    if name == "download":
        target = scratch / "ranged.bin"
        ds.download(args[1], str(target))
        return target.read_text()
    if name == "download_fileobj":
        buffer = io.BytesIO()
        ds.download_fileobj(args[1], buffer)
        return buffer.getvalue().decode()
    if name == "upload_file":
        source = scratch / "upload.bin"
        source.write_text(args[2])
        ds.upload_file(args[1], str(source))
        return None
    if name == "query":
        frame = ds.query(args[1]).to_pandas()
        return {column: [str(v) for v in frame[column]] for column in frame.columns}
    raise ValueError(f"unknown operation {name}")


def main() -> None:
    operations = json.loads(sys.argv[1])
    client = DataSourceClient()
    with tempfile.TemporaryDirectory() as scratch:
        for op in operations:
            try:
                result: dict[str, Any] = {"ok": run(client, op, Path(scratch))}
            except Exception as error:
                result = {"error": f"{type(error).__name__}: {error}"}
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
