"""Text every entry point refuses before it reaches storage: NUL characters (PostgreSQL cannot
store them) and lone UTF-16 surrogates (not text: they cannot be encoded as UTF-8)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dstrail.errors import InvalidInput

ACCEPTED_TEXT = "text without NUL characters or lone UTF-16 surrogates"


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` as text, or None when nothing is."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"contains a lone UTF-16 surrogate (\\u{ord(value[error.start]):04x})"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every key and string value inside a parsed JSON value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield name, key
            yield from _strings(item, name)
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_text(value: Any, *, field: str = "") -> None:
    """``InvalidInput`` naming the first field of ``value`` (a string, or a parsed JSON object
    or list) that is not text."""
    for name, text in _strings(value, field):
        problem = text_problem(text)
        if problem is not None:
            raise InvalidInput(f"{name or 'body'}: {problem}; accepted: {ACCEPTED_TEXT}")
