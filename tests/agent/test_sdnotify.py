"""sd_notify against a real unix datagram socket standing in for systemd's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sdnotify import Notifier


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_status_watchdog_reloading_stopping(systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("capturing on eth1")
    assert sock.recv(4096) == b"READY=1\nSTATUS=capturing on eth1"
    n.status("two\nlines")
    assert sock.recv(4096) == b"STATUS=two lines"
    n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.reloading()
    lines = sock.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
    n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    n.close()
    assert not n.notify(status="closed")


def test_abstract_socket_name() -> None:
    name = f"veille-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.ready()
        assert sock.recv(4096) == b"READY=1"
        n.close()


def test_without_systemd_every_call_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.watchdog_interval() is None
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled is False


def test_watchdog_interval_is_half_of_watchdogsec() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval() == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 15.0
    # Meant for another process (e.g. inherited by a child): not ours to ping.
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval() is None


def test_a_child_process_reads_notify_socket_from_its_environment(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, path = systemd_socket
    code = "from agent.sdnotify import Notifier; Notifier().ready('from child')"
    env = {**os.environ, "NOTIFY_SOCKET": path, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert sock.recv(4096) == b"READY=1\nSTATUS=from child"


async def test_watchdog_loop_pings_only_while_alive(systemd_socket: tuple[socket.socket, str]) -> None:
    import asyncio

    from agent.sdnotify import watchdog_loop

    sock, path = systemd_socket
    sock.setblocking(False)
    state = {"alive": True}
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # 0.1 s -> a ping every 0.05 s
    task = asyncio.create_task(watchdog_loop(n, lambda: state["alive"]))
    await asyncio.sleep(0.3)
    state["alive"] = False
    await asyncio.sleep(0.02)
    pings_alive = _drain(sock)
    await asyncio.sleep(0.3)
    pings_stuck = _drain(sock)
    task.cancel()
    assert 3 <= pings_alive.count(b"WATCHDOG=1") <= 8
    assert pings_stuck == []


async def test_watchdog_loop_without_watchdog_returns() -> None:
    from agent.sdnotify import watchdog_loop

    await watchdog_loop(Notifier({}), lambda: True)


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out
