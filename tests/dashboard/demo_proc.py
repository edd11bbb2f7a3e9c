"""Run `veille demo` as a real process for tests; parse what it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@dataclass
class DemoRun:
    url: str = ""
    admin: str = ""
    viewer: str = ""
    lines: list[str] = field(default_factory=list)


def parse(lines: list[str]) -> DemoRun:
    run = DemoRun(lines=lines)
    for line in lines:
        if m := re.search(r"Dashboard:\s+(http://\S+?)/?$", line):
            run.url = m.group(1)
        elif m := re.search(r"Admin token:\s+(\S+)", line):
            run.admin = m.group(1)
        elif m := re.search(r"Viewer token:\s+(\S+)", line):
            run.viewer = m.group(1)
    return run


def run_demo(workdir: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`veille demo --exit-after-load` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "veille", "demo", "--dir", str(workdir), "--listen", "127.0.0.1:0", *extra],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
    )


class ServingDemo:
    """`veille demo` left serving (as the README's first command runs it) until `stop()` sends SIGTERM."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veille", "demo", "--dir", str(workdir), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Serving until"):
                break
        self.run = parse(lines)
        if not self.run.url:
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"veille demo did not start: {lines} {err[-2000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
