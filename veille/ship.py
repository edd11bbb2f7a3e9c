"""`veille replay --ship`: a replay delivered through the agent's real shipping path.

Events go through the same `telemetry.shipper.Shipper` the live agent uses (batching, signing,
compression, spool, retry); the command exits once everything is acknowledged or spooled and
says which. Exit status: 0 all acknowledged, 3 some events spooled or rejected, 1 a bad file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec

from agent.health import HealthInputs, HealthMonitor
from agent.pipeline import Pipeline, PipelineConfig, replay_frames
from agent.wire import to_wire
from capture.errors import CaptureFileError
from telemetry.config import ShipperConfig
from telemetry.errors import TelemetryError
from telemetry.schema import Event
from telemetry.shipper import ship_events

EXIT_NOT_DELIVERED = 3


def _events(pipeline: Pipeline, files: list[str], status: list[int]) -> Iterator[dict[str, Any]]:
    for path in files:
        pipeline.files += 1
        try:
            for evs in replay_frames(pipeline, pipeline.read(path)):
                yield from evs
        except CaptureFileError as e:
            yield from pipeline.take()
            print(f"veille: error: {e}", file=sys.stderr)
            status[0] = 1
    pipeline.finish()
    yield from pipeline.take()


def run_ship(args: argparse.Namespace, cfg: PipelineConfig, privacy: Any = None) -> int:
    if not args.agent_config:
        print("veille: error: --ship needs --agent-config FILE (the [collector] table)", file=sys.stderr)
        return 2
    try:
        ship_cfg = ShipperConfig.from_toml(args.agent_config)
    except TelemetryError as e:
        print(f"veille: error: {e}", file=sys.stderr)
        return 2
    from veille.replay import make_pipeline

    made = make_pipeline(cfg)
    if made is None:
        return 2
    pipeline = made
    status = [0]
    stats: dict[str, Any] = {}

    # A replay's clock is the packets' own: the health report is stamped with the capture's last time.
    monitor = HealthMonitor(clock=lambda: pipeline.last_ts)
    by_type: Counter[str] = Counter()

    def events() -> Iterator[Event]:
        for e in _events(pipeline, args.files, status):
            if e["type"] == "stats":
                stats.update(e)
                # One health report at the end, so the collector knows this agent's packets and cost.
                health = monitor.event(
                    HealthInputs(packets=int(e["packets"]), devices=by_type["device"], events_by_type=dict(by_type))
                )
                if privacy is not None:
                    health = msgspec.structs.replace(health, privacy_profile=privacy.filter.config.profile)
                yield health
                continue
            by_type[e["type"]] += 1
            if privacy is not None:  # the site's privacy profile (agent/reveal.py SitePrivacy)
                e = privacy.filter.apply(e)
                if e is None:
                    continue
            w = to_wire(e)
            if w is not None:
                yield w
        if privacy is not None:
            privacy.flush()

    result = asyncio.run(ship_events(events(), ship_cfg))
    print(
        f"veille: shipped {result.events} events to {ship_cfg.url}: "
        f"{result.acked_events} acknowledged, {result.spooled_events} spooled "
        f"({result.spooled_batches} batches in {ship_cfg.spool_dir}), {result.rejected_batches} batches rejected"
        + (f", shed {dict(result.shed)}" if result.shed else "")
        + (f", refused by the collector: {dict(result.auth_refused)}" if result.auth_refused else ""),
        file=sys.stderr,
    )
    if status[0]:
        return status[0]
    if result.acked_events < result.events:
        return EXIT_NOT_DELIVERED
    return 0
