"""The design's import direction, checked on every module: capture imports nothing of ours;
signatures may import capture; telemetry imports neither; agent wires capture, signatures and
telemetry; collector imports telemetry only. An arrow against this order is a design bug."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ALLOWED = {
    "capture": {"capture"},
    "signatures": {"signatures", "capture"},
    "telemetry": {"telemetry"},
    "agent": {"agent", "capture", "signatures", "telemetry"},
    "collector": {"collector", "telemetry"},
}
OURS = set(ALLOWED) | {"veille", "bench", "pcaps", "tests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & OURS


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_what_the_design_allows(room: str) -> None:
    bad = []
    for path in sorted((REPO / room).rglob("*.py")):
        wrong = _imports(path) - ALLOWED[room]
        if wrong:
            bad.append(f"{path.relative_to(REPO)} imports {sorted(wrong)}")
    assert not bad, bad
