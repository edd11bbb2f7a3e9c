"""systemd's sd_notify protocol, without libsystemd: datagrams to $NOTIFY_SOCKET.

A unit with Type=notify waits for READY=1; STATUS= shows in `systemctl status`;
WATCHDOG=1 must arrive at least every WatchdogSec (systemd passes it as
WATCHDOG_USEC, and WATCHDOG_PID names the process it is meant for); RELOADING=1
and STOPPING=1 bracket a reload and announce shutdown. Outside systemd (no
NOTIFY_SOCKET) every call is a cheap no-op, so the daemon code never branches on it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

# sd_notify(3): an abstract socket name is given with a leading "@".
_ABSTRACT = "@"
# sd_watchdog_enabled(3) recommends pinging at half the interval.
WATCHDOG_FRACTION = 0.5


class Notifier:
    """Sends notifications to systemd; a no-op when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_usec = _watchdog_usec(env)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (keys upper-cased); False when not under systemd."""
        if self._sock is None or self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        self._sock.sendto(payload.encode("utf-8"), self._address)
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1 (with an optional STATUS=)."""
        return self.notify(ready=1, status=status) if status else self.notify(ready=1)

    def status(self, text: str) -> bool:
        """STATUS=text, one line."""
        return self.notify(status=text.replace("\n", " "))

    def watchdog(self) -> bool:
        """WATCHDOG=1: the service is alive."""
        return self.notify(watchdog=1)

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC, as systemd 253+ wants for Type=notify-reload."""
        return self.notify(reloading=1, monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        """STOPPING=1."""
        return self.notify(stopping=1)

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None without a watchdog."""
        if self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 1_000_000 * WATCHDOG_FRACTION

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(raw: str) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith(_ABSTRACT):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec if usec > 0 else None


async def watchdog_loop(notifier: Notifier, alive: Callable[[], bool]) -> None:
    """Send WATCHDOG=1 every half WatchdogSec while `alive()` says so; returns at once without a watchdog.

    Run it as a task on the daemon's event loop: a blocked loop stops the pings, and
    so does a stage `alive()` reports stuck, and systemd restarts the service.
    """
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    while True:
        if alive():
            notifier.watchdog()
        await asyncio.sleep(interval)
