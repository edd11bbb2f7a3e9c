"""Replay throughput and memory, side by side with the C tools a site would otherwise run.

Generates the mixed capture (bench/gen_mix.py) unless given one, then runs, in one invocation and
pinned to one core (`taskset -c 0`), `veille replay` with the chosen features and ndpiReader, p0f and
tshark when installed. Reports packets/s (by CPU time: these machines are noisy, so user+sys of the
child is the fair clock), wall time, peak RSS, and each peer's ratio to Veille.

    python -m bench.replay_bench [--packets 300000] [--pcap FILE] [--rules N] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.gen_mix import generate

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    name: str
    wall: float
    cpu: float
    rss_mb: float
    ok: bool


def _measure(name: str, cmd: list[str], repeat: int, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    best: Run | None = None
    for _ in range(repeat):
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        t0 = time.monotonic()
        proc = subprocess.Popen(pin + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        ok = os.waitstatus_to_exitcode(status) == 0
        if not ok:
            print(f"  {name} failed: {err.strip()[:300]}", file=sys.stderr)
        run = Run(name, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, ok)
        if best is None or run.cpu < best.cpu:
            best = run
    assert best is not None
    return best


def build_accelerated(dest: Path) -> Path:
    """A copy of the tree with the hot modules compiled (mypyc and Cython: setup.py, VEILLE_COMPILE=1)."""
    dest.mkdir(parents=True)
    for name in ("capture", "signatures", "agent", "telemetry", "collector", "veille"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=dest,
        env=dict(os.environ, VEILLE_COMPILE="1"),
        check=True,
        capture_output=True,
    )
    # `python -m` puts the working directory first on sys.path: run (and check) from the built tree, or a
    # run started in the checkout would time the pure modules under the "compiled" label.
    probe = "import agent.pipeline, capture.fastpath as f; print(agent.pipeline.__file__, f.__file__)"
    where = subprocess.run([sys.executable, "-c", probe], cwd=dest, capture_output=True, text=True, check=True)
    if where.stdout.count(".so") != 2:
        raise SystemExit(f"the accelerator was built but is not the one imported: {where.stdout.strip()}")
    return dest


def _rules_file(n: int, path: Path) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(
                f'alert tcp any any -> any any (msg:"bench content {i}"; flow:to_server; '
                f'content:"x-bench-{i:05d}-marker"; sid:{5000000 + i}; rev:1;)\n'
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--pcap", help="use this capture instead of generating one")
    ap.add_argument("--rules", type=int, default=0, help="also load N generated content rules")
    ap.add_argument("--repeat", type=int, default=2, help="runs per tool; the lowest CPU time is kept")
    ap.add_argument("--accel", action="store_true", help="also build the compiled accelerator and run it")
    ap.add_argument("--no-bypass", action="store_true", help="also run every feature with every packet decoded")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="veille-bench-"))
    pcap = Path(a.pcap).resolve() if a.pcap else tmp / "mix.pcap"
    if not a.pcap:
        n = generate(pcap, a.packets)
    else:
        n = sum(1 for _ in __import__("capture.pcapfile", fromlist=["read_frames"]).read_frames(pcap))
    veille = [sys.executable, "-m", "veille", "replay", str(pcap), "-o", os.devnull, "--home-net", "[192.0.2.0/24]"]
    runs = [_measure("veille (decode+flows+observations)", [*veille, "--no-fingerprints", "--no-inventory"], a.repeat)]
    full = veille.copy()
    if a.rules:
        rf = tmp / "bench.rules"
        _rules_file(a.rules, rf)
        full += ["--rules", str(rf)]
    label = f"veille (all features, {a.rules} rules)" if a.rules else "veille (all features)"
    runs.append(_measure(label, full, a.repeat))
    if a.no_bypass:
        runs.append(_measure(label.replace(")", ", --no-bypass)"), [*full, "--no-bypass"], a.repeat))
    if a.accel:
        tree = build_accelerated(tmp / "accel")
        env = dict(os.environ, PYTHONPATH=str(tree))
        runs.append(
            _measure(
                "veille compiled (decode+flows+obs)",
                [*veille, "--no-fingerprints", "--no-inventory"],
                a.repeat,
                env,
                cwd=tree,
            )
        )
        runs.append(_measure(label.replace("veille", "veille compiled"), full, a.repeat, env, cwd=tree))
    if shutil.which("ndpiReader"):
        runs.append(_measure("ndpiReader 4.x", ["ndpiReader", "-i", str(pcap), "-q"], a.repeat))
    if shutil.which("p0f"):
        runs.append(_measure("p0f", ["p0f", "-r", str(pcap), "-o", str(tmp / "p0f.log")], a.repeat))
    if shutil.which("tshark"):
        runs.append(
            _measure("tshark -T fields", ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"], 1)
        )
    base = runs[1]
    print(f"\ncapture: {n} packets ({pcap.stat().st_size / 1e6:.1f} MB), one core, best of {a.repeat}")
    print(
        f"{'tool':42} {'pkts/s (cpu)':>13} {'cpu s':>7} {'wall s':>7} {'peak RSS MB':>12} "
        f"{'pps vs veille':>14} {'RSS vs veille':>14}"
    )
    for r in runs:
        pps = n / r.cpu if r.cpu else 0.0
        print(
            f"{r.name:42} {pps:13,.0f} {r.cpu:7.2f} {r.wall:7.2f} {r.rss_mb:12.1f} "
            f"{(base.cpu / r.cpu if r.cpu else 0):13.2f}x {(r.rss_mb / base.rss_mb if base.rss_mb else 0):13.2f}x"
            + ("" if r.ok else "  (failed)")
        )
    print("ratios: >1 in 'pps vs veille' means the tool is faster than Veille (all features); RSS likewise.")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
