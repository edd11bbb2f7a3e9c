"""`python -m bench.soak [--minutes M] [--seed S] [--json FILE]`: run a soak, print the report.

Exit status 0 when the run passes, 1 when it fails, 2 when it cannot run here (not root, tools missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.soak.report import render
from bench.soak.run import Profile, Soak, preflight


def main(argv: list[str]) -> int:
    """Parse the size knobs, run, print the table (and write the JSON); returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    ap.add_argument("--minutes", type=float, default=3.0, help="length of the fault phase (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the fault schedule and traffic (default 1)")
    ap.add_argument("--agents", type=int, default=2, help="live agents (default 2)")
    ap.add_argument("--devices", type=int, default=6, help="devices per site and round (default 6)")
    ap.add_argument("--pps", type=int, default=200, help="replay rate in packets per second (default 200)")
    ap.add_argument("--round-period", type=float, default=3.0, help="seconds between rounds per agent (default 3)")
    ap.add_argument("--no-postgres", action="store_true", help="both collectors on SQLite")
    ap.add_argument("--workdir", type=Path, help="keep every file of the run in this folder")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON to FILE")
    args = ap.parse_args(argv)
    why = preflight()
    if why:
        print(f"bench.soak: cannot run: {why}", file=sys.stderr)
        return 2
    profile = Profile(
        minutes=args.minutes,
        seed=args.seed,
        agents=args.agents,
        devices=args.devices,
        pps=args.pps,
        round_period=args.round_period,
        postgres=not args.no_postgres,
        workdir=args.workdir,
    )
    report = Soak(profile).run()
    report["command"] = "python -m bench.soak " + " ".join(argv)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
