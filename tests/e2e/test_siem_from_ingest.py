"""The collector configured with a `[siem]` file sink writes EVE lines for what agents ship: a real
collector process, a replay shipped through the agent path, the EVE file read back as JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.e2e.test_ship_to_collector import REPO, _enrol


def test_shipped_alerts_come_out_as_eve(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    config = tmp_path / "collector.toml"
    config.write_text(f'[siem.file]\npath = "{eve}"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "c.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "collector",
            "serve",
            "--config",
            str(config),
            "--db",
            str(db),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=REPO,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        c = {"url": f"http://127.0.0.1:{port}", "db": db, "dir": tmp_path}
        agent = _enrol(c, "mairie")
        args = [str(REPO / "pcaps" / "lan_attacks.pcap"), "--rules", str(REPO / "pcaps" / "lan_attacks.rules")]
        out = subprocess.run(
            [sys.executable, "-m", "veille", "replay", *args, "--ship", "--agent-config", str(agent)],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        deadline = time.monotonic() + 20
        alerts: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            if eve.exists():
                lines = [json.loads(x) for x in eve.read_text().splitlines() if x.strip()]
                alerts = [e for e in lines if e.get("event_type") == "alert"]
                if alerts:
                    break
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert alerts, "no EVE alert written"
    for a in alerts:
        assert {"timestamp", "src_ip", "dest_ip", "proto", "alert"} <= set(a)
        assert isinstance(a["alert"], dict) and {"signature_id", "signature", "severity"} <= set(a["alert"])
    print(f"EVE alerts written by the collector: {len(alerts)}")
