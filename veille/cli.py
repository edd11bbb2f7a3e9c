"""The `veille` command: one entry point, subcommands routed to the room that owns them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from veille import __version__

# Subcommands whose parsers live in their own rooms: name -> module with main(argv) -> int.
DELEGATED = {
    "collector": "collector.cli",
    "rules": "signatures.rules.cli",
    "agent": "agent.cli",
    "demo": "veille.demo",
}


def _replay_parser(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay capture files through the pipeline and print events")
    p.add_argument("files", nargs="+", metavar="FILE", help="pcap or pcapng files, replayed in order")
    p.add_argument(
        "--format",
        choices=("jsonl", "table", "eve"),
        help="default: jsonl unless stdout is a terminal; eve: Suricata EVE JSON",
    )
    p.add_argument("-o", "--output", help="write events to this file instead of stdout")
    p.add_argument("--rules", action="append", default=[], metavar="FILE", help="Suricata rule file (repeatable)")
    p.add_argument("--home-net", default=None, help="value of $HOME_NET, e.g. [192.0.2.0/24,2001:db8::/32]")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="rule variable (repeatable)")
    p.add_argument("--ioc", action="append", default=[], metavar="FILE", help="IOC list file (repeatable)")
    p.add_argument("--detections", metavar="TOML", help="LAN hygiene detections config (TOML [detections] table)")
    p.add_argument("--p0f", metavar="PATH", help="p0f.fp database (default: the distro's)")
    p.add_argument("--no-fingerprints", action="store_true", help="skip JA3/JA4/HASSH/p0f")
    p.add_argument("--no-inventory", action="store_true", help="skip device events")
    p.add_argument("--stream-depth", type=int, default=None, help="bytes reassembled per TCP direction")
    p.add_argument(
        "--encryption-handling",
        choices=("default", "full"),
        default="default",
        help="default: rules skip TLS ciphertext, as Suricata does; full: inspect it too",
    )
    p.add_argument("--no-bypass", action="store_true", help="decode every packet (slower; same events)")
    p.add_argument("--ship", action="store_true", help="ship events to the collector instead of printing them")
    p.add_argument("--agent-config", metavar="FILE", help="agent TOML with the [collector] table (for --ship)")
    from veille.replay import add_privacy_arguments

    add_privacy_arguments(p)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        name = args_list[0]
        mod = importlib.import_module(DELEGATED[name])
        return int(mod.main(args_list[1:]))
    parser = argparse.ArgumentParser(prog="veille", description="Veille network sensor")
    parser.add_argument("--version", action="version", version=f"veille {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _replay_parser(sub)
    for name in DELEGATED:
        sub.add_parser(name, help=f"{name} commands (see: veille {name} --help)")
    args = parser.parse_args(args_list)
    if args.command == "replay":
        from veille.replay import run_replay

        return run_replay(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
