"""Golden cases: `tests/golden/<case>/case.toml` names captures and options; `expected.jsonl` holds
the events `veille replay` must produce. One sub-test per folder (Telegraf's testcases layout).

Regenerate on purpose with VEILLE_REGEN_GOLDEN=1 and review the diff before committing.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import PipelineConfig, replay_events

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).parent.parent
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.toml").exists()) if GOLDEN.exists() else []


def _run(case: Path) -> list[dict[str, Any]]:
    spec = tomllib.loads((case / "case.toml").read_text())
    cfg = PipelineConfig(
        inventory=spec.get("inventory", False),
        fingerprints=spec.get("fingerprints", True),
        p0f_path=None,  # the distro's p0f.fp varies between machines; p0f is checked on its own
        rule_files=[str(REPO / r) for r in spec.get("rules", [])],
        variables=spec.get("variables", {}),
        ioc_files=[str(REPO / r) for r in spec.get("ioc", [])],
        detections=spec.get("detections"),
    )
    return list(replay_events([str(REPO / p) for p in spec["captures"]], cfg))


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e, sort_keys=True) for e in events]


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = GOLDEN / name
    got = _lines(_run(case))
    expected_file = case / "expected.jsonl"
    if os.environ.get("VEILLE_REGEN_GOLDEN") == "1":
        expected_file.write_text("\n".join(got) + "\n")
        pytest.skip(f"regenerated {expected_file}")
    want = expected_file.read_text().splitlines()
    if got != want:
        diff = "\n".join(list(difflib.unified_diff(want, got, "expected", "got", lineterm="", n=0))[:60])
        pytest.fail(f"{name}: events differ from the golden (VEILLE_REGEN_GOLDEN=1 to accept)\n{diff}")


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 4
