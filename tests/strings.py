"""Walking events for the privacy checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def string_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON-like value; list items are `path[]`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from string_leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from string_leaves(v, path + "[]")
    elif isinstance(value, str):
        yield path, value
