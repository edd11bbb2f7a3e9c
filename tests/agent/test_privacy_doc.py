"""docs/privacy.md is generated from the code (scripts/gen_privacy_doc.py): the committed file must match.

Regenerate on purpose with `VEILLE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/agent/test_privacy_doc.py`
(or `scripts/gen_privacy_doc.py`) and review the diff.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

from agent.privacy import CLASSES, SPECS, SWITCHES, field_table
from collector.config import DEFAULT_RETENTION_DAYS

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "privacy.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_privacy_doc", REPO / "scripts" / "gen_privacy_doc.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_privacy_doc_equals_the_generated_one() -> None:
    text = _generator().render()
    if os.environ.get("VEILLE_REGEN_GOLDEN") == "1":
        DOC.write_text(text, encoding="utf-8")
    committed = DOC.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(committed.splitlines(True), text.splitlines(True), "committed", "generated"))
    assert not diff, "docs/privacy.md differs from the code; regenerate with VEILLE_REGEN_GOLDEN=1:\n" + diff[:3000]


def test_the_doc_covers_every_field_class_switch_and_retention_kind() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = [(k, p) for k, s in SPECS.items() for p, _ in field_table(s)]
    missing = [f"{k}.{p}" for k, p in rows if f"| `{k}` | `{p}` |" not in text]
    assert not missing, missing[:10]
    for name in (*CLASSES, *SWITCHES):
        assert f"`{name}`" in text, name
    for kind, days in DEFAULT_RETENTION_DAYS.items():
        assert f"| `{kind}` | {days:g} days |" in text, kind
    kinds = len(DEFAULT_RETENTION_DAYS)
    print(f"\ndocs/privacy.md: {len(rows)} fields, {len(CLASSES)} data classes, {kinds} retention kinds")
