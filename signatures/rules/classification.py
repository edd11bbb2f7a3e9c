"""The classification table (classtype -> description, priority), in classification.config format.

`config classification: shortname,description,priority` lines; the project's table lives in
`data/classification.txt` and is read once. Priority 1 is the most severe.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from signatures.rules.errors import RuleError

_PREFIX = "config classification:"


@dataclass(frozen=True, slots=True)
class ClassType:
    name: str
    description: str
    priority: int


Classification = dict[str, ClassType]


def parse_classification(text: str, file: str = "<classification>") -> Classification:
    """Parse classification.config text; a bad line raises RuleError naming file and line."""
    out: Classification = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_PREFIX):
            raise RuleError("classification", f"{file}:{no}: expected '{_PREFIX} name,description,priority'")
        parts = [p.strip() for p in line[len(_PREFIX) :].split(",")]
        if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
            raise RuleError("classification", f"{file}:{no}: expected name,description,priority")
        out[parts[0]] = ClassType(parts[0], parts[1], int(parts[2]))
    return out


@lru_cache(maxsize=1)
def default_classification() -> Classification:
    """The project's table shipped in signatures/rules/data/classification.txt."""
    text = resources.files("signatures.rules").joinpath("data/classification.txt").read_text("utf-8")
    return parse_classification(text, "classification.txt")
