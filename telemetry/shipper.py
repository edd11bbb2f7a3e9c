"""The shipper: batches events, signs and POSTs them to the collector, spools what cannot be sent.

Strategy
- `submit(event)` is synchronous and does no I/O: it appends to the open batch and, when the batch is full
  (count or bytes), moves it to a queue and wakes the sender task. Capture never waits on the network.
  A bounded in-memory backlog protects memory if even the disk cannot keep up: past it, flow summaries
  and observations are dropped and counted as shed.
- One sender task owns the network and the spool. It closes batches on age, numbers them from the spool's
  persistent counter, and sends strictly in sequence order: spooled batches (always older) before the
  in-memory queue. While the uplink is healthy, a small in-memory queue avoids an fsync per batch; as soon
  as a send fails, everything in memory goes to the spool and later batches go straight there until the
  collector answers again. Disk work runs in a worker thread.
- Answers: 2xx acknowledges; 408, 429, 5xx and network errors back off (exponential, equal jitter,
  `Retry-After` honoured) and retry; 401/403 with an authentication reason are counted by reason in
  `auth_refused`, raise an alarm and retry later (the batch is fine, the credentials or the clock are not);
  any other 4xx moves the batch to `rejected/` with the collector's reason and raises an alarm.
- `close(timeout)` (SIGTERM) writes the open batch and the in-memory queue to the spool within `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import msgspec

from telemetry.codec import CONTENT_TYPE, INGEST_PATH, compress, encode_batch, new_batch, validate_event
from telemetry.config import ShipperConfig, is_loopback
from telemetry.errors import AUTH_REASONS, ConfigError, SchemaError
from telemetry.schema import Batch, Event, event_type, to_event
from telemetry.signing import sign
from telemetry.spool import Spool

log = logging.getLogger("veille.telemetry.shipper")

# Batches kept in memory while the uplink is healthy before they go to disk: two keeps one in flight
# and one ready without an fsync each, and bounds what a crash can lose to two batches.
MEMORY_QUEUE: Final = 2
# Closed-but-unnumbered batches the sender may lag behind, in units of batch_max_bytes, before submit()
# sheds flow summaries and observations (and, at 4x, everything): 8 MiB with the default 1 MiB batches.
BACKLOG_BATCHES: Final = 8
# Response bodies read for a reason: enough for the collector's JSON error (TelemetryError.as_json()).
MAX_ERROR_BODY: Final = 4096
# A collector's Retry-After is honoured up to an hour, so a wrong header cannot park an agent for days.
MAX_RETRY_AFTER: Final = 3600.0
_VOLUME_KINDS: Final = frozenset({"flow", "obs"})
_ENCODER: Final = msgspec.msgpack.Encoder()


@dataclass(frozen=True, slots=True)
class ShipperStats:
    """Counters since the shipper started (the health event's telemetry fields)."""

    events_submitted: int = 0
    events_invalid: int = 0
    events_acked: int = 0
    batches_sent: int = 0
    batches_acked: int = 0
    batches_spooled: int = 0
    batches_rejected: int = 0
    send_errors: int = 0
    spool_batches: int = 0
    spool_bytes: int = 0
    corrupt: int = 0
    uplink_bytes: int = 0
    shed: dict[str, int] = field(default_factory=dict)
    auth_refused: dict[str, int] = field(default_factory=dict)
    alarms: tuple[str, ...] = ()

    def health_fields(self) -> dict[str, Any]:
        """The `HealthEvent` keyword arguments these counters fill."""
        return {
            "batches_sent": self.batches_sent,
            "batches_acked": self.batches_acked,
            "batches_spooled": self.batches_spooled,
            "batches_rejected": self.batches_rejected,
            "spool_bytes": self.spool_bytes,
            "shed": dict(self.shed),
            "uplink_bytes": self.uplink_bytes,
            "events_invalid": self.events_invalid,
            "auth_refused": dict(self.auth_refused),
            "alarms": list(self.alarms),
        }


@dataclass(frozen=True, slots=True)
class ShipResult:
    """How a `ship_events` run ended: everything acknowledged, or the rest left in the spool."""

    events: int
    acked_events: int
    spooled_events: int
    spooled_batches: int
    rejected_batches: int
    shed: dict[str, int]
    auth_refused: dict[str, int]
    invalid_events: int = 0

    @property
    def complete(self) -> bool:
        """Every event acknowledged: nothing spooled, rejected, shed or refused as invalid."""
        return self.spooled_batches == 0 and self.rejected_batches == 0 and not self.shed and not self.invalid_events


@dataclass(slots=True)
class _Outcome:
    kind: str  # "acked", "retry", "auth", "rejected"
    status: int = 0
    reason: str = ""
    detail: str = ""
    retry_after: float = 0.0


def make_ssl_context(config: ShipperConfig) -> ssl.SSLContext | None:
    """TLS context for an https collector: system CAs or `ca_file`, plus the optional client certificate."""
    if urlsplit(config.url).scheme != "https":
        return None
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if config.client_cert is not None:
            key = str(config.client_key) if config.client_key else None
            context.load_cert_chain(str(config.client_cert), key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"collector TLS files: {exc}") from None
    return context


class Shipper:
    """Batches, signs, sends and spools events; use `async with Shipper(config) as shipper`."""

    def __init__(
        self,
        config: ShipperConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        host = urlsplit(config.url).hostname or ""
        if urlsplit(config.url).scheme == "http" and not (config.allow_insecure or is_loopback(host)):
            raise ConfigError(f"collector.url: plain http to {host} refused (allow_insecure = true to force)")
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._url = config.url.rstrip("/") + INGEST_PATH
        self._spool: Spool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._current: list[Event] = []
        self._current_bytes = 0
        self._opened = 0.0
        self._closed: deque[list[Event]] = deque()
        self._closed_bytes: deque[int] = deque()
        self._backlog_bytes = 0
        self._memory: deque[Batch] = deque()
        self._uplink_ok = True
        self._attempt = 0
        self._retry_at = 0.0
        self._last_failed = False
        self._closing = False
        self._c: Counter[str] = Counter()
        self._shed: Counter[str] = Counter()
        self._auth: Counter[str] = Counter()
        self._alarms: deque[str] = deque(maxlen=16)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the spool, the HTTP session and the sender task."""
        cfg = self.config
        self._spool = await asyncio.to_thread(Spool, cfg.spool_dir, cfg.spool_max_bytes, cfg.encoding)
        connector = aiohttp.TCPConnector(ssl=make_ssl_context(cfg) or False, limit=1)
        timeout = aiohttp.ClientTimeout(total=cfg.request_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        self._task = asyncio.create_task(self._run(), name="veille-shipper")

    async def __aenter__(self) -> Shipper:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop sending; put the open batch and the in-memory queue in the spool within `timeout` s."""
        self._closing = True
        self._close_current()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        try:
            await asyncio.wait_for(self._spool_everything(), timeout)
        finally:
            if self._session is not None:
                await self._session.close()

    async def _spool_everything(self) -> None:
        if self._spool is None:  # never started: nothing was numbered, nothing can be spooled
            return
        await self._number_closed()
        while self._memory:
            await self._to_spool(self._memory[0])
            self._memory.popleft()

    # -- intake ---------------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        """Queue one event; never blocks and never does I/O. Call from the shipper's event loop."""
        if self._closing:
            raise RuntimeError("shipper is closed")
        self._c["events_submitted"] += 1
        backlog = self._backlog_bytes
        if backlog >= BACKLOG_BATCHES * self.config.batch_max_bytes:
            kind = event_type(event)
            if kind in _VOLUME_KINDS or backlog >= 4 * BACKLOG_BATCHES * self.config.batch_max_bytes:
                self._shed[kind] += 1
                return
        raw = _ENCODER.encode(event)
        try:
            validate_event(raw)  # Struct constructors do not check constraints; the collector would
        except SchemaError as exc:
            self._c["events_invalid"] += 1
            self._alarm(f"invalid {event_type(event)} event dropped: {exc}")
            return
        if not self._current:
            self._opened = time.monotonic()
            self._wake.set()
        self._current.append(event)
        self._current_bytes += len(raw)
        cfg = self.config
        if len(self._current) >= cfg.batch_max_events or self._current_bytes >= cfg.batch_max_bytes:
            self._close_current()

    def _close_current(self) -> None:
        if self._current:
            self._closed.append(self._current)
            self._backlog_bytes += self._current_bytes
            self._closed_bytes.append(self._current_bytes)
            self._current = []
            self._current_bytes = 0
            self._wake.set()

    async def flush(self) -> None:
        """Close the open batch; return once every batch so far is acknowledged or in the spool."""
        self._close_current()
        while self._closed or self._memory:
            self._wake.set()
            await self._wait_progress()

    async def drain(self, give_up_after: float = 0.0) -> None:
        """Return once everything is acknowledged, or is in the spool and the last send failed.

        With `give_up_after` > 0 the shipper keeps retrying that many seconds before settling for the spool.
        """
        await self.flush()
        deadline = time.monotonic() + give_up_after
        assert self._spool is not None
        while len(self._spool) or self._memory or self._closed:
            if self._last_failed and not self._memory and time.monotonic() >= deadline:
                return
            self._wake.set()
            await self._wait_progress()

    async def _wait_progress(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("shipper is not running")
        self._progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), 0.5)

    # -- sender ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._wait_for_work()
                if time.monotonic() - self._opened >= self.config.batch_max_age:
                    self._close_current()
                await self._number_closed()
                if time.monotonic() >= self._retry_at:
                    await self._send_next()
            except OSError as exc:  # the disk (spool, seq counter): alarm, wait, try again
                self._alarm(f"spool I/O failed: {exc}")
                await asyncio.sleep(self.config.backoff_initial)
            except Exception as exc:  # a bug must not silently stop delivery: say so, keep going
                log.exception("shipper sender step failed")
                self._alarm(f"shipper error: {type(exc).__name__}: {exc}")
                await asyncio.sleep(self.config.backoff_max)
            self._progress.set()

    async def _wait_for_work(self) -> None:
        now = time.monotonic()
        deadlines = []
        if self._current:
            deadlines.append(self._opened + self.config.batch_max_age)
        if self._memory or (self._spool is not None and len(self._spool)):
            deadlines.append(max(self._retry_at, now))
        if self._closed:
            deadlines.append(now)
        wait = max(0.0, min(deadlines) - now) if deadlines else None
        if wait == 0.0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)
        self._wake.clear()

    async def _number_closed(self) -> None:
        spool = self._spool
        assert spool is not None
        # Peek, act, then pop: a cancellation (close) in between leaves the batch where close() finds it.
        while self._closed:
            seq = await asyncio.to_thread(spool.next_seq)
            cfg = self.config
            events = self._closed.popleft()
            self._backlog_bytes -= self._closed_bytes.popleft()
            self._memory.append(new_batch(cfg.agent_id, cfg.site, seq, self._clock(), events))
        limit = MEMORY_QUEUE if self._uplink_ok else 0
        while len(self._memory) > limit:
            await self._to_spool(self._memory[0])
            self._memory.popleft()

    async def _to_spool(self, batch: Batch) -> None:
        spool = self._spool
        assert spool is not None
        before = Counter(spool.shed)
        try:
            stored = await asyncio.to_thread(spool.put, batch)
        except OSError as exc:
            # Disk full or failing: the batch cannot be kept. Count it as shed, never stop the sender.
            self._shed.update(event_type(e) for e in batch.events)
            self._alarm(f"spool write failed, {len(batch.events)} events dropped: {exc}")
            return
        finally:
            self._shed.update(Counter(spool.shed) - before)
        shed_now = Counter(spool.shed) - before
        if shed_now:
            # The spool's size bound made room by shedding (flows first, alerts last): say so, by kind.
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(shed_now.items()))
            self._alarm(f"spool full ({spool.max_bytes} bytes): shed {kinds}")
        if stored:
            self._c["batches_spooled"] += 1

    async def _send_next(self) -> None:
        spool = self._spool
        assert spool is not None
        pending = spool.pending()
        if pending:
            seq = pending[0]
            loaded = await asyncio.to_thread(spool.load, seq)
            if loaded is None:
                return
            outcome = await self._post(loaded.body, loaded.encoding)
            await self._settle(outcome, seq, loaded.events, from_memory=None)
        elif self._memory:
            batch = self._memory[0]
            body = await asyncio.to_thread(compress, encode_batch(batch), self.config.encoding)
            outcome = await self._post(body, self.config.encoding)
            await self._settle(outcome, batch.seq, len(batch.events), from_memory=batch)

    async def _post(self, body: bytes, encoding: str) -> _Outcome:
        session = self._session
        assert session is not None
        cfg = self.config
        headers = sign(cfg.agent_id, cfg.secret, body, self._clock())
        headers["Content-Type"] = CONTENT_TYPE
        headers["Content-Encoding"] = encoding
        self._c["uplink_bytes"] += len(body)
        try:
            async with session.post(self._url, data=body, headers=headers) as resp:
                text = (await resp.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace")
                self._c["batches_sent"] += 1
                return _classify(resp.status, text, resp.headers.get("Retry-After"), self._clock())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._c["send_errors"] += 1
            if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
                self._alarm(f"TLS with the collector failed: {exc}")  # will not heal by retrying alone
            return _Outcome("retry", detail=f"{type(exc).__name__}: {exc}")

    async def _settle(self, outcome: _Outcome, seq: int, events: int, from_memory: Batch | None) -> None:
        spool = self._spool
        assert spool is not None
        if outcome.kind == "acked":
            if from_memory is not None:
                self._memory.popleft()
            else:
                await asyncio.to_thread(spool.ack, seq)
            self._c["batches_acked"] += 1
            self._c["events_acked"] += events
            self._uplink_ok, self._attempt, self._last_failed = True, 0, False
            return
        if outcome.kind == "rejected":
            if from_memory is not None:
                await self._to_spool(from_memory)
                self._memory.popleft()
            await asyncio.to_thread(spool.reject, seq, outcome.status, outcome.reason, outcome.detail)
            self._c["batches_rejected"] += 1
            self._alarm(f"batch {seq} rejected ({outcome.status} {outcome.reason}): {outcome.detail}")
            return
        if outcome.kind == "auth":
            self._auth[outcome.reason] += 1
            self._alarm(f"collector refused credentials: {outcome.reason}")
        self._uplink_ok, self._last_failed = False, True
        while self._memory:
            await self._to_spool(self._memory[0])
            self._memory.popleft()
        top = min(self.config.backoff_max, self.config.backoff_initial * 2.0 ** min(self._attempt, 30))
        delay = max(top / 2 + self._rng.uniform(0, top / 2), min(outcome.retry_after, MAX_RETRY_AFTER))
        self._attempt += 1
        self._retry_at = time.monotonic() + delay

    def _alarm(self, text: str) -> None:
        self._alarms.append(text[:1024])

    # -- counters -------------------------------------------------------------------------------------
    def stats(self) -> ShipperStats:
        """A snapshot of the counters."""
        spool = self._spool
        c = self._c
        return ShipperStats(
            events_submitted=c["events_submitted"],
            events_invalid=c["events_invalid"],
            events_acked=c["events_acked"],
            batches_sent=c["batches_sent"],
            batches_acked=c["batches_acked"],
            batches_spooled=c["batches_spooled"],
            batches_rejected=c["batches_rejected"],
            send_errors=c["send_errors"],
            spool_batches=len(spool) if spool else 0,
            spool_bytes=spool.bytes_used if spool else 0,
            corrupt=spool.corrupt if spool else 0,
            uplink_bytes=c["uplink_bytes"],
            shed=dict(self._shed),
            auth_refused=dict(self._auth),
            alarms=tuple(self._alarms),
        )

    @property
    def spool(self) -> Spool:
        """The spool (after `start()`)."""
        if self._spool is None:
            raise RuntimeError("shipper not started")
        return self._spool


def _classify(status: int, text: str, retry_after: str | None, now: float) -> _Outcome:
    if 200 <= status < 300:
        return _Outcome("acked", status)
    reason, detail = _reason(text, status)
    if status in (408, 429) or status >= 500:
        return _Outcome("retry", status, reason, detail, _retry_after(retry_after, now))
    if status in (401, 403) and (reason in AUTH_REASONS or reason == f"http_{status}"):
        return _Outcome("auth", status, reason, detail)
    return _Outcome("rejected", status, reason, detail)


def _reason(text: str, status: int) -> tuple[str, str]:
    try:
        body = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return f"http_{status}", text[:MAX_ERROR_BODY]
    if isinstance(body, dict):
        reason = body.get("error")
        detail = body.get("detail", "")
        path = body.get("path")
        full = f"{detail} at {path}" if path else str(detail)
        return (reason if isinstance(reason, str) else f"http_{status}"), full
    return f"http_{status}", text[:MAX_ERROR_BODY]


def _retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - now)


# Replay lines that describe the run, not the network: never shipped.
NOT_SHIPPED: Final = frozenset({"stats"})


async def ship_events(
    events: Iterable[dict[str, Any] | Event],
    config: ShipperConfig,
    *,
    give_up_after: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> ShipResult:
    """Ship every event and return once all are acknowledged or spooled, saying how many of each.

    Dicts are replay JSON lines (docs/events.md) and are converted with `to_event`; `stats` lines are
    skipped. Raises `msgspec.ValidationError` for a line that does not fit the schema.
    """
    count = 0
    async with Shipper(config, clock=clock) as shipper:
        for item in events:
            if isinstance(item, dict) and item.get("type") in NOT_SHIPPED:
                continue
            shipper.submit(to_event(item))
            count += 1
            if count % 1024 == 0:
                await asyncio.sleep(0)
        await shipper.drain(give_up_after)
        stats = shipper.stats()
    spool = shipper.spool
    spooled = 0
    for seq in spool.pending():
        loaded = await asyncio.to_thread(spool.load, seq)
        spooled += loaded.events if loaded else 0
    return ShipResult(
        events=count,
        acked_events=stats.events_acked,
        spooled_events=spooled,
        spooled_batches=len(spool),
        rejected_batches=stats.batches_rejected,
        shed=stats.shed,
        auth_refused=stats.auth_refused,
        invalid_events=stats.events_invalid,
    )
