"""Dashboard page times with a large inventory: server-side pagination must keep them flat.

A collector runs in this process (aiohttp on a loopback port, SQLite file); devices, their evidence, alerts
and health reach it through the real ingest path (signed, compressed batches from enrolled agents). A
logged-in session then fetches each page `--repeat` times and the table shows the median and p95 wall time
per page, for each inventory size, so a page whose cost grows with the inventory stands out.

    .venv/bin/python -m bench.dashboard_bench [--devices 1000,10000] [--repeat 20] [--sites 4]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from collector.app import run_collector
from collector.auth import hash_token, new_token
from collector.config import CollectorConfig
from telemetry.codec import compress, encode_batch, new_batch
from telemetry.schema import AlertEvent, DeviceEvent, DeviceName, Event, Evidence, HealthEvent, OsGuess
from telemetry.signing import generate_secret, sign

T0 = 1_788_766_200.0  # the bundled captures' morning (pcaps/README.md)
# Events per batch: the shipper's default batch close (telemetry.config DEFAULT_BATCH_MAX_EVENTS).
BATCH = 5_000
TYPES = ("laptop", "phone", "tablet", "printer", "camera", "desktop", "iot", "tv/streamer", "voip phone", "server")
VENDORS = ("Dell Inc.", "Apple, Inc.", "HP Inc.", "Samsung Electronics Co.,Ltd", "Lenovo", "Google, Inc.")
DHCP_55 = "1,3,6,15,31,33,43,44,46,47,119,121,249,252"  # Windows 10/11 option 55 (pcaps/README.md)
OSES = ("Windows", "macOS", "iOS", "Android", "Linux", "ChromeOS")


def device(i: int) -> DeviceEvent:
    mac = f"02:00:{i >> 24 & 0xFF:02x}:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"
    vendor, os_family = VENDORS[i % len(VENDORS)], OSES[i % len(OSES)]
    return DeviceEvent(
        mac=mac,
        first_seen=T0 + i,
        last_seen=T0 + 3600 + (i * 7919) % 3600,
        vendor=vendor,
        randomized_mac=i % 9 == 0,
        ips=[f"192.0.2.{i % 254 + 1}"],
        names=[DeviceName(f"HOST-{i:05d}", "dhcp")],
        os=OsGuess(os_family, None),
        device_type=TYPES[i % len(TYPES)],
        confidence=(i % 100) / 100,
        evidence=[
            Evidence("oui", vendor, {"vendor": vendor}, 0.4, T0 + i, T0 + i),
            Evidence(
                "dhcp", "1,3,6,15,31,33,43,44,46,47,119,121,249,252", {"os_family": os_family}, 0.3, T0 + i, T0 + i
            ),
            Evidence("dhcp_hostname", f"HOST-{i:05d}", {"device_type": TYPES[i % len(TYPES)]}, 0.2, T0 + i, T0 + i),
        ],
        fingerprints={"dhcp": DHCP_55},
    )


def alert(i: int) -> AlertEvent:
    return AlertEvent(
        ts=T0 + i,
        sid=9100001 + i % 12,
        msg=f"VEILLE BENCH signature {i % 12}",
        severity=1 + i % 3,
        src="192.0.2.66",
        sport=40000 + i % 1000,
        dst=f"192.0.2.{i % 254 + 1}",
        dport=445,
        proto="tcp",
        src_mac=device(i).mac,
    )


async def load(url: str, session: aiohttp.ClientSession, agents: list[tuple[str, str, str]], n: int) -> None:
    """Send n devices (spread over the agents' sites), n/5 alerts and an hour of health per agent."""
    per_agent: dict[str, list[Event]] = {a[0]: [] for a in agents}
    for i in range(n):
        per_agent[agents[i % len(agents)][0]].append(device(i))
    for i in range(n // 5):
        per_agent[agents[i % len(agents)][0]].append(alert(i))
    for agent_id in per_agent:
        per_agent[agent_id] += [
            HealthEvent(ts=T0 + 60 * k, packets=30_000 * k, cpu=10.0, rss=50_000_000) for k in range(60)
        ]
    for agent_id, site, secret in agents:
        events = per_agent[agent_id]
        for seq, start in enumerate(range(0, len(events), BATCH), 1):
            body = compress(encode_batch(new_batch(agent_id, site, seq, time.time(), events[start : start + BATCH])))
            headers = {"Content-Encoding": "zstd", "Content-Type": "application/msgpack"}
            headers.update(sign(agent_id, secret, body, time.time()))
            async with session.post(f"{url}/api/v1/ingest", data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise SystemExit(f"ingest refused: {resp.status} {await resp.text()}")


async def login(url: str, session: aiohttp.ClientSession, token: str) -> None:
    async with session.get(f"{url}/login") as resp:
        match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert match is not None
    async with session.post(f"{url}/login", data={"token": token, "csrf": match.group(1)}) as resp:
        if resp.status != 200:
            raise SystemExit(f"login failed: {resp.status}")


async def measure(url: str, session: aiohttp.ClientSession, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and p95 milliseconds of GET path, and the page size in bytes."""
    times: list[float] = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(f"{url}{path}") as resp:
            body = await resp.read()
            if resp.status != 200:
                raise SystemExit(f"{path}: {resp.status}")
        times.append((time.perf_counter() - started) * 1000)
        size = len(body)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], size


async def run_size(n: int, sites: int, repeat: int, folder: Path) -> list[tuple[str, float, float, int]]:
    config = CollectorConfig(host="127.0.0.1", port=0, db=str(folder / f"dash-{n}.db"))
    async with run_collector(config) as running:
        agents = []
        for k in range(sites):
            agent = (f"agent-{k}", f"site-{k}", generate_secret())
            await running.store.add_agent(agent[0], agent[1], agent[2], time.time())
            agents.append(agent)
        token_id, token = new_token()
        await running.store.add_token(token_id, "bench", "admin", [], hash_token(token), time.time())
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            started = time.perf_counter()
            await load(running.url, session, agents, n)
            print(f"  loaded {n} devices in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            await login(running.url, session, token)
            last_page = (n + 49) // 50
            mid = device(n // 2)
            paths = [
                ("devices: first page", "/devices"),
                ("devices: filtered (type+vendor)", "/devices?type=printer&vendor=dell"),
                ("devices: sorted by vendor", "/devices?sort=vendor"),
                ("devices: search", "/devices?q=HOST-00042"),
                ("devices: last page", f"/devices?page={last_page}"),
                ("device page", f"/devices/site-{(n // 2) % sites}/{mid.mac}"),
                ("overview", "/"),
                ("alerts (grouped)", "/alerts"),
                ("alerts of one sid", "/alerts?sid=9100001"),
                ("agents", "/agents"),
            ]
            return [(label, *await measure(running.url, session, path, repeat)) for label, path in paths]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1000,10000", help="inventory sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=20, help="requests per page")
    parser.add_argument("--sites", type=int, default=4, help="sites (one agent each)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.devices.split(",")]
    results: dict[int, list[tuple[str, float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            results[n] = asyncio.run(run_size(n, args.sites, args.repeat, Path(folder)))
    header = f"{'page':34}" + "".join(f"{f'{n} dev p50/p95 ms':>24}" for n in sizes) + f"{'KiB':>8}"
    print(header)
    print("-" * len(header))
    for i, (label, *_rest) in enumerate(results[sizes[0]]):
        cells = "".join(f"{results[n][i][1]:>14.1f} / {results[n][i][2]:>7.1f}" for n in sizes)
        print(f"{label:34}{cells}{results[sizes[-1]][i][3] / 1024:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
