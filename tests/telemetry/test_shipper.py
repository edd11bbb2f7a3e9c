"""The shipper against a real aiohttp server on loopback: outages, Retry-After, rejects, refusals, TLS."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import pytest

from telemetry.config import ShipperConfig
from telemetry.errors import ConfigError
from telemetry.schema import ObservationEvent
from telemetry.shipper import Shipper, ship_events
from telemetry.signing import AgentCredential, generate_secret
from telemetry.spool import Spool

from .receiver import Receiver, free_port

SECRET = generate_secret()


def config(tmp_path: Path, url: str, **kw) -> ShipperConfig:
    args = dict(
        url=url,
        agent_id="agent-1",
        secret=SECRET,
        site="school-a",
        spool_dir=tmp_path / "spool",
        batch_max_events=10,
        batch_max_age=0.05,
        backoff_initial=0.05,
        backoff_max=0.3,
        request_timeout=5.0,
    )
    args.update(kw)
    return ShipperConfig(**args)


def ev(i: int) -> ObservationEvent:
    return ObservationEvent(ts=1732270000.0 + i, kind="test", src="192.0.2.1", fields={"i": i})


def ids(events) -> list[int]:
    return [e.fields["i"] for e in events]


@pytest.fixture
async def receiver():
    r = Receiver(secrets={"agent-1": AgentCredential(SECRET.encode())})
    await r.start()
    yield r
    await r.stop()


async def test_outage_then_back_every_event_once_in_order(tmp_path: Path, receiver: Receiver) -> None:
    async with Shipper(config(tmp_path, receiver.url)) as shipper:
        receiver.lose_ack = {shipper.spool.seq._next + 3}  # stored, but the agent never hears it
        for i in range(100):
            shipper.submit(ev(i))
        await shipper.drain(give_up_after=5)
        await receiver.stop()  # collector down: connection refused
        for i in range(100, 250):
            shipper.submit(ev(i))
            if i % 20 == 0:
                await asyncio.sleep(0.02)
        await shipper.flush()
        stats = shipper.stats()
        assert stats.spool_batches > 0 and stats.send_errors > 0
        receiver.unavailable = True  # back, but answering 503 for a while
        receiver.retry_after = None
        await receiver.start()
        await asyncio.sleep(0.3)
        receiver.unavailable = False
        for i in range(250, 300):
            shipper.submit(ev(i))
        await shipper.drain(give_up_after=10)
        stats = shipper.stats()
    got = ids(receiver.events())
    print(
        f"outage: {len(got)} events stored, {stats.batches_spooled} batches spooled, "
        f"{stats.send_errors} send errors, {receiver.duplicates} duplicates"
    )
    assert got == list(range(300))
    assert receiver.duplicates == 1 and receiver.reused == 0
    seqs = [seq for _, seq in receiver.order]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert stats.events_acked == 300 and stats.spool_batches == 0 and stats.spool_bytes == 0


async def test_retry_after_is_honoured(tmp_path: Path, receiver: Receiver) -> None:
    receiver.unavailable = True
    receiver.retry_after = "1"
    async with Shipper(config(tmp_path, receiver.url)) as shipper:
        shipper.submit(ev(0))
        await shipper.flush()
        while len(receiver.requests) < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        receiver.unavailable = False
        await shipper.drain(give_up_after=5)
    gaps = [b - a for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    print(f"retry-after 1 s: attempts {len(receiver.requests)}, gaps {[round(g, 2) for g in gaps]}")
    assert ids(receiver.events()) == [0]
    assert gaps and min(gaps) >= 0.95  # backoff alone would retry after ≤ 0.3 s


async def test_invalid_batch_goes_to_rejected_with_reason(tmp_path: Path, receiver: Receiver) -> None:
    cfg = config(tmp_path, receiver.url)
    async with Shipper(cfg) as shipper:
        first_seq = shipper.spool.seq._next
        receiver.reject_seqs = {first_seq + 1}
        for i in range(30):
            shipper.submit(ev(i))
        await shipper.drain(give_up_after=5)
        stats = shipper.stats()
    assert ids(receiver.events()) == list(range(10)) + list(range(20, 30))
    assert stats.batches_rejected == 1 and stats.alarms and "test rejects" in stats.alarms[0]
    rejected = sorted((cfg.spool_dir / "rejected").iterdir())
    assert len(rejected) == 2
    reason = json.loads(rejected[1].read_text())
    assert reason["status"] == 422 and reason["reason"] == "schema" and "$.events[0].sid" in reason["detail"]
    assert reason["seq"] == first_seq + 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong_key", "bad_signature"),
        ("revoked", "revoked_agent"),
        ("unknown", "unknown_agent"),
        ("stale", "clock_skew"),
        ("tampered", "bad_signature"),
    ],
)
async def test_refusals_are_counted_and_batches_kept(tmp_path: Path, receiver: Receiver, case, reason) -> None:
    kw: dict = {}
    clock = time.time
    if case == "wrong_key":
        kw["secret"] = generate_secret()
    elif case == "revoked":
        receiver.secrets["agent-1"] = AgentCredential(SECRET.encode(), revoked=True)
    elif case == "unknown":
        kw["agent_id"] = "agent-9"
    elif case == "stale":
        clock = lambda: time.time() - 3600  # noqa: E731
    else:
        receiver.tamper = True
    cfg = config(tmp_path, receiver.url, **kw)
    async with Shipper(cfg, clock=clock) as shipper:
        for i in range(15):
            shipper.submit(ev(i))
        await shipper.drain()
        stats = shipper.stats()
    print(f"{case}: collector refused {receiver.refused}, agent counted {stats.auth_refused}")
    assert receiver.events() == []
    assert receiver.refused.get(reason, 0) >= 1 and stats.auth_refused.get(reason, 0) >= 1
    assert stats.alarms and reason in stats.alarms[-1]
    assert stats.batches_rejected == 0
    assert len(Spool(cfg.spool_dir, cfg.spool_max_bytes)) == 2  # kept for when credentials are fixed


async def test_ship_events_reports_acked_or_spooled(tmp_path: Path, receiver: Receiver) -> None:
    lines = [
        {"type": "dhcp", "ts": 1.0 + i, "src_mac": "02:00:00:00:00:01", "src": "192.0.2.9", "params": [1, 3]}
        for i in range(25)
    ]
    lines.append({"type": "stats", "packets": 3})
    result = await ship_events(lines, config(tmp_path, receiver.url))
    assert (result.events, result.acked_events, result.spooled_events, result.complete) == (25, 25, 0, True)
    down = config(tmp_path / "b", f"http://127.0.0.1:{free_port()}")
    result = await ship_events(lines, down)
    print(f"ship_events with the collector down: {result}")
    assert (result.acked_events, result.spooled_events, result.spooled_batches) == (0, 25, 3)
    assert not result.complete


async def test_plain_http_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain http"):
        config(tmp_path, "http://192.0.2.1:8080")
    cfg = config(tmp_path, "http://192.0.2.1:8080", allow_insecure=True)
    assert Shipper(cfg).config.allow_insecure


async def test_submit_never_waits_and_sheds_volume_first_when_the_sender_lags(tmp_path: Path) -> None:
    # Not started: no sender drains the backlog, as when the disk and network both stall.
    from telemetry.schema import AlertEvent, HealthEvent

    cfg = config(tmp_path, "http://127.0.0.1:9", batch_max_bytes=2000, batch_max_events=1000)
    shipper = Shipper(cfg)
    for i in range(3000):
        shipper.submit(ev(i))
        if i % 10 == 0:
            shipper.submit(AlertEvent(ts=1.0, sid=i, msg="m"))
    stats = shipper.stats()
    kept_alerts = sum(isinstance(e, AlertEvent) for batch in shipper._closed for e in batch)
    print(f"backlog shed {stats.shed}, kept {kept_alerts} alerts of 300")
    assert (
        stats.shed["obs"] > 0
        and "alert" not in stats.shed
        and kept_alerts + len([e for e in shipper._current if isinstance(e, AlertEvent)]) == 300
    )
    # The counters fill a valid health event.
    health = HealthEvent(ts=1.0, **stats.health_fields())
    assert msgspec.convert(msgspec.to_builtins(health), HealthEvent) == health  # passes the schema's checks
    assert health.shed == stats.shed and health.batches_spooled == 0


async def test_one_invalid_event_is_refused_alone(tmp_path: Path, receiver: Receiver) -> None:
    from telemetry.schema import AlertEvent, FlowEvent

    bad = [
        FlowEvent(ts_start=1.0, ts_end=2.0, proto="tcp", src="192.0.2.1", sport=70000, dst="192.0.2.2", dport=1),
        AlertEvent(ts=1.0, sid=1, msg="m" * 5000),
        ObservationEvent(ts=1.0, kind="x", fields={"raw": [b"\x00"]}),
    ]
    async with Shipper(config(tmp_path, receiver.url)) as shipper:
        shipper.submit(ev(0))
        for event in bad:
            shipper.submit(event)
        shipper.submit(ev(1))
        await shipper.drain(give_up_after=5)
        stats = shipper.stats()
    print(f"invalid events: {stats.events_invalid}; alarms: {[a[:70] for a in stats.alarms]}")
    assert ids(receiver.events()) == [0, 1] and stats.batches_rejected == 0
    assert stats.events_invalid == 3
    assert "$.sp" in stats.alarms[0] and "$.msg" in stats.alarms[1] and "$.fields.raw[0]" in stats.alarms[2]


async def test_spool_full_through_the_shipper_keeps_alerts(tmp_path: Path, receiver: Receiver) -> None:
    from bench.wire_bytes import synthetic_flows
    from telemetry.schema import AlertEvent

    await receiver.stop()  # collector down: everything goes to a spool of 24 KiB
    cfg = config(tmp_path, receiver.url, spool_max_bytes=24 * 1024, batch_max_events=200)
    flows = synthetic_flows(3000, 9)
    alerts = [AlertEvent(ts=1.0 + i, sid=2000000 + i, msg=f"alert {i}", src="203.0.113.9") for i in range(60)]
    async with Shipper(cfg) as shipper:
        for i, flow in enumerate(flows):
            shipper.submit(flow)
            if i % 50 == 0:
                shipper.submit(alerts[i // 50])
            if i % 200 == 199:
                await shipper.flush()
        await shipper.flush()
        down = shipper.stats()
        await receiver.start()
        await shipper.drain(give_up_after=10)
        stats = shipper.stats()
    got = receiver.events()
    got_alerts = [e for e in got if isinstance(e, AlertEvent)]
    print(f"spool full: shed {down.shed} while down; delivered {len(got)} events, {len(got_alerts)}/60 alerts")
    assert down.shed.get("flow", 0) > 0 and "alert" not in down.shed
    assert any(a.startswith("spool full (24576 bytes): shed") and "flow" in a for a in down.alarms), down.alarms
    assert got_alerts == alerts  # every alert, in order
    assert len(got) - len(got_alerts) + stats.shed["flow"] == len(flows)
