"""The pipeline worker thread of the live agent: takes frame blocks from the capture queue, feeds
the `LivePipeline` (the replay pipeline plus live hooks), runs commands from the event loop between
blocks (so a reload is atomic between two packets) and hands event lists back to the loop."""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, TextIO

from agent.knowledge import Knowledge
from agent.pipeline import Pipeline, PipelineConfig, settle_gc
from capture.flows import FlowConfig
from capture.live import Block, CaptureStats, LiveConfig

log = logging.getLogger("veille.agent")

# Wall-clock tick of the worker: idle flows are expired at the pipeline's own expire interval (1 s).
TICK: Final = 1.0
# A device that keeps changing is shipped at most this often.
DEVICE_INTERVAL: Final = 5.0
# SIGTERM: the worker feeds what the block queue still holds for at most DRAIN_BUDGET s (the rest is
# counted as pipeline drops); see agent/daemon.py for the whole stop budget.
DRAIN_BUDGET: Final = 5.0
# The watchdog is fed only while the worker has looped within this many ticks.
STALL_TICKS: Final = 10


class FrameSource(Protocol):
    """What the daemon needs of a capture source (`capture.live.LiveSource`)."""

    def read_tagged_block(self, timeout: float | None = None) -> Block | None: ...
    def update_filter(self, expression: str) -> None: ...
    def stats(self) -> CaptureStats: ...
    def close(self) -> None: ...


SourceFactory = Callable[[list[str], LiveConfig], FrameSource]


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
        # Bypass modes were decided with the old rules: every flow decides again with the new ones.
        self.flows.reset_fast()
        settle_gc()  # the previous rules and databases become garbage; the new ones leave the collector's sight

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
        feed = p.feed_frames
        read = self.source.read_tagged_block
        next_tick = time.time() + TICK
        next_devices = time.time() + DEVICE_INTERVAL
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._run_commands()
            block = read(TICK / 4)
            if block is not None:
                feed(block.frames)
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
                feed(block.frames)
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
