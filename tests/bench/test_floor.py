"""bench/floor.py's timed children really do the work they are named for (counts checked, not timings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.floor import _EVENTS, _READ, _inner
from bench.gen_mix import generate
from capture.pcapfile import read_frames

REPO = Path(__file__).resolve().parents[2]


def test_read_child_counts_every_frame(tmp_path: Path) -> None:
    pcap = tmp_path / "mix.pcap"
    generate(pcap, 3000)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cpu, frames = _inner(_READ, str(pcap), REPO, env)
    assert frames == sum(1 for _ in read_frames(pcap)) >= 3000
    assert cpu > 0


def test_events_child_encodes_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"type": "flow", "n": i, "l": [i, i + 1]}) + "\n" for i in range(5000)))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    _cpu, events = _inner(_EVENTS, str(path), REPO, env)
    assert events == 5000
