"""`veille demo`: a collector, two enrolled agents, the bundled captures shipped, and the dashboard left up.

The demo runs the real parts end to end on one machine: a collector on an embedded SQLite file in `--dir`,
two agents enrolled for two sites (their agent configs written next to it, as `veille collector agent add
--config-out` writes them), and each bundled capture replayed by a separate `veille replay --ship` process
through the agent's shipper (batching, signing, spool, retry). Once both replays exit with everything
acknowledged and the store holds what they sent, it issues an admin token and a viewer token for one
site, prints the dashboard URL with them, and serves until Ctrl-C or SIGTERM (`--exit-after-load` stops
there instead, for tests and scripts). Retention is off: the captures are dated September 2026, older
than the default retention window of flows and health.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from collector.app import RunningCollector, run_collector
from collector.auth import hash_token, new_token
from collector.cli import agent_config_text
from collector.config import DEFAULT_RETENTION_DAYS, CollectorConfig, ConfigError, parse_listen
from collector.store import StoreError
from telemetry.signing import generate_secret

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_DIR: Final = "veille-demo"
DEFAULT_LISTEN: Final = "127.0.0.1:8080"
# Marks a folder as made by the demo, so a re-run may wipe it and never wipes anything else.
MARKER: Final = ".veille-demo"
# A replay of the bundled captures takes a few seconds; five minutes means something is stuck.
REPLAY_TIMEOUT: Final = 300.0


@dataclass(frozen=True, slots=True)
class DemoSite:
    """One site of the demo: its name, agent id, the capture it replays and the extra replay options."""

    site: str
    agent_id: str
    capture: str
    options: tuple[str, ...] = ()


def demo_sites(pcaps: Path, workdir: Path) -> tuple[DemoSite, ...]:
    """The two demo sites: a school's morning, and a town hall LAN under attack (rules, IOCs, detections)."""
    detections = workdir / "mairie-detections.toml"
    return (
        DemoSite("ecole-jules-ferry", "agent-ecole-jules-ferry", str(pcaps / "school_morning.pcap")),
        DemoSite(
            "mairie",
            "agent-mairie",
            str(pcaps / "lan_attacks.pcap"),
            (
                "--rules",
                str(pcaps / "lan_attacks.rules"),
                "--ioc",
                str(pcaps / "lan_attacks.iocs.txt"),
                "--home-net",
                "[192.0.2.0/24]",
                "--detections",
                str(detections),
            ),
        ),
    )


# The town hall's network as pcaps/README.md describes it for lan_attacks.pcap.
DETECTIONS_TOML: Final = """[detections]
dhcp_servers = ["192.0.2.1"]
gateways = ["192.0.2.1"]
resolvers = ["192.0.2.1"]
"""


class DemoError(Exception):
    """The demo cannot start or a step failed; the message says which."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="veille demo", description="collector + agents + bundled captures + dashboard")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"state folder (default ./{DEFAULT_DIR})")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT for the collector (default {DEFAULT_LISTEN})")
    p.add_argument("--pcaps", default=str(REPO / "pcaps"), help="folder with the bundled captures")
    p.add_argument("--exit-after-load", action="store_true", help="stop once the captures are loaded")
    return p


def prepare_dir(workdir: Path) -> None:
    """Create the state folder, or empty one a previous demo made; refuse a foreign non-empty folder."""
    if workdir.exists():
        if not workdir.is_dir():
            raise DemoError(f"--dir {workdir}: exists and is not a folder")
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise DemoError(f"--dir {workdir}: not empty and not made by `veille demo`; choose another folder")
        for child in workdir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by veille demo; emptied by the next run\n", encoding="utf-8")


async def enrol(running: RunningCollector, site: DemoSite, workdir: Path) -> Path:
    """Enrol the site's agent and write its agent config (mode 0600), as `collector agent add --config-out`."""
    secret = generate_secret()
    await running.store.add_agent(site.agent_id, site.site, secret, time.time())
    spool = workdir / "spool" / site.agent_id
    spool.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{site.agent_id}.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(agent_config_text(running.url, site.agent_id, secret, site.site, str(spool)))
    return path


async def ship(site: DemoSite, agent_config: Path) -> str:
    """Run `veille replay CAPTURE --ship --agent-config FILE` as its own process; its summary line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "veille",
        "replay",
        site.capture,
        *site.options,
        "--ship",
        "--agent-config",
        str(agent_config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), REPLAY_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DemoError(f"{site.site}: replay of {site.capture} did not finish in {REPLAY_TIMEOUT:.0f} s") from None
    text = (err or b"").decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        raise DemoError(f"{site.site}: `veille replay --ship` exited {proc.returncode}: {text[-2000:]}")
    return text.splitlines()[-1] if text else ""


async def token(running: RunningCollector, role: str, name: str, sites: Sequence[str] = ()) -> str:
    """Issue an operator token straight into the store (as `veille collector token add`)."""
    token_id, text = new_token()
    await running.store.add_token(token_id, name, role, list(sites), hash_token(text), time.time())
    return text


async def load(running: RunningCollector, workdir: Path, pcaps: Path) -> dict[str, int]:
    """Enrol both agents, ship both captures concurrently, check the store holds them; events per agent."""
    (workdir / "mairie-detections.toml").write_text(DETECTIONS_TOML, encoding="utf-8")
    sites = demo_sites(pcaps, workdir)
    for site in sites:
        if not Path(site.capture).is_file():
            raise DemoError(f"{site.capture}: capture not found (--pcaps names the folder of the bundled captures)")
    configs = [await enrol(running, site, workdir) for site in sites]
    summaries = await asyncio.gather(*(ship(site, cfg) for site, cfg in zip(sites, configs, strict=True)))
    for site, summary in zip(sites, summaries, strict=True):
        print(f"  {site.site}: {summary.removeprefix('veille: ')}", flush=True)
    stored = {a["agent_id"]: int(a["events"]) for a in await running.store.list_agents()}
    for site in sites:
        if not stored.get(site.agent_id):
            raise DemoError(f"{site.site}: the collector stored no event from {site.agent_id}")
    return stored


async def run_demo(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    """The demo itself (see the module docstring); returns the exit status."""
    workdir = Path(args.dir).resolve()
    host, port = parse_listen(args.listen)
    prepare_dir(workdir)
    config = CollectorConfig(
        host=host,
        port=port,
        db=str(workdir / "collector.db"),
        retention_days={kind: 0.0 for kind in DEFAULT_RETENTION_DAYS},
    )
    print(f"veille demo: state in {workdir}", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        try:
            running = await stack.enter_async_context(run_collector(config))
        except OSError as exc:
            raise DemoError(
                f"cannot listen on {args.listen}: {exc.strerror or exc}; pick another with --listen"
            ) from None
        return await _serve(args, running, workdir, stop)


async def _serve(args: argparse.Namespace, running: RunningCollector, workdir: Path, stop: asyncio.Event | None) -> int:
    print(f"veille demo: collector listening on {running.url}; shipping the bundled captures…", flush=True)
    started = time.perf_counter()
    stored = await load(running, workdir, Path(args.pcaps))
    admin = await token(running, "admin", "demo admin")
    viewer = await token(running, "viewer", "demo viewer (mairie only)", ["mairie"])
    print(
        f"veille demo: {sum(stored.values())} events stored in {time.perf_counter() - started:.1f} s\n\n"
        f"  Dashboard:     {running.url}/\n"
        f"  Admin token:   {admin}\n"
        f"  Viewer token:  {viewer}   (sees the mairie site only)\n"
        f"  API:           curl -H 'Authorization: Bearer {admin}' {running.url}/api/v1/sites\n",
        flush=True,
    )
    if args.exit_after_load:
        return 0
    print("Serving until Ctrl-C.", flush=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("veille demo: stopped", flush=True)
    return 0


def main(argv: Sequence[str]) -> int:
    """Entry point of `veille demo`; 0 on success, 1 when a step failed, 2 on bad usage."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return asyncio.run(run_demo(args))
    except ConfigError as exc:
        print(f"veille demo: --listen: {exc}", file=sys.stderr)
        return 2
    except (DemoError, StoreError) as exc:
        print(f"veille demo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"veille demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
