"""The SIEM hub: stored batches in, EVE records out to every configured sink, never blocking ingest.

Ingest hands each newly stored batch to `SiemHub.submit`, which only enqueues it (a bounded queue; a full
queue drops the batch and counts it, because the batch is safe in the store and SIEM export is
best-effort). One worker converts the batch's events to EVE (telemetry.eve, one converter per agent so
`veille.device` enrichment follows each site's devices) and gives the records to every sink in turn; a
sink that fails is counted and logged, the others still get the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from collector.siem.file import EveFileSink
from collector.siem.jetstream import JetStreamEveSink
from collector.siem.syslog import SyslogSink
from collector.siem.webhook import WebhookSink
from telemetry.eve import EveConverter, EveError, EveRecord
from telemetry.schema import Batch

log = logging.getLogger("veille.collector.siem")
# Batches waiting for export: at the shipper's 5,000 events a batch, 1,000 batches is ~5M events, minutes
# of a busy fleet; beyond that the SIEM is down or too slow and waiting longer only costs memory.
DEFAULT_QUEUE = 1000
# Agents whose converter (device map) is kept; a city has tens of sites, a large fleet a few thousand.
MAX_AGENTS = 4096


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def send(self, items: Sequence[tuple[str, EveRecord]]) -> None: ...

    async def close(self) -> None: ...


class SiemConfigError(ValueError):
    """A `[siem]` value that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class SiemConfig:
    """`[siem]` of the collector config: one optional table per sink."""

    queue: int = DEFAULT_QUEUE
    file: dict[str, Any] = field(default_factory=dict)
    syslog: dict[str, Any] = field(default_factory=dict)
    nats: dict[str, Any] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SiemConfig:
        unknown = sorted(set(table) - {"queue", "file", "syslog", "nats", "webhook"})
        if unknown:
            raise SiemConfigError(f"siem.{unknown[0]}: unknown key")
        queue = table.get("queue", DEFAULT_QUEUE)
        if not isinstance(queue, int) or queue < 1:
            raise SiemConfigError("siem.queue: expected a positive integer")
        tables = {}
        for name in ("file", "syslog", "nats", "webhook"):
            value = table.get(name, {})
            if not isinstance(value, dict):
                raise SiemConfigError(f"siem.{name}: expected a table")
            tables[name] = dict(value)
        return cls(queue=queue, **tables)


_SINK_KEYS: dict[str, tuple[type[Any], set[str], set[str]]] = {
    "file": (EveFileSink, {"path"}, {"max_bytes", "max_age", "keep"}),
    "syslog": (SyslogSink, {"host", "port"}, {"tls", "cafile", "server_hostname", "timeout"}),
    "nats": (JetStreamEveSink, {"url"}, {"stream", "prefix", "timeout"}),
    "webhook": (
        WebhookSink,
        {"url", "dead_letter"},
        {"max_severity", "attempts", "backoff", "max_backoff", "timeout", "headers"},
    ),
}


def build_sinks(config: SiemConfig) -> list[Sink]:
    """One sink per configured table; SiemConfigError names a missing or unknown key."""
    sinks: list[Sink] = []
    for name, (cls, required, optional) in _SINK_KEYS.items():
        table: dict[str, Any] = getattr(config, name)
        if not table:
            continue
        missing = sorted(required - set(table))
        if missing:
            raise SiemConfigError(f"siem.{name}.{missing[0]}: required")
        unknown = sorted(set(table) - required - optional)
        if unknown:
            raise SiemConfigError(f"siem.{name}.{unknown[0]}: unknown key")
        try:
            sinks.append(cls(**table))
        except (TypeError, ValueError) as exc:
            raise SiemConfigError(f"siem.{name}: {exc}") from None
    return sinks


class SiemHub:
    """Queue of stored batches -> EVE records -> every sink."""

    def __init__(
        self, sinks: Sequence[Sink], queue: int = DEFAULT_QUEUE, categories: Mapping[str, str] | None = None
    ) -> None:
        self.sinks = list(sinks)
        self.categories = categories
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(queue)
        self._converters: OrderedDict[str, EveConverter] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0
        self.records = 0
        self.errors: Counter[str] = Counter()

    async def start(self) -> None:
        """Start every sink (a sink that cannot start fails the collector's start-up), then the worker."""
        started: list[Sink] = []
        try:
            for sink in self.sinks:
                await sink.start()
                started.append(sink)
        except BaseException:
            for sink in started:
                await sink.close()
            raise
        self._worker = asyncio.create_task(self._run(), name="siem-export")

    def submit(self, batch: Batch) -> bool:
        """Queue a stored batch for export; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def records_of(self, batch: Batch) -> list[tuple[str, EveRecord]]:
        """(message id `agent:seq:index`, EVE record) for every event of a batch that has an EVE form."""
        converter = self._converters.get(batch.agent_id)
        if converter is None:
            converter = EveConverter(host=batch.agent_id, site=batch.site, categories=self.categories)
            self._converters[batch.agent_id] = converter
            if len(self._converters) > MAX_AGENTS:
                self._converters.popitem(last=False)
        self._converters.move_to_end(batch.agent_id)
        out = []
        for index, event in enumerate(batch.events):
            try:
                record = converter.convert(event)
            except EveError as exc:
                self.errors["convert"] += 1
                log.warning("event %s:%s:%s has no EVE form: %s", batch.agent_id, batch.seq, index, exc)
                continue
            if record is not None:
                out.append((f"{batch.agent_id}:{batch.seq}:{index}", record))
        return out

    async def _run(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                # Off the event loop: a 5,000-event batch takes tens of ms to convert. One worker, so the
                # converters are only ever used by one thread at a time.
                items = await asyncio.to_thread(self.records_of, batch)
                self.records += len(items)
                for sink in self.sinks:
                    try:
                        await sink.send(items)
                    except Exception as exc:  # one failing sink must not stop the others or the worker
                        self.errors[sink.name] += 1
                        log.warning("SIEM sink %s failed for %s:%s: %s", sink.name, batch.agent_id, batch.seq, exc)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued batch went through every sink."""
        await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Finish queued batches (up to `timeout` seconds), then stop the worker and the sinks."""
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception as exc:  # closing is best-effort at shutdown
                log.warning("SIEM sink %s did not close cleanly: %s", sink.name, exc)


SIEM = web.AppKey("siem", SiemHub)


def setup_siem(
    app: web.Application, config: SiemConfig | Mapping[str, Any], categories: Mapping[str, str] | None = None
) -> SiemHub | None:
    """Attach the SIEM hub to a collector app (started and closed with it); None when no sink is configured."""
    cfg = config if isinstance(config, SiemConfig) else SiemConfig.from_mapping(config)
    sinks = build_sinks(cfg)
    if not sinks:
        return None
    hub = SiemHub(sinks, cfg.queue, categories)
    app[SIEM] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.close()

    app.cleanup_ctx.append(lifecycle)
    return hub


def publish_batch(app: web.Application, batch: Batch) -> None:
    """Hand a newly stored batch to the SIEM hub, if there is one (the hook ingest calls)."""
    hub = app.get(SIEM)
    if hub is not None:
        hub.submit(batch)
