"""Health events: how the agent itself is doing, shipped every `[health] interval` like any event.

`HealthMonitor` keeps what only the daemon knows over time (start time, CPU times at the last
sample, the last reload error) and turns one `HealthInputs` snapshot (capture counters, pipeline
counters, the shipper's `ShipperStats`, database versions) into a `telemetry.schema.HealthEvent`.
CPU is the percentage of one core used since the previous event (docs/wire.md; psutil process
times, so it costs no sampling sleep; above 100 when several cores work); RSS is the resident set
in bytes. A failed reload is reported in `alarms` as `reload_error: ...` until a later reload
succeeds: the wire schema (v2) has no field of its own for it, and `alarms` is what the collector
already shows.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from telemetry.schema import HealthEvent
from telemetry.shipper import ShipperStats

RELOAD_ERROR: Final = "reload_error"
# HealthEvent labels are at most 64 characters; a version is "<kind>:<12 hex>" per database.
_HASH_CHARS: Final = 12
_LABEL_MAX: Final = 64
# HealthEvent alarms hold at most 64 texts of 1 KiB (telemetry.schema caps).
_MAX_ALARMS: Final = 64
_MAX_ALARM_TEXT: Final = 1024


def agent_version() -> str | None:
    """The installed veille distribution's version, or None when run from an uninstalled tree."""
    try:
        return importlib.metadata.version("veille")
    except importlib.metadata.PackageNotFoundError:
        return None


def files_version(paths: Iterable[str | Path]) -> str | None:
    """A short digest over the names and contents of `paths` (None for no paths); raises OSError."""
    digest = hashlib.sha256()
    count = 0
    for path in paths:
        digest.update(str(path).encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
        digest.update(b"\0")
        count += 1
    if not count:
        return None
    return digest.hexdigest()[:_HASH_CHARS]


def label(parts: Mapping[str, str | None]) -> str | None:
    """`rules:abc123,ioc:def456` from named versions, None when all are None; cut to a wire label."""
    text = ",".join(f"{k}:{v}" for k, v in parts.items() if v)
    return text[:_LABEL_MAX] or None


@dataclass(frozen=True, slots=True)
class HealthInputs:
    """What the daemon's parts report at one moment."""

    packets: int = 0
    drops_kernel: int = 0
    drops_pipeline: int = 0
    flows_live: int = 0
    devices: int = 0
    events_by_type: Mapping[str, int] = field(default_factory=dict)
    # Events the agent could not put in the wire schema (the shipper counts its own refusals too).
    events_invalid: int = 0
    shipper: ShipperStats | None = None
    rules_version: str | None = None
    fingerprints_version: str | None = None
    # The privacy profile applied to shipped events (agent/privacy.py names: full, pseudonymised, minimal).
    privacy_profile: str | None = None


class HealthMonitor:
    """Builds `HealthEvent`s; remembers the agent's start, the last CPU sample and reload errors."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        process: psutil.Process | None = None,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._process = process or psutil.Process()
        self._started = monotonic()
        self._last_cpu = self._cpu_seconds()
        self._last_at = self._started
        self._version = agent_version()
        self.reload_error: str | None = None

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def cpu_percent(self) -> float:
        """Percent of one core used since the previous call (100.0 = a whole core)."""
        now = self._monotonic()
        cpu = self._cpu_seconds()
        elapsed = now - self._last_at
        share = (cpu - self._last_cpu) / elapsed if elapsed > 0 else 0.0
        self._last_cpu, self._last_at = cpu, now
        return max(share * 100.0, 0.0)

    def rss(self) -> int:
        """Resident set size in bytes."""
        return int(self._process.memory_info().rss)

    def event(self, inputs: HealthInputs) -> HealthEvent:
        """One health event from `inputs` and the process's own CPU and memory."""
        ship = inputs.shipper or ShipperStats()
        fields = ship.health_fields()
        alarms = list(fields.pop("alarms"))
        fields["events_invalid"] = fields.get("events_invalid", 0) + inputs.events_invalid
        if self.reload_error is not None:
            alarms.append(f"{RELOAD_ERROR}: {self.reload_error}")
        alarms = [a[:_MAX_ALARM_TEXT] for a in alarms[-_MAX_ALARMS:]]
        return HealthEvent(
            ts=self._clock(),
            packets=inputs.packets,
            drops_kernel=inputs.drops_kernel,
            drops_pipeline=inputs.drops_pipeline,
            flows_live=inputs.flows_live,
            devices=inputs.devices,
            cpu=round(self.cpu_percent(), 2),
            rss=self.rss(),
            uptime=round(self._monotonic() - self._started, 3),
            rules_version=inputs.rules_version,
            fingerprints_version=inputs.fingerprints_version,
            agent_version=self._version,
            events_by_type=dict(inputs.events_by_type),
            privacy_profile=inputs.privacy_profile,
            alarms=alarms,
            **fields,
        )
