"""How throughput and memory grow: flows, devices and rules each at 1x, 10x and 100x.

One dimension changes at a time on a capture of the same size; the table shows packets/s (by CPU
time) and peak RSS of `veille replay` with every feature on, so a reader sees what grows linearly and
what does not.

    python -m bench.scaling [--packets 200000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.gen_mix import generate
from bench.replay_bench import _measure, _rules_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="veille-scaling-"))
    rows = []
    base = dict(devices=10, long_flows=8, rules=10)
    cases = [("baseline", base)]
    for dim, values in (("devices", (100, 1000)), ("long_flows", (80, 800)), ("rules", (100, 1000, 10000))):
        for v in values:
            cases.append((f"{dim}={v}", {**base, dim: v}))
    for name, c in cases:
        pcap = tmp / f"{c['devices']}-{c['long_flows']}.pcap"
        if not pcap.exists():
            generate(pcap, a.packets, 7, c["devices"], c["long_flows"])
        rules = tmp / f"r{c['rules']}.rules"
        if not rules.exists():
            _rules_file(c["rules"], rules)
        cmd = [sys.executable, "-m", "veille", "replay", str(pcap), "-o", os.devnull, "--rules", str(rules)]
        cmd += ["--home-net", "[192.0.2.0/24]"]
        r = _measure(name, cmd, 1)
        rows.append((name, c, a.packets / r.cpu if r.cpu else 0.0, r.rss_mb))
    print(f"\n{'case':18} {'devices':>8} {'long flows':>10} {'rules':>6} {'pkts/s (cpu)':>13} {'peak RSS MB':>12}")
    for name, c, pps, rss in rows:
        print(f"{name:18} {c['devices']:8} {c['long_flows']:10} {c['rules']:6} {pps:13,.0f} {rss:12.1f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
