"""The dashboard in headless Chromium (Playwright driving Debian's /usr/bin/chromium) over a real demo.

`veille demo` runs as its own process: a collector fed by two `veille replay --ship` processes. The test
adds a health series for one agent through the signed ingest path (each replay sends one report), then logs in,
opens each page, filters devices, opens a device, and checks a viewer token cannot reach another site's
device. Screenshots go to tests/artifacts/dashboard/ (git-ignored). Skipped, with the reason, when the
Playwright package or the chromium binary is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from telemetry.codec import compress, encode_batch, new_batch
from telemetry.schema import HealthEvent
from telemetry.signing import sign

from .demo_proc import REPO, ServingDemo

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("VEILLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "artifacts" / "dashboard"
# The captures' clock: 2026-09-07 07:30 UTC (pcaps/README.md).
CAPTURE_T0 = 1788766200.0

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (dev extra)")
if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; or VEILLE_CHROMIUM)", allow_module_level=True)


async def send_health(url: str, agent_config: Path, drops_from: int) -> None:
    """A 30-minute health series for the demo agent, signed with its own secret (a fresh seq range)."""
    table = tomllib.loads(agent_config.read_text())["collector"]
    events = [
        HealthEvent(
            ts=CAPTURE_T0 + 60 * i,
            packets=45_000 * (i + 1),
            drops_kernel=0 if i < drops_from else 12 * (i - drops_from + 1),
            cpu=8.0 + 3 * (i % 4),
            rss=60_000_000 + 250_000 * i,
            spool_bytes=8192 * (i % 5),
            uptime=60.0 * i,
            agent_version="0.1.0",
        )
        for i in range(30)
    ]
    body = compress(encode_batch(new_batch(table["agent_id"], table["site"], 1_000_000, time.time(), list(events))))
    headers = {"Content-Encoding": "zstd", "Content-Type": "application/msgpack"}
    headers.update(sign(table["agent_id"], table["secret"], body, time.time()))
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/v1/ingest", data=body, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingDemo]:
    workdir = tmp_path_factory.mktemp("demo")
    running = ServingDemo(workdir)
    try:
        asyncio.run(send_health(running.run.url, workdir / "agent-mairie.toml", drops_from=25))
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def api(url: str, token: str, path: str) -> Any:
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def new_page(browser: Any) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def log_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/")
    assert "/login" in page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_admin_walks_every_page(demo: ServingDemo, browser: Any) -> None:
    url = demo.run.url
    page, problems = new_page(browser)
    page.goto(f"{url}/login")
    page.fill("#token", "vt_wrong_token")
    page.click("button[type=submit]")
    assert "Unknown or revoked token." in page.inner_text(".error")
    shot(page, "01-login-refused")
    problems.clear()  # the refused login's 401 is expected; nothing else may fail from here on

    log_in(page, url, demo.run.admin)
    assert page.url == f"{url}/"
    assert page.inner_text("h1") == "Overview"
    sites = page.inner_text("section.card table")
    assert "ecole-jules-ferry" in sites and "mairie" in sites
    assert page.locator("svg.bars rect").count() >= 5  # devices by type
    assert page.locator("svg.columns rect").count() >= 1  # alerts by severity
    attention = page.inner_text("text=Agents needing attention >> xpath=..")
    assert "agent-mairie" in attention and "packets dropped" in attention
    shot(page, "02-overview")

    # What the pages must show, asked of the JSON API with the same token.
    total = api(url, demo.run.admin, "/api/v1/devices?limit=1")["total"]
    printers = {d["mac"] for d in api(url, demo.run.admin, "/api/v1/devices?type=printer&limit=1000")["items"]}
    school = api(url, demo.run.admin, "/api/v1/devices?site=ecole-jules-ferry&limit=1")["total"]
    assert "a0:d3:c1:3a:7f:2c" in printers and total > school >= 17  # pcaps/README.md: 17 MACs + 2 servers

    page.click("nav >> text=Devices")
    assert page.inner_text("#count") == f"1–{min(total, 50)} of {total}"
    page.select_option("select[name=type]", "printer")
    page.click("form.filters button[type=submit]")
    shown = {t.split("\t")[1].split()[0] for t in page.locator("table.devices tbody tr").all_inner_texts()}
    assert shown == printers
    page.select_option("select[name=type]", "")
    page.select_option("select[name=site]", "ecole-jules-ferry")
    page.fill("input[name=q]", "Pixel")
    page.click("form.filters button[type=submit]")
    texts = page.locator("table.devices tbody tr").all_inner_texts()
    assert len(texts) == 2 and all("random" in t and "Pixel-8" in t for t in texts)
    shot(page, "03-devices-filtered")
    page.goto(f"{url}/devices?site=ecole-jules-ferry")
    page.click("table.devices thead >> text=MAC")
    macs = [t.split("\t")[1].split()[0] for t in page.locator("table.devices tbody tr").all_inner_texts()]
    assert macs == sorted(macs) and len(macs) == school

    page.click("text=dc:a6:32:0b:5c:7e")
    assert page.inner_text("h1") == "dc:a6:32:0b:5c:7e"
    why = page.inner_text("text=Why Veille thinks so >> xpath=..")
    assert "device type: iot" in why and "dhcp_hostname" in why
    assert page.locator("table.timeline tbody tr").count() >= 5
    shot(page, "04-device")

    page.click("nav >> text=Alerts")
    groups = page.locator("table.groups tbody tr")
    assert groups.count() >= 10
    page.click("table.groups >> text=VEILLE TEST sqlmap User-Agent")
    listed = page.locator("table.alert-list tbody tr")
    assert listed.count() == 1
    row = listed.first.inner_text()
    assert "192.0.2.66" in row and "192.0.2.10:80" in row and "sqlmap" in row
    shot(page, "05-alerts")
    listed.first.locator("td.dev a").click()  # the device behind it: the attacker's MAC
    assert page.inner_text("h1") == "2c:f0:5d:6e:7f:80" and "mairie" in page.inner_text(".heading")
    assert "VEILLE TEST sqlmap User-Agent" in page.inner_text("text=Alerts from this device >> xpath=..")

    page.click("nav >> text=Agents")
    card = page.locator("#agent-agent-mairie")
    # 30 signed here plus the one `veille replay --ship` sends at the end of its replay.
    assert "packets dropped" in card.inner_text() and "31 health reports" in card.inner_text()
    assert card.locator("path.series").count() == 5
    shot(page, "06-agents")

    page.click("text=Log out")
    assert "/login" in page.url
    page.goto(f"{url}/devices")
    assert "/login" in page.url
    assert problems == []


def test_viewer_cannot_reach_another_sites_device(demo: ServingDemo, browser: Any) -> None:
    url = demo.run.url
    page, problems = new_page(browser)
    log_in(page, url, demo.run.viewer)
    assert "viewer: mairie" in page.inner_text("header")
    response = page.goto(f"{url}/devices/ecole-jules-ferry/dc:a6:32:0b:5c:7e")
    assert response is not None and response.status == 404
    assert "No such device" in page.inner_text("h1") and "Raspberry" not in page.content()
    shot(page, "07-viewer-404")
    response = page.goto(f"{url}/devices?site=ecole-jules-ferry")
    assert response is not None and response.status == 403
    page.goto(f"{url}/devices")
    sites = {t.split("\t")[0] for t in page.locator("table.devices tbody tr").all_inner_texts()}
    assert sites == {"mairie"}
    shot(page, "08-viewer-devices")
    assert [p for p in problems if "404" not in p and "403" not in p] == []
