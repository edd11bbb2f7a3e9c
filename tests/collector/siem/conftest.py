"""Shared pieces for SIEM sink tests: EVE records from the project's own fixture capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import PipelineConfig, replay_events
from agent.wire import to_wire
from telemetry.codec import decode_batch, encode_batch, new_batch
from telemetry.eve import EveConverter
from telemetry.schema import Batch

REPO = Path(__file__).resolve().parents[3]


def fixture_events() -> list[dict[str, Any]]:
    """Events of pcaps/lan_attacks.pcap with its rules and IOCs (alerts included)."""
    pcaps = REPO / "pcaps"
    config = PipelineConfig(
        rule_files=[str(pcaps / "lan_attacks.rules")],
        ioc_files=[str(pcaps / "lan_attacks.iocs.txt")],
        detections={},
    )
    return [e for e in replay_events([str(pcaps / "lan_attacks.pcap")], config) if e["type"] != "stats"]


@pytest.fixture(scope="session")
def lan_events() -> list[dict[str, Any]]:
    return fixture_events()


def wire_batch(events: list[dict[str, Any]], agent_id: str = "agent-1", site: str = "school-a", seq: int = 1) -> Batch:
    """Events as the collector receives them: converted by the agent's shipper code, encoded and decoded."""
    wire = [w for e in events if (w := to_wire(e)) is not None]
    batch = new_batch(agent_id, site, seq, 1_700_000_000.0, wire)
    return decode_batch(encode_batch(batch))


@pytest.fixture(scope="session")
def lan_records(lan_events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    converter = EveConverter(host="agent-1", site="school-a")
    return [(f"agent-1:1:{i}", r) for i, e in enumerate(lan_events) if (r := converter.convert(e)) is not None]
