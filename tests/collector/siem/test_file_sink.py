"""EVE file sink: JSON lines read back field by field, rotation by size and by age."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.siem.file import EveFileSink
from tests.telemetry import eve_reader


async def test_lines_read_back(tmp_path: Path, lan_records: list[tuple[str, dict[str, Any]]]) -> None:
    sink = EveFileSink(str(tmp_path / "eve.json"))
    await sink.start()
    await sink.send(lan_records)
    await sink.close()
    records = eve_reader.read_lines((tmp_path / "eve.json").read_text())
    assert records == [json.loads(json.dumps(r)) for _, r in lan_records]
    problems = [p for r in records for p in eve_reader.problems(r)]
    assert not problems, problems[:10]
    kinds = {r["event_type"] for r in records}
    assert {"alert", "flow", "dhcp", "dns", "http", "tls", "veille_device"} <= kinds
    alert = next(r for r in records if r["event_type"] == "alert")
    assert set(alert["alert"]) >= {"action", "gid", "signature_id", "rev", "signature", "category", "severity"}
    assert alert["host"] == "agent-1" and alert["veille"]["site"] == "school-a"


async def test_rotation_by_size_and_age(tmp_path: Path, lan_records: list[tuple[str, dict[str, Any]]]) -> None:
    now = [1000.0]
    path = tmp_path / "eve.json"
    sink = EveFileSink(str(path), max_bytes=20_000, max_age=3600.0, keep=3, clock=lambda: now[0])
    await sink.start()
    await sink.send(lan_records[:200])
    assert sink.rotations >= 2
    assert all(p.stat().st_size <= 20_000 for p in tmp_path.iterdir())
    assert not (tmp_path / "eve.json.4").exists()  # keep=3
    before = sink.rotations
    now[0] += 3600.0
    await sink.send(lan_records[200:201])
    assert sink.rotations == before + 1
    assert eve_reader.read_lines(path.read_text()) == [json.loads(json.dumps(lan_records[200][1]))]
    await sink.close()
    # nothing lost between the kept files: the newest lines follow the older ones in order
    kept = [tmp_path / f"eve.json.{n}" for n in (3, 2, 1)] + [path]
    lines = [r for p in kept if p.exists() for r in eve_reader.read_lines(p.read_text())]
    assert lines[-1] == json.loads(json.dumps(lan_records[200][1]))
    assert lines[:-1] == [json.loads(json.dumps(r)) for _, r in lan_records[200 - len(lines) + 1 : 200]]
