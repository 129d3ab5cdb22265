"""Regenerates ``ocsf-1.5.0-schema.json`` beside this file from the OCSF schema sources.

    .venv/bin/python tests/streaming/data/make_ocsf_schema.py /path/to/ocsf-schema

``/path/to/ocsf-schema`` is a checkout (or ``git archive``) of the OCSF schema repository at its
v1.5.0 release (see README.md). The script compiles it with ocsf-lib's compiler, as the OCSF
server compiles it, and keeps the classes dstrail writes with every object and type they
reference, transitively:

- no extensions (dstrail writes core OCSF), and no profile attributes (dstrail declares no
  ``metadata.profiles``; the OCSF server's validator ignores the attributes of profiles an
  event does not declare, so a validator needs only the rest);
- an attribute a class (or a class it extends) declares with ``"profile": null`` is the class's
  own, not its profile's: ocsf-lib 0.10 reads the explicit ``null`` as "not given" and leaves
  the profile's mark on it (so ``actor`` of every IAM class and of Datastore Activity would
  count as a ``host`` profile attribute); the script clears that mark before dropping profile
  attributes;
- without descriptions, and without the keys whose value is ``null`` (ocsf-lib's dict form
  spells out every field; its loader fills them back in, which the script checks).

Not imported by the tests: they read the JSON it writes.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from ocsf.compile import Compilation
from ocsf.compile.options import CompilationOptions
from ocsf.repository import EventDefn, Repository, read_repo
from ocsf.schema import OcsfAttr, OcsfEvent, OcsfObject, OcsfSchema, from_dict, to_dict

VERSION = "1.5.0"
CLASS_UIDS = {
    6005: "datastore_activity",
    3005: "user_access",
    3004: "entity_management",
    3001: "account_change",
    2004: "detection_finding",
    0: "base_event",  # for a kind a newer dstrail wrote
}
OUT = Path(__file__).with_name(f"ocsf-{VERSION}-schema.json")


def own_attributes(repo: Repository, name: str) -> set[str]:
    """The attributes event class ``name`` and the classes it extends declare with an explicit
    ``"profile": null``, from the raw source files."""
    files = {
        file.data.name: file
        for file in repo.files()
        if isinstance(file.data, EventDefn) and file.path.startswith("events/")
    }
    found: set[str] = set()
    current: str | None = name
    while current is not None:
        raw = json.loads(files[current].raw_data or "{}")
        for attr, spec in raw.get("attributes", {}).items():
            if isinstance(spec, dict) and "profile" in spec and spec["profile"] is None:
                found.add(attr)
        current = raw.get("extends")
    return found


def without_profiles(item: OcsfEvent | OcsfObject) -> None:
    item.attributes = {name: a for name, a in item.attributes.items() if not a.profile}
    item.profiles = None
    item.description = None
    for attr in item.attributes.values():
        attr.description = None
        for member in (attr.enum or {}).values():
            member.description = member.notes = None


def subset(schema: OcsfSchema, repo: Repository) -> OcsfSchema:
    classes: dict[str, OcsfEvent] = {}
    for uid, name in CLASS_UIDS.items():
        event = copy.deepcopy(schema.classes[name])
        assert event.uid == uid, (name, event.uid)
        for own in own_attributes(repo, name):
            event.attributes[own].profile = None
        without_profiles(event)
        classes[name] = event

    objects: dict[str, OcsfObject] = {}
    types: set[str] = set()
    todo: list[OcsfAttr] = [a for event in classes.values() for a in event.attributes.values()]
    while todo:
        attr = todo.pop()
        if attr.type in schema.types:
            types.add(attr.type)
        elif attr.type not in objects:
            obj = copy.deepcopy(schema.objects[attr.type])
            without_profiles(obj)
            objects[attr.type] = obj
            todo.extend(obj.attributes.values())
    for name in list(types):  # a type's base type (``timestamp_t``: ``long_t``)
        while (base := schema.types[name].type) is not None:
            types.add(base)
            name = base
    kept = {name: copy.deepcopy(schema.types[name]) for name in sorted(types)}
    for t in kept.values():
        t.description = None
    return OcsfSchema(
        version=schema.version,
        classes=dict(sorted(classes.items())),
        objects=dict(sorted(objects.items())),
        types=kept,
    )


def pruned(value: Any) -> Any:
    """``value`` without the keys whose value is ``None``."""
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[1])
    version = json.loads((source / "version.json").read_text())["version"]
    if version != VERSION:
        print(f"{source} is OCSF {version}, not {VERSION}", file=sys.stderr)
        return 1
    repo = read_repo(source, preserve_raw_data=True)
    schema = Compilation(repo, CompilationOptions(extensions=[])).build()
    small = subset(schema, repo)
    data = pruned(to_dict(small))
    assert from_dict(data) == small, "the pruned JSON does not load back as the same schema"
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(
        f"{OUT}: {len(small.classes)} classes, {len(small.objects)} objects, "
        f"{len(small.types)} types, {OUT.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
