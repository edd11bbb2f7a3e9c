"""The real parts of a soak run: network namespaces and veth pairs, uplink relays, collector and
agent processes, and a psutil sampler.

Every agent captures on the root-namespace end of a veth pair whose peer sits in a namespace this run
creates; traffic is sent from the peer with tcpreplay. An agent reaches its collector through an
`Uplink`, a TCP relay on loopback owned by this process, so the uplink can be blackholed for one agent
without touching the machine's firewall (neither iptables nor nft is assumed): while blackholed the
relay accepts connections and swallows their bytes, as a dead route does after the SYN. Collectors
are `python -m collector serve` processes, agents `python -m veille agent run` processes; both are
killed and restarted by the fault schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import psutil

REPO: Final = Path(__file__).resolve().parents[2]
# A process that prints nothing useful within this many seconds has failed to start.
START_TIMEOUT: Final = 60.0
# psutil sampling period: fine enough to see a restart's peak, cheap on 2 cores.
SAMPLE_PERIOD: Final = 0.5


def env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this repo on the path, no systemd notification sockets."""
    base = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    return {**base, "PYTHONPATH": str(REPO), **extra}


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise with its stderr when `check` and it fails."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass
class Veth:
    """A veth pair: `cap` in this namespace (the agent captures there), `peer` inside namespace `ns`."""

    ns: str
    cap: str
    peer: str

    def send(self, pcap: Path, pps: int, loop: int = 1) -> None:
        """Send `pcap` from the far end at `pps` packets per second (tcpreplay)."""
        args = ["ip", "netns", "exec", self.ns, "tcpreplay", "-q", f"--pps={pps}", "-i", self.peer]
        if loop > 1:
            args.append(f"--loop={loop}")
        sh(*args, str(pcap))

    def kernel_counters(self) -> dict[str, int]:
        """rx/tx packet and drop counters of the capture end (sysfs)."""
        base = Path(f"/sys/class/net/{self.cap}/statistics")
        return {n: int((base / n).read_text()) for n in ("rx_packets", "rx_dropped", "tx_packets")}


def make_veth(tag: str) -> Veth:
    """Create namespace `vs<tag>` and a veth pair into it, IPv6 off so the kernel sends nothing itself."""
    ns, cap, peer = f"vsn{tag}", f"vsc{tag}", f"vsp{tag}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", cap, "type", "veth", "peer", "name", peer, "netns", ns)
        Path(f"/proc/sys/net/ipv6/conf/{cap}/disable_ipv6").write_text("1")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1")
        sh("ip", "link", "set", cap, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
    except Exception:
        remove_veth(Veth(ns, cap, peer))
        raise
    return Veth(ns, cap, peer)


def remove_veth(v: Veth) -> None:
    """Delete the pair and the namespace (best effort: cleanup must go on)."""
    sh("ip", "link", "del", v.cap, check=False)
    sh("ip", "netns", "del", v.ns, check=False)


class Uplink:
    """A TCP relay 127.0.0.1:port -> the collector, which can be blackholed (bytes swallowed)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.blackholed = False
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)

    def start(self) -> int:
        """Start the relay thread; returns the port agents connect to."""
        self._thread.start()
        self._ready.wait(10)
        return self.port

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.blackholed:
                while await reader.read(65536):
                    pass
                return
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                return
            self._writers.add(up_w)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
            self._writers.discard(up_w)
            up_w.close()
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            if self.blackholed:
                continue
            dst.write(data)
            await dst.drain()
        with contextlib.suppress(OSError):
            dst.write_eof()

    def blackhole(self, on: bool) -> None:
        """Swallow (True) or forward (False) traffic; restoring cuts the stalled connections."""
        self.blackholed = on
        if not on:
            self._loop.call_soon_threadsafe(self._cut)

    def _cut(self) -> None:
        for w in list(self._writers):
            w.close()

    def stop(self) -> None:
        """Stop the relay thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@dataclass
class Proc:
    """A child process under test: its role, command, log file and every incarnation's pid."""

    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    # Exits the fault schedule caused (SIGKILL) or asked for (SIGTERM).
    expected_exits: int = 0
    unexpected: list[str] = field(default_factory=list)

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Start a new incarnation (with `extra_env` added to its environment), appending to the log."""
        handle: IO[bytes]
        with self.log.open("ab") as handle:
            handle.write(f"--- start {time.time():.3f}\n".encode())
            handle.flush()
            self.proc = subprocess.Popen(
                self.args, stdout=handle, stderr=subprocess.STDOUT, env=env(**(extra_env or {})), cwd=REPO
            )
        self.pids.append(self.proc.pid)
        self.started.append(time.time())

    def alive(self) -> bool:
        """True while the current incarnation runs."""
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Record an exit the schedule did not cause."""
        if self.proc is not None and self.proc.poll() is not None and len(self.pids) > self.expected_exits:
            self.unexpected.append(f"{self.name} pid {self.proc.pid} exited {self.proc.returncode}")
            self.expected_exits += 1  # reported once

    def kill(self) -> float:
        """SIGKILL the current incarnation; returns when it happened."""
        assert self.proc is not None
        self.expected_exits += 1
        self.proc.send_signal(signal.SIGKILL)
        at = time.time()
        self.proc.wait(30)
        return at

    def terminate(self, timeout: float = 40.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.expected_exits += 1
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.unexpected.append(f"{self.name} did not stop within {timeout} s of SIGTERM")
            return None

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines of every incarnation (other lines as {"raw": line})."""
        out: list[dict[str, Any]] = []
        if not self.log.exists():
            return out
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = {"raw": line}
            out.append(rec if isinstance(rec, dict) else {"raw": line})
        return out

    def wait_log(self, pattern: str, since: int = 0, timeout: float = START_TIMEOUT) -> None:
        """Wait for a log line matching `pattern` after line `since`; raise if the process exits."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log.read_text(errors="replace").splitlines()[since:] if self.log.exists() else []
            if any(regex.search(line) for line in lines):
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no log line matching {pattern!r} within {timeout} s")

    def log_length(self) -> int:
        """Number of log lines so far (a mark for `wait_log`)."""
        return len(self.log.read_text(errors="replace").splitlines()) if self.log.exists() else 0


def collector_proc(name: str, workdir: Path, db: str, port: int, config: Path) -> Proc:
    """A collector serving `db` on 127.0.0.1:`port` with the soak's config."""
    args = [sys.executable, "-m", "collector", "serve", "--db", db, "--listen", f"127.0.0.1:{port}"]
    return Proc(name, [*args, "--config", str(config)], workdir / f"{name}.log")


def agent_proc(name: str, workdir: Path, config: Path, events: Path, observations: str) -> Proc:
    """A live agent run with its events also written as JSON lines (one file, appended per incarnation)."""
    args = [sys.executable, "-m", "veille", "agent", "run", "--config", str(config), "--events", str(events)]
    return Proc(name, [*args, "--ship-observations", observations], workdir / f"{name}.log")


def wait_http(url: str, timeout: float = START_TIMEOUT) -> float:
    """Wait until GET `url` answers 200; returns the seconds it took."""
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@dataclass
class Usage:
    """Peak RSS and CPU of one role across its incarnations."""

    peak_rss: int = 0
    peak_cpu: float = 0.0
    cpu_seconds: float = 0.0
    by_pid: dict[int, float] = field(default_factory=dict)


class Sampler:
    """psutil every `SAMPLE_PERIOD` s over the current incarnation of every process."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self.usage: dict[str, Usage] = {p.name: Usage() for p in procs}
        self._handles: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        """Start sampling in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_PERIOD):
            for p in self.procs:
                if p.proc is None or p.proc.poll() is not None:
                    continue
                u = self.usage[p.name]
                try:
                    h = self._handles.get(p.proc.pid)
                    if h is None:
                        h = self._handles[p.proc.pid] = psutil.Process(p.proc.pid)
                        h.cpu_percent(None)
                        continue
                    with h.oneshot():
                        u.peak_rss = max(u.peak_rss, h.memory_info().rss)
                        u.peak_cpu = max(u.peak_cpu, h.cpu_percent(None))
                        t = h.cpu_times()
                        u.by_pid[p.proc.pid] = t.user + t.system
                except psutil.Error:
                    continue
                u.cpu_seconds = sum(u.by_pid.values())
