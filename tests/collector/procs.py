"""Run `python -m collector ...` as real processes for tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        env=env(),
        cwd=cwd,
        timeout=60,
    )


def cli_json(*args: str) -> Any:
    done = cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class ServeProcess:
    """`python -m collector serve` on a free loopback port; `.url` once it printed it."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> ServeProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collector",
            "serve",
            "--listen",
            "127.0.0.1:0",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env(),
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        match = re.search(r"(https?://\S+)", line)
        if match is None:
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise AssertionError(f"serve printed {line!r}, stderr {err.decode()[-2000:]}")
        self.url = match.group(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            self.returncode = await asyncio.wait_for(self.proc.wait(), 30)
