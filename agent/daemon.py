"""The live agent: capture -> pipeline -> shipper, run by systemd for months.

Threads and tasks
- `LiveSource`'s capture thread reads the rings into its bounded block queue; when the pipeline
  lags, that queue fills and the capture thread drops whole blocks and counts them.
- One worker thread owns the `LivePipeline`: it takes blocks, feeds every frame (the pipeline's
  clock is the packets' kernel timestamps) and, between blocks, runs commands the event loop sends
  (install reloaded rules, bind neighbour-table entries, flush). A reload is therefore atomic between
  two packets. On wall-clock ticks it also expires idle flows (an idle link sends no packets to move
  the clock) and collects the devices that changed. Event lists reach the loop through
  `call_soon_threadsafe`; at most `MAX_HANDOFFS` are in flight, beyond that the worker waits, so a
  stuck loop shows up as counted capture drops, never as unbounded memory.
- The asyncio loop owns the shipper (`submit` never blocks), health events, systemd notifications
  (READY, STATUS, WATCHDOG, RELOADING, STOPPING), signals, neighbour-table polling and reloads.
SIGHUP builds the new configuration and knowledge (rules, IOCs, LAN detections, p0f) in a thread;
if anything fails the running set stays and the reason goes to the log and to health events.
SIGTERM stops capture, drains the block queue, flushes every flow and changed device, sends what
it can within `SEND_BUDGET`, and puts the rest in the spool (`Shipper.close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, TextIO

import msgspec

from agent.config import AgentConfig, ConfigInvalid, changed_keys, load_config
from agent.discovery import (  # noqa: F401  (re-exported for tests and callers)
    MdnsBrowser,
    captured_ifindexes,
    mdns_observation,
    neighbour_pairs,
)
from agent.health import HealthInputs, HealthMonitor
from agent.knowledge import Knowledge, ReloadError, build_knowledge
from agent.sdnotify import Notifier, watchdog_loop
from agent.wire import to_wire
from agent.worker import DRAIN_BUDGET, TICK, FrameSource, LivePipeline, PipelineWorker, SourceFactory  # noqa: F401
from capture.bpf import BpfError
from capture.live import LiveCaptureError, LiveSource
from telemetry.errors import ConfigError
from telemetry.schema import Event
from telemetry.shipper import Shipper

log = logging.getLogger("veille.agent")

# Event lists handed to the loop and not yet submitted, one per block fed: 64 default 256 KiB ring
# blocks are 16 MiB of traffic, ~0.13 s of a saturated gigabit link; past it the worker waits.
MAX_HANDOFFS: Final = 64
# The kernel neighbour table is read this often (ARP's base reachable time is 30 s, RFC 4861 and
# net.ipv4.neigh.default.base_reachable_time_ms).
NEIGHBOUR_INTERVAL: Final = 30.0
# STATUS= for `systemctl status` is refreshed this often.
STATUS_INTERVAL: Final = 5.0
# SIGTERM: the unit's TimeoutStopSec is 30 s. Capture stops within LiveSource's 5 s join; the worker
# feeds what the block queue still holds for at most DRAIN_BUDGET s (agent/worker.py), then at most
# SEND_BUDGET s sending and SPOOL_BUDGET s writing to the spool: 5+5+8+8 < 30.
SEND_BUDGET: Final = 8.0
SPOOL_BUDGET: Final = 8.0
# Active mDNS browsing (opt-in): one round per interval. RFC 6762 5.2 lets a continuous querier back
# off to one query per 60 minutes, the default.
MDNS_INTERVAL: Final = 3600.0
# Event types shipped to the collector. Observations (dhcp, dns, tls_client, ...) stay on the site
# unless a site names the kinds it ships (DESIGN: payloads and raw details stay local by default).
SHIPPED: Final = frozenset({"flow", "device", "alert"})
# Log at most one line per this many seconds for events the schema refuses.
_INVALID_LOG_INTERVAL: Final = 60.0


MAP_FLUSH_INTERVAL: Final = 10.0


def site_privacy(config: AgentConfig) -> Any:
    """The `agent.reveal.SitePrivacy` for `[privacy]`, or None when events leave unchanged.

    Raises `agent.privacy.PrivacyError` naming the key or file (a missing or weak key).
    """
    from agent.privacy import DEFAULT_MAP_FILE
    from agent.reveal import SitePrivacy

    cfg = config.privacy
    if cfg.map_file == DEFAULT_MAP_FILE and config.collector is not None:
        # Beside the spool, in the agent's state directory (the unit's StateDirectory=veille).
        cfg = dataclasses.replace(cfg, map_file=str(Path(config.collector.spool_dir).parent / "pseudonyms.jsonl"))
    privacy = SitePrivacy(cfg)
    return privacy if privacy.filter.active else None


class Daemon:
    """One run of the live agent: `await Daemon(config).run()` returns the exit status."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        notifier: Notifier | None = None,
        events_out: TextIO | None = None,
        source_factory: SourceFactory = LiveSource,
        mdns_interval: float | None = None,
        ship_observations: Iterable[str] = (),
    ) -> None:
        self.config = config
        self._shipped = SHIPPED | frozenset(ship_observations)
        # Active mDNS browsing is off unless asked for; AgentConfig has no key for it yet, so a future
        # [discovery] section (mdns_browse, mdns_interval) is read when present.
        section = getattr(config, "discovery", None)
        if mdns_interval is None and section is not None and getattr(section, "mdns_browse", False):
            mdns_interval = float(getattr(section, "mdns_interval", MDNS_INTERVAL))
        self.mdns: MdnsBrowser | None = None
        if mdns_interval is not None:
            self.mdns = MdnsBrowser(list(config.capture.interfaces), self._active_observation, mdns_interval)
        self._source_factory = source_factory
        self.notifier = notifier or Notifier()
        self.events_out = events_out
        self.health = HealthMonitor()
        self.knowledge = Knowledge()
        self.pipeline: LivePipeline | None = None
        self.source: FrameSource | None = None
        self.worker: PipelineWorker | None = None
        self.shipper: Shipper | None = None
        self.events_by_type: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self.privacy: Any = None
        self.poller: Any = None  # agent.fleet.BundlePoller when [fleet] is configured
        self.bundle_path: Path | None = None
        self.privacy_dropped: Counter[str] = Counter()
        self._next_invalid_log = 0.0
        self._stop = asyncio.Event()
        self._exit = 0
        self._handoffs = threading.BoundedSemaphore(MAX_HANDOFFS)
        self._reload_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> int:
        """Start everything, run until SIGTERM/SIGINT (or a fatal failure), shut down cleanly."""
        self._loop = loop = asyncio.get_running_loop()
        cfg = self.config
        try:
            if cfg.fleet is not None:
                from agent.fleet import BundlePoller

                self.poller = BundlePoller(cfg.fleet, reload=self.reload_bundle)
                self.bundle_path = self.poller.running_path
            self.knowledge = await asyncio.to_thread(build_knowledge, self._with_bundle(cfg))
        except ReloadError as exc:
            log.error("cannot load rules or fingerprints: %s", exc)
            return 1
        for skipped in self.knowledge.skipped[:20]:
            log.warning("rule skipped: %s", skipped)
        from agent.privacy import PrivacyError

        try:
            self.privacy = await asyncio.to_thread(site_privacy, cfg)
        except (PrivacyError, OSError) as exc:
            log.error("cannot apply the privacy profile: %s", exc)
            return 1
        self.pipeline = LivePipeline(cfg.pipeline, self.knowledge)
        if cfg.collector is not None:
            try:
                self.shipper = Shipper(cfg.collector)
                await self.shipper.start()
            except (ConfigError, OSError) as exc:
                log.error("cannot start the shipper (spool %s): %s", cfg.collector.spool_dir, exc)
                return 1
        else:
            log.warning("no [collector] table: events stay on this site")
        try:
            self.source = await asyncio.to_thread(
                self._source_factory, list(cfg.capture.interfaces), cfg.capture.live_config()
            )
        except (LiveCaptureError, BpfError, OSError) as exc:
            log.error("cannot capture: %s", exc)
            if self.shipper is not None:
                await self.shipper.close(SPOOL_BUDGET)
            return 1
        self.worker = PipelineWorker(self.source, self.pipeline, self._handoff, self.events_out)
        self.worker.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload(), "reload"))
        log.info(
            "capturing",
            extra={
                "interfaces": list(cfg.capture.interfaces),
                "rules_version": self.knowledge.rules_version,
                "collector": cfg.collector.url if cfg.collector else None,
            },
        )
        self.notifier.ready(self._status_text(0.0))
        worker = self.worker
        self._spawn(watchdog_loop(self.notifier, worker.alive), "watchdog")
        self._spawn(self._health_loop(), "health")
        self._spawn(self._status_loop(), "status")
        self._spawn(self._neighbour_loop(), "neighbours")
        self._spawn(self._map_loop(), "pseudonym-map")
        if self.mdns is not None:
            self._spawn(self.mdns.run(), "mdns")
        if self.poller is not None:
            self._spawn(self.poller.run(self._stop), "fleet")
        await self._stop.wait()
        await self._shutdown()
        return self._exit

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"veille-{name}")
        self._tasks.append(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def stop(self) -> None:
        """Ask the daemon to shut down (what SIGTERM does)."""
        self._stop.set()

    async def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("stopping: flushing flows and batches")
        for task in list(self._tasks):
            task.cancel()
        assert self.source is not None and self.worker is not None
        started = time.monotonic()
        await asyncio.to_thread(self.source.close)
        self.worker.stop()
        await asyncio.to_thread(self.worker.join)
        await self._barrier()
        p = self.pipeline
        if self.worker.failure is not None and p is not None:
            # The worker died: its thread is gone, so the loop may touch the pipeline to end its flows.
            with contextlib.suppress(Exception):
                p.flush()
            self._consume([e for e in p.take() if e.get("type") != "worker_failed"])
        log.info(
            "capture stopped, flows flushed",
            extra={
                "seconds": round(time.monotonic() - started, 3),
                "packets": p.packets if p else 0,
                "shutdown_drops": self.worker.shutdown_drops,
            },
        )
        try:
            await self._flush_map()
        except OSError as exc:
            log.warning("cannot write the pseudonym map: %s", exc)
        if self.shipper is not None:
            self._submit_health()
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self.shipper.flush(), SEND_BUDGET)
            await self.shipper.close(SPOOL_BUDGET)
            stats = self.shipper.stats()
            log.info(
                "stopped",
                extra={
                    "events": dict(self.events_by_type),
                    "events_acked": stats.events_acked,
                    "spool_batches": stats.spool_batches,
                    "shed": stats.shed,
                },
            )
        self.notifier.close()

    async def _barrier(self) -> None:
        """Wait until every event list the worker handed over has been submitted."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(done.set_result, None)  # runs after the callbacks already scheduled
        await done

    # -- events ----------------------------------------------------------------------------------
    def _handoff(self, events: list[dict[str, Any]]) -> None:
        """Worker thread: pass `events` to the loop, waiting while MAX_HANDOFFS are in flight."""
        loop = self._loop
        assert loop is not None
        while not self._handoffs.acquire(timeout=TICK):
            if loop.is_closed():
                return
        loop.call_soon_threadsafe(self._on_events, events)

    def _on_events(self, events: list[dict[str, Any]]) -> None:
        self._handoffs.release()
        self._consume(events)

    def _consume(self, events: list[dict[str, Any]]) -> None:
        shipper, privacy = self.shipper, self.privacy
        for item in events:
            kind = item["type"]
            if kind == "worker_failed":
                self._exit = 1
                self._stop.set()
                continue
            if kind not in self._shipped:
                continue
            if privacy is not None:
                filtered = privacy.filter.apply(item)
                if filtered is None:
                    self.privacy_dropped[kind] += 1
                    continue
                item = filtered
            try:
                event = to_wire(item)
            except msgspec.ValidationError as exc:
                self._invalid(kind, str(exc))
                continue
            if event is not None:
                self._submit(kind, event, shipper)

    def _submit(self, kind: str, event: Event, shipper: Shipper | None) -> None:
        self.events_by_type[kind] += 1
        if shipper is not None:
            shipper.submit(event)

    def _invalid(self, kind: str, reason: str) -> None:
        # Counted as produced and as invalid, so shipped = produced - invalid - shed holds in health.
        self.events_by_type[kind] += 1
        self.invalid[kind] += 1
        now = time.monotonic()
        if now >= self._next_invalid_log:
            self._next_invalid_log = now + _INVALID_LOG_INTERVAL
            log.warning("event refused by the wire schema", extra={"event_type": kind, "reason": reason[:200]})

    def _active_observation(self, event: dict[str, Any]) -> None:
        if self.worker is not None:
            self.worker.call(functools.partial(LivePipeline.observe_active, event=event))

    # -- health and status ------------------------------------------------------------------------
    def health_inputs(self) -> HealthInputs:
        """Counters of every part right now."""
        p, src = self.pipeline, self.source
        cap = src.stats() if src is not None else None
        return HealthInputs(
            packets=p.packets if p else 0,
            drops_kernel=cap.kernel_drops if cap else 0,
            drops_pipeline=(cap.pipeline_drops if cap else 0) + (self.worker.shutdown_drops if self.worker else 0),
            flows_live=len(p.flows) if p else 0,
            devices=p.devices_known if p else 0,
            events_by_type=dict(self.events_by_type),
            events_invalid=sum(self.invalid.values()),
            shipper=self.shipper.stats() if self.shipper else None,
            rules_version=(self.poller.running_version if self.poller is not None else None)
            or self.knowledge.rules_version,
            fingerprints_version=self.knowledge.fingerprints_version,
            privacy_profile=self.privacy.filter.config.profile if self.privacy is not None else "full",
        )

    def _submit_health(self) -> None:
        event = self.health.event(self.health_inputs())
        self._submit("health", event, self.shipper)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health.interval)
            self._submit_health()

    def _status_text(self, pps: float) -> str:
        p = self.pipeline
        flows = len(p.flows) if p else 0
        devices = p.devices_known if p else 0
        names = ",".join(self.config.capture.interfaces)
        return f"capturing on {names}: {pps:.0f} pkt/s, {flows} flows, {devices} devices"

    async def _status_loop(self) -> None:
        last = self.pipeline.packets if self.pipeline else 0
        at = time.monotonic()
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            now = time.monotonic()
            packets = self.pipeline.packets if self.pipeline else 0
            pps = (packets - last) / (now - at) if now > at else 0.0
            last, at = packets, now
            self.notifier.status(self._status_text(pps))

    async def _flush_map(self) -> None:
        privacy = self.privacy
        if privacy is not None:
            records = privacy.filter.take_mappings()
            if records:
                await asyncio.to_thread(privacy.record, records)

    async def _map_loop(self) -> None:
        while True:
            await asyncio.sleep(MAP_FLUSH_INTERVAL)
            try:
                await self._flush_map()
            except OSError as exc:
                log.warning("cannot write the pseudonym map: %s", exc)

    async def _neighbour_loop(self) -> None:
        interfaces = list(self.config.capture.interfaces)
        while True:
            try:
                pairs = await asyncio.to_thread(neighbour_pairs, interfaces)
            except OSError as exc:
                log.warning("cannot read the neighbour table: %s", exc)
            else:
                if pairs and self.worker is not None:
                    bind = functools.partial(LivePipeline.bind_neighbours, pairs=pairs, now=time.time())
                    await asyncio.wrap_future(self.worker.call(bind))
            await asyncio.sleep(NEIGHBOUR_INTERVAL)

    # -- reload ----------------------------------------------------------------------------------
    def _with_bundle(self, config: AgentConfig, path: Path | None = None) -> AgentConfig:
        """`config` with the files of the running (or candidate) fleet bundle added to its own."""
        path = path or self.bundle_path
        if path is None:
            return config
        from agent.fleet import bundle_files

        files = bundle_files(path)
        r = config.rules
        return dataclasses.replace(
            config,
            rules=dataclasses.replace(r, files=[*r.files, *files.rules], ioc_files=[*r.ioc_files, *files.ioc]),
        )

    async def reload_bundle(self, path: Path) -> bool:
        """The fleet poller's hook: load a verified bundle the way SIGHUP loads files; False keeps the old."""
        async with self._reload_lock:
            try:
                knowledge = await asyncio.to_thread(
                    build_knowledge, self._with_bundle(self.config, path), self.knowledge
                )
            except ReloadError as exc:
                self.health.reload_error = f"bundle {path.name}: {exc}"
                log.error("bundle refused, still running the previous one", extra={"reload_error": str(exc)})
                return False
            if self.worker is not None:
                await asyncio.wrap_future(self.worker.call(lambda p: p.install(knowledge)))
            self.knowledge = knowledge
            self.bundle_path = path
            self.health.reload_error = None
            log.info("bundle loaded", extra={"bundle": path.name, "rules_version": knowledge.rules_version})
            return True

    async def reload(self) -> bool:
        """SIGHUP: re-read the config, rules and fingerprint databases; keep the old ones on failure."""
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                await self._reload()
            except ReloadError as exc:
                self.health.reload_error = str(exc)
                log.error("reload failed, still running the previous configuration", extra={"reload_error": str(exc)})
                ok = False
            else:
                self.health.reload_error = None
                ok = True
            finally:
                self.notifier.ready(self._status_text(0.0))
            self._submit_health()
            return ok

    async def _reload(self) -> None:
        path = self.config.path
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigInvalid as exc:
            raise ReloadError("; ".join(str(p) for p in exc.problems)) from None
        knowledge = await asyncio.to_thread(build_knowledge, self._with_bundle(config), self.knowledge)
        old = self.config
        privacy = self.privacy
        if config.privacy != old.privacy:
            from agent.privacy import PrivacyError

            try:
                privacy = await asyncio.to_thread(site_privacy, config)
            except (PrivacyError, OSError) as exc:
                raise ReloadError(f"privacy: {exc}") from None
        assert self.source is not None and self.worker is not None
        if config.capture.bpf != old.capture.bpf:
            try:
                self.source.update_filter(config.capture.bpf)
            except (BpfError, OSError) as exc:
                raise ReloadError(f"capture.bpf: {exc}") from None
        live, restart = changed_keys(old, config)
        flows = config.pipeline

        def swap(p: LivePipeline) -> None:
            p.install(knowledge)
            p.set_flow_config(flows)

        await asyncio.wrap_future(self.worker.call(swap))
        self.knowledge = knowledge
        if privacy is not self.privacy:
            await self._flush_map()
            self.privacy = privacy
        if restart:
            log.warning("changed keys take effect at the next restart", extra={"keys": restart})
        # Keys needing a restart keep their running values, so the next reload compares with what runs.
        self.config = dataclasses.replace(
            config,
            agent=dataclasses.replace(old.agent, log_level=config.agent.log_level),
            capture=dataclasses.replace(old.capture, bpf=config.capture.bpf),
            collector=old.collector,
        )
        logging.getLogger().setLevel(config.agent.log_level.upper())
        log.info(
            "reloaded",
            extra={
                "rules_version": knowledge.rules_version,
                "fingerprints_version": knowledge.fingerprints_version,
                "rules_skipped": len(knowledge.skipped),
                "applied": live,
            },
        )
