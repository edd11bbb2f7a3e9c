"""`veille replay FILE --format eve` as a real process: every line an EVE record with the right shapes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.telemetry import eve_reader


def test_replay_format_eve(repo: Path, tmp_path: Path) -> None:
    pcaps = repo / "pcaps"
    out = tmp_path / "eve.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veille",
            "replay",
            str(pcaps / "lan_attacks.pcap"),
            "--format",
            "eve",
            "--rules",
            str(pcaps / "lan_attacks.rules"),
            "-o",
            str(out),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    records = eve_reader.read_lines(out.read_text())
    assert records and not [p for r in records for p in eve_reader.problems(r)]
    kinds = {r["event_type"] for r in records}
    assert {"alert", "flow", "dhcp", "dns", "tls", "veille_device"} <= kinds
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert all(r["alert"]["category"] and r["alert"]["signature_id"] > 0 for r in alerts)
    flows = {r["flow_id"] for r in records if r["event_type"] == "flow"}
    assert all(r["flow_id"] in flows for r in records if r["event_type"] in ("dns", "tls", "http"))
