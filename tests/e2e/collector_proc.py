"""A real collector process on a free loopback port, and the CLI, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, cwd: Path) -> str:
    """`python -m ARGS` in `cwd`; its stdout, after asserting it succeeded."""
    out = subprocess.run([PY, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextmanager
def running_collector(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`veille collector serve` on SQLite in `tmp_path`, with an admin token; stopped on exit.

    Yields url, db, dir, token and proc (a test may stop it early to read the database)."""
    port = free_port()
    db = tmp_path / "collector.sqlite"
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [PY, "-m", "collector", "serve", "--db", str(db), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("collector did not start")
        token = json.loads(cli("collector", "token", "add", "--db", str(db), "--role", "admin", "--json", cwd=tmp_path))
        yield {"url": url, "db": db, "dir": tmp_path, "token": token["token"], "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
