"""Collector ingest throughput: events/s into SQLite and PostgreSQL from concurrent signed agents.

The collector runs as its own process (`python -m collector serve`, one event loop: the "one core" of the
budget); this process plays 20 agents on loopback, each sending its pre-built, compressed batches in
sequence order and signing each request when it sends it. Prints events/s and batch latency percentiles
(p50, p99) per back-end, and checks that the store holds every event once.

    .venv/bin/python -m bench.ingest [--agents 20] [--batches 25] [--events 1000] [--backend sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from collector.store import make_store
from telemetry.codec import compress, encode_batch, new_batch
from telemetry.schema import AlertEvent, DeviceEvent, Event, Evidence, FlowEvent, HealthEvent
from telemetry.signing import generate_secret, sign

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("VEILLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_700_000_000.0
# Mix per batch, after a busy school LAN: mostly flow summaries, a device update every 100 events, an
# alert every 500, one health event per batch.
DEVICE_EVERY = 100
ALERT_EVERY = 500
DEVICES_PER_SITE = 200


@dataclass(frozen=True)
class Agent:
    agent_id: str
    site: str
    secret: str


def events_for(agent_no: int, batch_no: int, count: int) -> list[Event]:
    out: list[Event] = []
    base = T0 + batch_no * 10
    for i in range(count - 1):
        dev = (agent_no * 7 + i) % DEVICES_PER_SITE
        mac = f"02:00:00:{agent_no:02x}:{dev >> 8:02x}:{dev & 0xFF:02x}"
        if i % DEVICE_EVERY == 0:
            out.append(
                DeviceEvent(
                    mac=mac,
                    first_seen=T0,
                    last_seen=base + i * 0.01,
                    vendor="Apple",
                    device_type="phone",
                    ips=[f"192.0.2.{dev % 250 + 1}"],
                    confidence=0.7,
                    evidence=[Evidence("dhcp", "1,121,3,6,15,119,252", {"os": "iOS"}, 0.6)],
                )
            )
        elif i % ALERT_EVERY == 1:
            out.append(
                AlertEvent(
                    ts=base + i * 0.01,
                    sid=2100498,
                    msg="GPL ATTACK_RESPONSE id check returned root",
                    severity=2,
                    src="192.0.2.10",
                    dst="198.51.100.7",
                    src_mac=mac,
                )
            )
        else:
            out.append(
                FlowEvent(
                    ts_start=base + i * 0.01,
                    ts_end=base + i * 0.01 + 2,
                    proto="tcp",
                    src=f"192.0.2.{dev % 250 + 1}",
                    sport=30000 + i % 30000,
                    dst="203.0.113.80",
                    dport=443,
                    pkts_fwd=12,
                    pkts_rev=14,
                    bytes_fwd=1400,
                    bytes_rev=9000,
                    tcp_flags="SAF",
                    end_reason="fin",
                    src_mac=mac,
                    dst_mac="02:00:00:00:00:fe",
                    app="tls",
                )
            )
    out.append(HealthEvent(ts=base, packets=batch_no * 100_000, agent_version="bench"))
    return out


async def enrol(db: str, agents: int) -> list[Agent]:
    store = make_store(db)
    await store.open()
    try:
        out = [Agent(f"bench-{i:02d}", f"site-{i:02d}", generate_secret()) for i in range(agents)]
        for a in out:
            await store.add_agent(a.agent_id, a.site, a.secret, time.time())
        return out
    finally:
        await store.close()


async def stored_events(db: str) -> int:
    store = make_store(db)
    await store.open()
    try:
        rows = await store.fetch("SELECT COALESCE(SUM(events), 0) AS n FROM batches")
        return int(rows[0]["n"])
    finally:
        await store.close()


async def start_collector(db: str, config: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    match = re.search(r"(http://\S+)", line)
    if match is None:
        raise SystemExit(f"collector did not start: {line!r}")
    return proc, match.group(1)


async def run_agent(
    session: aiohttp.ClientSession, url: str, agent: Agent, bodies: list[bytes], latencies: list[float]
) -> None:
    for wire in bodies:
        headers = {
            "Content-Encoding": "zstd",
            "Content-Type": "application/msgpack",
            **sign(agent.agent_id, agent.secret, wire, time.time()),
        }
        started = time.perf_counter()
        async with session.post(f"{url}/api/v1/ingest", data=wire, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise SystemExit(f"ingest refused: {resp.status} {body[:200]!r}")
        latencies.append(time.perf_counter() - started)


async def bench(backend: str, db: str, args: argparse.Namespace) -> dict[str, float | str | int]:
    agents = await enrol(db, args.agents)
    bodies = {
        a.agent_id: [
            compress(encode_batch(new_batch(a.agent_id, a.site, seq, T0, events_for(n, seq, args.events))))
            for seq in range(1, args.batches + 1)
        ]
        for n, a in enumerate(agents)
    }
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "collector.toml"
        config.write_text("[limits]\nrate = 0.0\n")  # the bench measures the store, not the rate limiter
        proc, url = await start_collector(db, config)
        latencies: list[float] = []
        try:
            connector = aiohttp.TCPConnector(limit=args.agents)
            async with aiohttp.ClientSession(connector=connector) as session:
                started = time.perf_counter()
                await asyncio.gather(*(run_agent(session, url, a, bodies[a.agent_id], latencies) for a in agents))
                elapsed = time.perf_counter() - started
            times = psutil.Process(proc.pid).cpu_times()
            cpu = times.user + times.system
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    total = args.agents * args.batches * args.events
    stored = await stored_events(db)
    if stored != total:
        raise SystemExit(f"{backend}: stored {stored} events, sent {total}")
    latencies.sort()
    return {
        "backend": backend,
        "events": total,
        "seconds": elapsed,
        "events_s": total / elapsed,
        "cpu_s": cpu,
        "events_cpu_s": total / cpu,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


async def drop_schema(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("schema=", 1)[1]}" CASCADE')
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> int:
    results = []
    for backend in args.backend.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results.append(await bench(backend, str(Path(tmp) / "bench.db"), args))
        elif backend == "postgresql":
            url = f"{PG_URL}?schema=bench_{uuid.uuid4().hex[:10]}"
            try:
                results.append(await bench(backend, url, args))
            except OSError as exc:
                print(f"postgresql skipped: {exc}")
            finally:
                await drop_schema(url)
        else:
            raise SystemExit(f"--backend: unknown {backend!r}")
    print(f"\ncollector ingest: {args.agents} agents x {args.batches} batches x {args.events} events (zstd, signed)")
    print(
        f"{'backend':<12}{'events':>10}{'seconds':>10}{'events/s':>12}{'collector cpu s':>17}"
        f"{'events/cpu s':>14}{'p50 ms':>10}{'p99 ms':>10}"
    )
    for r in results:
        print(
            f"{r['backend']:<12}{r['events']:>10}{r['seconds']:>10.2f}{r['events_s']:>12,.0f}"
            f"{r['cpu_s']:>17.2f}{r['events_cpu_s']:>14,.0f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--batches", type=int, default=25, help="batches per agent")
    parser.add_argument("--events", type=int, default=1000, help="events per batch")
    parser.add_argument("--backend", default="sqlite,postgresql")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
