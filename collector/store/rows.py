"""Pure mapping from a decoded telemetry `Batch` to the rows the store writes.

No I/O and no clock: `batch_rows(batch, received)` returns plain tuples ready for `executemany`, sorted by
key so that concurrent PostgreSQL transactions lock rows in the same order (no deadlocks between two
collectors ingesting overlapping devices). Flow summaries are rolled up here, per site, device and hour,
so a batch of 5,000 flows becomes a few dozen upserts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from telemetry.errors import SchemaError
from telemetry.schema import AlertEvent, Batch, DeviceEvent, FlowEvent, HealthEvent, ObservationEvent

HOUR = 3600.0
# Largest integer either back-end stores (SQL BIGINT). The schema's counters are unbounded MessagePack
# integers (up to 2**64 - 1), so a value or a roll-up sum past this is refused here, not by the database.
MAX_SQL_INT = 2**63 - 1
_json = msgspec.json.Encoder()


def to_json(value: Any) -> str:
    """Compact JSON text of a value (msgspec Structs included)."""
    return _json.encode(value).decode()


@dataclass(slots=True)
class BatchRows:
    """Everything one batch writes, as tuples in the column order of collector/store/sql.py."""

    agent_id: str
    site: str
    seq: int
    schema: int
    created: float
    received: float
    events: int
    agent_version: str | None = None
    health_json: str | None = None
    devices: list[tuple[Any, ...]] = field(default_factory=list)
    evidence: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    flows: list[tuple[Any, ...]] = field(default_factory=list)
    health: list[tuple[Any, ...]] = field(default_factory=list)
    observations: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _add_flow(
    rollup: dict[tuple[str, float], list[int]],
    mac: str,
    hour: float,
    pkts_out: int,
    pkts_in: int,
    bytes_out: int,
    bytes_in: int,
) -> None:
    key = (mac, hour)
    acc = rollup.get(key)
    if acc is None:
        rollup[key] = [1, pkts_out, pkts_in, bytes_out, bytes_in]
    else:
        acc[0] += 1
        acc[1] += pkts_out
        acc[2] += pkts_in
        acc[3] += bytes_out
        acc[4] += bytes_in


def _device_row(site: str, agent_id: str, ev: DeviceEvent) -> tuple[Any, ...]:
    os = ev.os
    return (
        site,
        ev.mac,
        ev.first_seen,
        ev.last_seen,
        ev.vendor,
        os.family if os else None,
        os.version if os else None,
        ev.device_type,
        ev.confidence,
        ev.randomized_mac,
        ev.pseudonymised,
        to_json(ev.ips),
        to_json(ev.names),
        to_json(ev.fingerprints),
        agent_id,
    )


def batch_rows(batch: Batch, received: float) -> BatchRows:
    """Rows for one batch received at `received` (seconds since the epoch)."""
    site, agent_id, seq = batch.site, batch.agent_id, batch.seq
    out = BatchRows(
        agent_id=agent_id,
        site=site,
        seq=seq,
        schema=batch.schema,
        created=batch.created,
        received=received,
        events=len(batch.events),
    )
    rollup: dict[tuple[str, float], list[int]] = {}
    evidence: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    devices: dict[str, tuple[Any, ...]] = {}
    counts = {"flow": 0, "device": 0, "alert": 0, "health": 0, "obs": 0}
    add_flow = _add_flow
    for idx, ev in enumerate(batch.events):
        if type(ev) is FlowEvent:
            counts["flow"] += 1
            hour = ev.ts_start - ev.ts_start % HOUR
            src_key = ev.src_mac or ev.src
            add_flow(rollup, src_key, hour, ev.pkts_fwd, ev.pkts_rev, ev.bytes_fwd, ev.bytes_rev)
            dst_key = ev.dst_mac or ev.dst
            if dst_key != src_key:
                add_flow(rollup, dst_key, hour, ev.pkts_rev, ev.pkts_fwd, ev.bytes_rev, ev.bytes_fwd)
        elif type(ev) is DeviceEvent:
            counts["device"] += 1
            previous = devices.get(ev.mac)
            if previous is None or previous[3] <= ev.last_seen:
                devices[ev.mac] = _device_row(site, agent_id, ev)
            for item in ev.evidence:
                key = (ev.mac, item.source, item.value)
                first = item.first_seen or ev.first_seen
                last = item.last_seen or ev.last_seen
                evidence[key] = (
                    site,
                    ev.mac,
                    item.source,
                    item.value,
                    to_json(item.suggests),
                    item.weight,
                    first,
                    last,
                    agent_id,
                )
        elif type(ev) is AlertEvent:
            counts["alert"] += 1
            out.alerts.append(
                (
                    agent_id,
                    seq,
                    idx,
                    site,
                    ev.ts,
                    ev.sid,
                    ev.gid,
                    ev.rev,
                    ev.msg,
                    ev.classtype,
                    ev.severity,
                    ev.src,
                    ev.sport,
                    ev.dst,
                    ev.dport,
                    ev.proto,
                    ev.community_id,
                    ev.app_proto,
                    ev.src_mac,
                    to_json(ev.app_fields),
                )
            )
        elif type(ev) is HealthEvent:
            counts["health"] += 1
            data = to_json(ev)
            out.health.append(
                (
                    agent_id,
                    seq,
                    idx,
                    site,
                    ev.ts,
                    ev.packets,
                    ev.drops_kernel + ev.drops_pipeline,
                    ev.cpu,
                    ev.rss,
                    ev.spool_bytes,
                    data,
                )
            )
            out.health_json = data
            if ev.agent_version:
                out.agent_version = ev.agent_version
        elif type(ev) is ObservationEvent:
            counts["obs"] += 1
            out.observations.append(
                (agent_id, seq, idx, site, ev.ts, ev.kind, ev.src_mac, ev.src, ev.dst, to_json(ev.fields))
            )
    out.devices = sorted(devices.values(), key=lambda row: row[1])
    out.evidence = sorted(evidence.values(), key=lambda row: (row[1], row[2], row[3]))
    out.flows = sorted(
        ((site, mac, hour, *acc) for (mac, hour), acc in rollup.items()), key=lambda row: (row[1], row[2])
    )
    out.counts = counts
    _check_ranges(out)
    return out


def _too_big(row: tuple[Any, ...]) -> bool:
    return any(type(v) is int and v > MAX_SQL_INT for v in row)


def _check_ranges(out: BatchRows) -> None:
    """Raise SchemaError naming the event whose integer does not fit a BIGINT."""
    if out.seq > MAX_SQL_INT:
        raise SchemaError("$.seq", f"larger than {MAX_SQL_INT}")
    for rows in (out.alerts, out.health):
        for row in rows:
            if _too_big(row):
                raise SchemaError(f"$.events[{row[2]}]", f"an integer is larger than {MAX_SQL_INT}")
    for row in out.flows:
        if _too_big(row):
            raise SchemaError("$.events", f"flow counters of {row[1]} add up to more than {MAX_SQL_INT}")
