"""Fixtures for dashboard tests: a real collector with data sent through the signed ingest path.

`dash` is an in-process collector (aiohttp on a free loopback port; SQLite file and PostgreSQL) with two sites loaded by
signed batches, and an aiohttp client session whose cookie jar accepts the loopback IP (browsers do; the
client's default jar does not). `login(...)` goes through the real login form (CSRF cookie + field).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from collector.app import run_collector
from telemetry.schema import AlertEvent, DeviceEvent, DeviceName, Evidence, HealthEvent, OsGuess

from ..collector.conftest import T0, Agent, Harness, alert, config_for, db_url, flow

__all__ = ["db_url"]  # the back-end fixture (SQLite file, PostgreSQL schema) the pages run on

HOSTILE = '<script>alert("x")</script>'


def health_series(n: int, drops_at: int | None = None) -> list[HealthEvent]:
    """A minute-by-minute health series: 500 packets/s, CPU and RSS varying, drops from `drops_at` on."""
    return [
        HealthEvent(
            ts=T0 + 60 * i,
            packets=30_000 * (i + 1),
            drops_kernel=0 if drops_at is None or i < drops_at else 7 * (i - drops_at + 1),
            cpu=10.0 + (i % 5),
            rss=50_000_000 + 100_000 * i,
            spool_bytes=4096 * (i % 3),
            uptime=60.0 * i,
            agent_version="0.1.0",
        )
        for i in range(n)
    ]


def school_device(i: int, device_type: str = "laptop", vendor: str = "Dell Inc.", os: str = "Windows") -> DeviceEvent:
    mac = f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"
    return DeviceEvent(
        mac=mac,
        first_seen=T0 + i,
        last_seen=T0 + 600 + i,
        vendor=vendor,
        randomized_mac=i % 10 == 0,
        ips=[f"192.0.2.{i % 250 + 1}"],
        names=[DeviceName(f"PC-{i:04d}", "dhcp")],
        os=OsGuess(os, "11"),
        device_type=device_type,
        confidence=0.5 + (i % 50) / 100,
        evidence=[
            Evidence("dhcp_vendor_class", "MSFT 5.0", {"os_family": os}, 0.35, T0 + i, T0 + i),
            Evidence("oui", vendor, {"vendor": vendor}, 0.4, T0 + i, T0 + i),
            Evidence("http_user_agent", "Mozilla/5.0 (X11; Linux x86_64)", {"os_family": "Linux"}, 0.2, T0 + i, T0 + i),
        ],
        fingerprints={
            "dhcp": "1,3,6,15,31,33,43,44,46,47,119,121,249,252",
            "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
        },
    )


def hostile_device() -> DeviceEvent:
    return DeviceEvent(
        mac="02:00:00:00:ee:01",
        first_seen=T0,
        last_seen=T0 + 30,
        vendor=HOSTILE,
        names=[DeviceName(HOSTILE, "dhcp")],
        device_type="phone",
        confidence=0.3,
        evidence=[Evidence("dhcp_hostname", HOSTILE, {"device_type": "phone"}, 0.3, T0, T0)],
    )


@dataclass
class Dash:
    """A running collector, its harness (agents, tokens, signed batches) and the loaded agents."""

    h: Harness
    school: Agent
    mairie: Agent

    @property
    def url(self) -> str:
        return self.h.url


async def load_two_sites(h: Harness) -> Dash:
    """Site `ecole` (60 devices, health with drops, one alert) and `mairie` (the hostile device, alerts)."""
    school = await h.agent("ecole", "agent-ecole")
    mairie = await h.agent("mairie", "agent-mairie")
    types = ["laptop", "phone", "tablet", "printer", "camera"]
    devices = [school_device(i, types[i % 5], "Apple, Inc." if i % 3 == 0 else "Dell Inc.") for i in range(1, 61)]
    await h.send(school, [*devices, alert(5, src_mac=devices[0].mac), *[flow(i) for i in range(10)]])
    await h.send(school, list(health_series(30, drops_at=20)))
    await h.send(
        mairie,
        [
            hostile_device(),
            AlertEvent(
                ts=T0 + 40,
                sid=9100001,
                msg=f"VEILLE TEST sqlmap {HOSTILE}",
                severity=1,
                classtype="web-application-attack",
                src="192.0.2.66",
                sport=40000,
                dst="192.0.2.10",
                dport=80,
                proto="tcp",
                app_proto="http",
                app_fields={"http.user_agent": HOSTILE},
                src_mac="02:00:00:00:ee:01",
            ),
            alert(50, sid=9000030, severity=3, src_mac="02:00:00:00:ee:01"),
            *health_series(5),
        ],
    )
    return Dash(h, school, mairie)


@pytest.fixture
async def dash(db_url: str) -> AsyncIterator[Dash]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        run_collector(config_for(db_url)) as running,
        aiohttp.ClientSession(cookie_jar=jar) as session,
    ):
        yield await load_two_sites(Harness(running, session, {}))


async def login(session: aiohttp.ClientSession, url: str, token: str, next_: str = "/") -> aiohttp.ClientResponse:
    """Log in through the form: GET it (CSRF cookie + field), POST the token."""
    async with session.get(f"{url}/login") as resp:
        page = await resp.text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    async with session.post(
        f"{url}/login", data={"token": token, "csrf": match.group(1), "next": next_}, allow_redirects=False
    ) as resp:
        await resp.read()
        return resp
