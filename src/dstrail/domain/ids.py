"""Identifiers shaped like MongoDB ObjectIds (24 lowercase hex), as Domino's are."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time

LOCAL_DATA_PLANE_ID = "000000000000000000000000"
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_process_unique = secrets.token_hex(5)


def new_object_id() -> str:
    """A new id: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter."""
    count = next(_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_process_unique}{count:06x}"


def is_object_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id."""
    return bool(_OBJECT_ID.match(value))
