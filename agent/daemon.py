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
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

import msgspec

from agent.config import AgentConfig, ConfigInvalid, changed_keys, load_config
from agent.health import HealthInputs, HealthMonitor, files_version, label
from agent.pipeline import Pipeline, PipelineConfig
from agent.sdnotify import Notifier, watchdog_loop
from agent.wire import to_wire
from capture.bpf import BpfError
from capture.flows import FlowConfig
from capture.live import Block, CaptureStats, LiveCaptureError, LiveConfig, LiveSource
from telemetry.errors import ConfigError
from telemetry.schema import Event
from telemetry.shipper import Shipper

log = logging.getLogger("veille.agent")

# Event lists handed to the loop and not yet submitted, one per block fed: 64 default 256 KiB ring
# blocks are 16 MiB of traffic, ~0.13 s of a saturated gigabit link; past it the worker waits.
MAX_HANDOFFS: Final = 64
# Wall-clock tick of the worker: idle flows are expired at the pipeline's own expire interval (1 s).
TICK: Final = 1.0
# A device that keeps changing is shipped at most this often.
DEVICE_INTERVAL: Final = 5.0
# The kernel neighbour table is read this often (ARP's base reachable time is 30 s, RFC 4861 and
# net.ipv4.neigh.default.base_reachable_time_ms).
NEIGHBOUR_INTERVAL: Final = 30.0
# STATUS= for `systemctl status` is refreshed this often.
STATUS_INTERVAL: Final = 5.0
# SIGTERM: the unit's TimeoutStopSec is 30 s. Capture stops within LiveSource's 5 s join; the worker
# feeds what the block queue still holds for at most DRAIN_BUDGET s (the rest is counted as pipeline
# drops), then at most SEND_BUDGET s sending and SPOOL_BUDGET s writing to the spool: 5+5+8+8 < 30.
DRAIN_BUDGET: Final = 5.0
SEND_BUDGET: Final = 8.0
SPOOL_BUDGET: Final = 8.0
# The watchdog is fed only while the worker has looped within this many ticks.
STALL_TICKS: Final = 10
# Active mDNS browsing (opt-in): one round per interval. RFC 6762 5.2 lets a continuous querier back
# off to one query per 60 minutes, the default; a round browses at most MDNS_MAX_TYPES service types
# and resolves at most MDNS_MAX_SERVICES instances, each step waiting MDNS_WAIT seconds (RFC 6762 6:
# responders answer within 20-120 ms, or up to 500 ms for shared records).
MDNS_INTERVAL: Final = 3600.0
MDNS_MAX_TYPES: Final = 32
MDNS_MAX_SERVICES: Final = 128
MDNS_WAIT: Final = 3.0
# DNS RR types (RFC 1035, RFC 2782, RFC 3596).
_PTR, _TXT, _SRV, _A, _AAAA = 12, 16, 33, 1, 28
# Event types shipped to the collector. Observations (dhcp, dns, tls_client, ...) stay on the site
# unless a site names the kinds it ships (DESIGN: payloads and raw details stay local by default).
SHIPPED: Final = frozenset({"flow", "device", "alert"})
# Neighbour entries that bind an address (ip neigh states); INCOMPLETE/FAILED/NOARP do not.
_BINDING_STATES: Final = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"})
# Log at most one line per this many seconds for events the schema refuses.
_INVALID_LOG_INTERVAL: Final = 60.0


class FrameSource(Protocol):
    """What the daemon needs of a capture source (`capture.live.LiveSource`)."""

    def read_tagged_block(self, timeout: float | None = None) -> Block | None: ...
    def update_filter(self, expression: str) -> None: ...
    def stats(self) -> CaptureStats: ...
    def close(self) -> None: ...


SourceFactory = Callable[[list[str], LiveConfig], FrameSource]


class ReloadError(Exception):
    """New knowledge that cannot replace the running one; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Knowledge:
    """What SIGHUP reloads: rules, IOC lists, LAN detections and fingerprint databases."""

    ruleset: Any = None
    engine: Any = None
    ioc: Any = None
    lan: Any = None
    p0f: Any = None
    detections: dict[str, Any] = dataclasses.field(default_factory=dict)
    rules_version: str | None = None
    fingerprints_version: str | None = None
    skipped: tuple[str, ...] = ()


def _variables(config: AgentConfig) -> dict[str, str]:
    home = config.rules.home_net
    return {"HOME_NET": "[" + ",".join(home) + "]"} if home else {}


def build_knowledge(config: AgentConfig, previous: Knowledge | None = None) -> Knowledge:
    """Load rules, IOCs, detections and p0f from `config`; raises `ReloadError` naming what failed.

    Rules that do not parse are skipped (as at start), except a rule whose sid the running set has
    loaded: a reload never silently loses a working rule. A rule set that loads nothing from files
    that hold rules is broken as a whole.
    """
    r, fp = config.rules, config.fingerprints
    ruleset = engine = ioc = p0f = None
    try:
        rules_v = files_version(r.files)
        ioc_v = files_version(r.ioc_files)
        p0f_path = fp.p0f if fp.p0f and Path(fp.p0f).is_file() else None
        fp_v = files_version([p for p in (p0f_path, fp.dhcp_db) if p])
    except OSError as exc:
        raise ReloadError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if r.files:
        from signatures.rules import EngineConfig, RuleEngine, load_rules
        from signatures.rules.errors import RuleError

        try:
            ruleset = load_rules(r.files, _variables(config))
        except RuleError as exc:
            raise ReloadError(f"rules: {exc}") from None
        if not ruleset.loaded and ruleset.skipped:
            raise ReloadError(f"rules: none of {len(ruleset.skipped)} rules loaded; first: {ruleset.skipped[0]}")
        if previous is not None and previous.ruleset is not None:
            running = {rule.sid for rule in previous.ruleset.rules}
            lost = [s for s in ruleset.skipped if s.sid is not None and s.sid in running]
            if lost:
                raise ReloadError(f"rules: {len(lost)} running rules no longer load; first: {lost[0]}")
        engine = RuleEngine(ruleset, EngineConfig())
    if r.ioc_files:
        from signatures.ioc import IocSet

        try:
            ioc = IocSet.load(r.ioc_files)
        except (OSError, ValueError) as exc:
            raise ReloadError(f"ioc_files: {exc}") from None
    detections = dataclasses.asdict(config.detections)
    if previous is not None and previous.lan is not None and previous.detections == detections:
        lan = previous.lan  # same settings: keep the detector's learnt state
    else:
        from agent.detections import LanDetector

        try:
            lan = LanDetector(detections)
        except (ValueError, TypeError) as exc:
            raise ReloadError(f"detections: {exc}") from None
    if p0f_path is not None:
        from signatures.p0f import P0fDatabase

        try:
            p0f = P0fDatabase.load(p0f_path)
        except (OSError, ValueError) as exc:
            raise ReloadError(f"fingerprints.p0f: {exc}") from None
    return Knowledge(
        ruleset=ruleset,
        engine=engine,
        ioc=ioc,
        lan=lan,
        p0f=p0f,
        detections=detections,
        rules_version=label({"rules": rules_v, "ioc": ioc_v}),
        fingerprints_version=label({"fp": fp_v}),
        skipped=tuple(str(s) for s in ruleset.skipped) if ruleset is not None else (),
    )


class LivePipeline(Pipeline):
    """The replay pipeline plus what a long run needs: wall-clock ticks, live device events, swaps.

    Only the worker thread calls its methods; the rest of the daemon reads its counters.
    """

    def __init__(self, flows: FlowConfig, knowledge: Knowledge) -> None:
        super().__init__(PipelineConfig(flows=flows, p0f_path=None))
        self._device_cursor = 0
        self.install(knowledge)

    def install(self, k: Knowledge) -> None:
        """Swap in reloaded knowledge (between two packets: the worker calls it between blocks)."""
        self.ruleset = k.ruleset
        self._engine = k.engine
        self._ioc = k.ioc
        self._lan = k.lan
        self._p0f = k.p0f
        self.observer.keep_streams = k.engine is not None

    def set_flow_config(self, config: FlowConfig) -> None:
        """New flow timeouts and caps for the running table (flows already open keep their state).

        FlowTable caches its timeouts at construction; they are recomputed here the same way.
        """
        table = self.flows
        if table.config != config:
            table.config = config
            table._timeouts = (config.tcp_timeout, config.udp_timeout, config.other_timeout, config.closed_linger)

    def tick(self, now: float) -> None:
        """End flows idle at wall-clock time `now` (no packet moved the clock)."""
        self.flows.expire(now)
        if self.flows.ended:
            self._flows_ended()

    def device_events(self) -> None:
        """Queue a `device` event for every device that changed since the last call."""
        if self._inventory is not None:
            events, self._device_cursor = self._inventory.changed_since(self._device_cursor)
            self.events.extend(events)

    def bind_neighbours(self, pairs: Iterable[tuple[str, str]], now: float) -> None:
        """IP-to-MAC bindings from the kernel neighbour table, as extra inventory evidence."""
        if self._inventory is not None:
            for ip, mac in pairs:
                self._inventory.bind(ip, mac, now, "neighbour")

    def observe_active(self, event: dict[str, Any]) -> bool:
        """An mDNS answer obtained by active browsing, attributed to the MAC holding its source address.

        It goes through the inventory exactly as a passively captured mDNS response does; False when
        no MAC is known for the address yet (the next round will try again).
        """
        inv = self._inventory
        if inv is None:
            return False
        mac = inv.mac_for(event["src"], event["ts"])
        if mac is None:
            return False
        event["src_mac"] = mac
        self.obs_counts["dns"] += 1
        self.events.append(event)
        inv.observe(event, event["ts"])
        return True

    def flush(self) -> None:
        """End every flow and queue the devices that changed (shutdown)."""
        self.flows.flush("eof")
        self._flows_ended()
        self.device_events()

    @property
    def devices_known(self) -> int:
        return len(self._inventory) if self._inventory is not None else 0


Command = Callable[[LivePipeline], Any]


class PipelineWorker:
    """The thread that owns the pipeline; see the module docstring."""

    def __init__(
        self,
        source: FrameSource,
        pipeline: LivePipeline,
        deliver: Callable[[list[dict[str, Any]]], None],
        events_out: TextIO | None = None,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self._deliver = deliver
        self._commands: queue.SimpleQueue[tuple[Command, concurrent.futures.Future[Any]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.failure: BaseException | None = None
        # Frames still queued at shutdown when DRAIN_BUDGET ran out (pipeline drops, reported).
        self.shutdown_drops = 0
        self.heartbeat = time.monotonic()
        self._writer: Any = None
        if events_out is not None:
            from agent.output import JsonlWriter

            self._writer = JsonlWriter(events_out)
        self._thread = threading.Thread(target=self._run, name="veille-pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        """The thread runs and has looped recently (for the watchdog)."""
        return self._thread.is_alive() and time.monotonic() - self.heartbeat < STALL_TICKS * TICK

    def call(self, command: Command) -> concurrent.futures.Future[Any]:
        """Run `command(pipeline)` in the worker between two blocks; the future holds its result."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._commands.put((command, future))
        return future

    def stop(self) -> None:
        """Ask the worker to drain the block queue, flush and exit (after the source is closed)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.failure = exc
            log.exception("pipeline worker failed")
            self._emit([{"type": "worker_failed"}])

    def _loop(self) -> None:
        p = self.pipeline
        feed = p.feed
        read = self.source.read_tagged_block
        next_tick = time.time() + TICK
        next_devices = time.time() + DEVICE_INTERVAL
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._run_commands()
            block = read(TICK / 4)
            if block is not None:
                for frame in block.frames:
                    feed(frame)
            now = time.time()
            if now >= next_tick:
                next_tick = now + TICK
                # Packets move the clock while traffic flows; this covers an idle link.
                if now - p.last_ts >= TICK:
                    p.tick(now)
                if now >= next_devices:
                    next_devices = now + DEVICE_INTERVAL
                    p.device_events()
            if p.events:
                self._emit(p.take())
        # The source is closed: what its queue still holds was captured; feed it while time allows.
        deadline = time.monotonic() + DRAIN_BUDGET
        while (block := read(0)) is not None:
            if time.monotonic() < deadline:
                for frame in block.frames:
                    feed(frame)
            else:
                self.shutdown_drops += len(block.frames)
        self._run_commands()
        p.flush()
        self._emit(p.take())

    def _run_commands(self) -> None:
        while True:
            try:
                command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(command(self.pipeline))
            except Exception as exc:
                future.set_exception(exc)

    def _emit(self, events: list[dict[str, Any]]) -> None:
        if self._writer is not None:
            self._writer.write(events)
        self._deliver(events)


def captured_ifindexes(names: Iterable[str]) -> set[int]:
    """Current kernel indexes of the captured interfaces (absent ones are skipped)."""
    import socket

    out = set()
    for name in names:
        with contextlib.suppress(OSError):
            out.add(socket.if_nametoindex(name))
    return out


def neighbour_pairs(interfaces: Iterable[str]) -> list[tuple[str, str]]:
    """(ip, mac) of the kernel neighbour entries on the captured interfaces that bind an address."""
    from capture.netinfo import neighbours

    wanted = captured_ifindexes(interfaces)
    out = []
    for n in neighbours():
        first_octet = int(n.mac[:2], 16) if len(n.mac) >= 2 else 1
        if n.ifindex in wanted and n.mac != "00:00:00:00:00:00" and not first_octet & 1:
            if any(state in _BINDING_STATES for state in n.state.split("|")):
                out.append((n.ip, n.mac))
    return out


def _txt(properties: dict[bytes, bytes | None]) -> str:
    parts = []
    for key, value in list(properties.items())[:64]:
        k = key.decode("utf-8", "replace")
        text = k if value is None else f"{k}={value.decode('utf-8', 'replace')}"
        parts.append('"' + text.replace('"', "'") + '"')
    return " ".join(parts)


def mdns_observation(info: Any, address: str, local: str, now: float) -> dict[str, Any]:
    """A resolved zeroconf `ServiceInfo` as the `dns` observation a passive mDNS response gives."""
    name, type_ = info.name.rstrip("."), info.type.rstrip(".")
    server = (info.server or "").rstrip(".")
    answers: list[dict[str, Any]] = [{"name": type_, "type": _PTR, "ttl": info.other_ttl, "data": name}]
    if server:
        answers.append({"name": name, "type": _SRV, "ttl": info.host_ttl, "data": f"0 0 {info.port or 0} {server}"})
        rtype = _AAAA if ":" in address else _A
        answers.append({"name": server, "type": rtype, "ttl": info.host_ttl, "data": address})
    if info.properties:
        answers.append({"name": name, "type": _TXT, "ttl": info.other_ttl, "data": _txt(info.properties)})
    return {
        "type": "dns", "ts": now, "src_mac": None, "dst_mac": None, "src": address, "dst": local,
        "sport": 5353, "dport": 5353, "proto": "udp", "community_id": None, "pkt": 0, "proto_name": "mdns",
        "id": 0, "response": True, "query": None, "qtype": None, "queries": [], "rcode": 0,
        "answers": answers, "additionals": [], "active": True,
    }  # fmt: skip


class MdnsBrowser:
    """Opt-in active mDNS browsing with python-zeroconf on the captured interfaces' IPv4 addresses.

    Each round lists the service types on the link (DNS-SD enumeration, RFC 6763 9), browses them,
    resolves the instances, and hands each answer to `deliver` as a passive-looking observation.
    Rounds are `interval` seconds apart; a round is bounded by the MDNS_* caps.
    """

    def __init__(self, interfaces: list[str], deliver: Callable[[dict[str, Any]], None], interval: float) -> None:
        self.interfaces = interfaces
        self.deliver = deliver
        self.interval = interval
        self.rounds = 0
        self.resolved = 0

    def _addresses(self) -> list[str]:
        import ipaddress

        from capture.netinfo import list_interfaces

        wanted = set(self.interfaces)
        return [
            a
            for i in list_interfaces()
            if i.name in wanted
            for a in i.addresses
            if ipaddress.ip_address(a).version == 4
        ]

    async def run(self) -> None:
        """Browse forever, one round per interval."""
        while True:
            try:
                await self.browse_once()
            except (OSError, RuntimeError) as exc:
                log.warning("mDNS browsing failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def browse_once(self) -> int:
        """One bounded round; returns the number of services resolved."""
        from zeroconf import IPVersion, ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf, AsyncZeroconfServiceTypes

        addresses = await asyncio.to_thread(self._addresses)
        if not addresses:
            log.warning("mDNS browsing: no IPv4 address on %s, skipped", ",".join(self.interfaces))
            return 0
        self.rounds += 1
        aiozc = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        found: dict[str, str] = {}

        def added(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
            if state_change is ServiceStateChange.Added and len(found) < MDNS_MAX_SERVICES:
                found[name] = service_type

        try:
            types = await AsyncZeroconfServiceTypes.async_find(aiozc=aiozc, timeout=MDNS_WAIT)
            types = tuple(types)[:MDNS_MAX_TYPES]
            if not types:
                return 0
            browser = AsyncServiceBrowser(aiozc.zeroconf, list(types), handlers=[added])
            await asyncio.sleep(MDNS_WAIT)
            await browser.async_cancel()
            infos = [AsyncServiceInfo(t, n) for n, t in found.items()]
            done = await asyncio.gather(*(i.async_request(aiozc.zeroconf, MDNS_WAIT * 1000) for i in infos))
            now = time.time()
            count = 0
            for info, ok in zip(infos, done, strict=True):
                if not ok:
                    continue
                count += 1
                for address in info.parsed_addresses(IPVersion.V4Only):
                    self.deliver(mdns_observation(info, address, addresses[0], now))
            self.resolved += count
            log.info("mDNS browsing round", extra={"types": len(types), "services": count})
            return count
        finally:
            await aiozc.async_close()


# Pseudonym -> value records are appended to the site-local map this often (blocking I/O, in a thread).
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
