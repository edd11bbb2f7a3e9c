"""`veille agent ...`: run the live agent, or check its configuration.

`veille agent run [--config FILE]` runs the daemon (agent.daemon) until SIGTERM; exit status 0 after
a clean stop, 1 when the configuration, the rules or the capture cannot start, 2 on bad usage.
`veille agent check-config FILE` prints every problem with its key path and exits 1 if any.
`veille agent reveal ...` and `veille agent pseudonym ...` (site-only pseudonym look-ups) belong to
agent/reveal.py and are passed through.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from agent.config import DEFAULT_PATH, ConfigInvalid, check_config, load_config

# Observation types of the event contract (README, docs/events.md) a site may choose to ship.
OBSERVATION_KINDS = (
    "dhcp", "dhcp6", "dns", "nbns", "ssdp", "http", "tls_client", "tls_server", "ssh", "tcp_syn", "arp", "ndp",
)  # fmt: skip
# Subcommands whose parsers live in their own module: name -> (module, function(argv) -> int).
DELEGATED = {
    "reveal": ("agent.reveal", "main"),
    "pseudonym": ("agent.reveal", "pseudonym_main"),
    "privacy-key": ("agent.reveal", "keygen_main"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veille agent", description="Veille live agent")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="capture, analyse and ship until SIGTERM (systemd Type=notify)")
    run.add_argument("--config", default=DEFAULT_PATH, metavar="FILE", help=f"agent TOML (default {DEFAULT_PATH})")
    run.add_argument("--events", metavar="FILE", help="also write every pipeline event as JSON lines to FILE")
    run.add_argument(
        "--mdns-browse",
        type=float,
        metavar="SECONDS",
        help="actively browse mDNS services on the captured interfaces every SECONDS (off by default)",
    )
    run.add_argument(
        "--ship-observations",
        default="",
        metavar="KINDS",
        help="observation kinds shipped besides flows, devices and alerts, e.g. dhcp,tls_client (default none)",
    )
    check = sub.add_parser("check-config", help="print every problem in a config file, with its key path")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--json", action="store_true", help="print the problems as a JSON list")
    sub.add_parser("reveal", help="map pseudonyms back to what they stand for (see: veille agent reveal --help)")
    sub.add_parser("pseudonym", help="the pseudonym the centre holds for a value (see: veille agent pseudonym --help)")
    sub.add_parser("privacy-key", help="make a site's pseudonymisation key file (see: veille agent privacy-key --help)")
    return parser


def check(path: str, as_json: bool, out: TextIO) -> int:
    """Print the problems of `path`; 0 when there are none, 1 otherwise."""
    problems = check_config(path)
    if as_json:
        print(json.dumps([{"key": p.key, "message": p.message} for p in problems]), file=out)
    elif problems:
        for p in problems:
            print(f"{path}: {p}", file=out)
        print(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=out)
    else:
        print(f"{path}: OK", file=out)
    return 1 if problems else 0


def run(
    path: str, events_path: str | None, mdns_interval: float | None = None, observations: Sequence[str] = ()
) -> int:
    """Load the config, set up JSON logging and run the daemon until it stops."""
    from agent.logging import setup_logging

    try:
        config = load_config(path)
    except ConfigInvalid as exc:
        for p in exc.problems:
            print(f"veille agent: {path}: {p}", file=sys.stderr)
        return 1
    setup_logging(config.agent.log_level)
    from agent.daemon import Daemon

    events_out: TextIO | None = None
    try:
        if events_path:
            events_out = open(events_path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        return asyncio.run(
            Daemon(config, events_out=events_out, mdns_interval=mdns_interval, ship_observations=observations).run()
        )
    except KeyboardInterrupt:
        return 130
    finally:
        if events_out is not None:
            events_out.close()


def main(argv: Sequence[str]) -> int:
    """Entry point of `veille agent ...`; returns the exit status."""
    argv = list(argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module, function = DELEGATED[argv[0]]
        return int(getattr(importlib.import_module(module), function)(argv[1:]))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "check-config":
        return check(args.file, args.json, sys.stdout)
    if args.mdns_browse is not None and args.mdns_browse <= 0:
        print("veille agent: --mdns-browse: must be a positive number of seconds", file=sys.stderr)
        return 2
    kinds = [k.strip() for k in args.ship_observations.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in OBSERVATION_KINDS]
    if unknown:
        known = ", ".join(OBSERVATION_KINDS)
        print(f"veille agent: --ship-observations: unknown kind {unknown[0]!r} (known: {known})", file=sys.stderr)
        return 2
    return run(args.config, args.events, args.mdns_browse, kinds)
