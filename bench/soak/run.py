"""The soak run: set up, replay rounds at a fixed rate, inject the seeded fault schedule, drain, account.

A `Soak` owns everything it creates (namespaces, tmpfs mounts, PostgreSQL schema, processes) and
removes it in `close()`, whatever happened. Faults run one at a time in slots of equal length; after
each, the time to recover is how long until every affected agent has a new batch stored (a restarted
collector is first waited for on `/healthz`, and its restart time reported apart).
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.soak import faults, ledger, system, traffic
from bench.soak.ledger import SpoolFile, Store
from bench.soak.system import Proc, Uplink, Veth

FAULTS: Final = (
    "collector_kill",
    "agent_kill",
    "uplink_blackhole",
    "spool_disk_full",
    "postgres_terminate",
    "clock_skew",
    "spool_corrupt",
    "malformed_flood",
    "hostile_burst",
)
PG_URL: Final = "postgresql://postgres@127.0.0.1:5432/test"
MALFORMED: Final = system.REPO / "pcaps" / "malformed.pcap"
# Collector limits the soak runs with (docs/collector.md); max_skew is the limit clock_skew exceeds.
MAX_SKEW: Final = 300.0
# The tmpfs under the first agent's spool: small enough to fill in a moment.
SPOOL_TMPFS: Final = "1m"
# Seconds a killed agent may lose: its open batch (batch_max_age) and the two batches of the memory
# queue (docs/wire.md), each at most batch_max_age old, plus a send in flight (request_timeout), plus
# the pipeline worker's 1 s tick and the hand-off to the event loop (agent/daemon.py TICK), doubled.
BATCH_MAX_AGE: Final = 1.0
REQUEST_TIMEOUT: Final = 3.0
KILL_WINDOW: Final = 3 * BATCH_MAX_AGE + REQUEST_TIMEOUT + 2.0
# A fault not recovered from within this many seconds fails the run.
RECOVERY_TIMEOUT: Final = 60.0
# Seconds between fault starts (see Soak._slot).
MIN_SLOT: Final = 12.0
MAX_SLOT: Final = 30.0


@dataclass
class Profile:
    """Size knobs of a run."""

    minutes: float = 3.0
    seed: int = 1
    agents: int = 2
    devices: int = 6
    markers: int = 2
    round_period: float = 3.0
    pps: int = 200
    postgres: bool = True
    # Malformed requests per flood: twice the collector's default burst (60), so its rate limiter answers too.
    flood: int = 120
    workdir: Path | None = None
    keep: bool = False


@dataclass
class Collector:
    name: str
    db: str
    port: int
    proc: Proc
    store: Store
    url: str = ""
    rogue_secret: str = ""


@dataclass
class Agent:
    name: str
    index: int
    site: str
    collector: Collector
    veth: Veth
    uplink: Uplink
    proc: Proc
    events: Path
    spool: Path
    kills: list[float] = field(default_factory=list)
    down: list[tuple[float, float]] = field(default_factory=list)
    spool_snapshots: list[SpoolFile] = field(default_factory=list)
    corrupted: list[SpoolFile] = field(default_factory=list)
    rounds: list[tuple[float, float, bool]] = field(default_factory=list)
    # Events the hostile bursts sent to this agent's interface yield (replay pipeline truth).
    hostile_generated: Counter[str] = field(default_factory=Counter)


@dataclass
class FaultRecord:
    name: str
    target: str
    start: float
    end: float = 0.0
    recovery: float | None = None
    ok: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


class Soak:
    """One soak run; `run()` returns the raw material `report.build` turns into the verdict."""

    def __init__(self, profile: Profile) -> None:
        self.p = profile
        self.rng = random.Random(profile.seed)
        self.tmp = Path(profile.workdir or tempfile.mkdtemp(prefix="veille-soak-"))
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.tag = f"{secrets.randbelow(10**5):05d}"
        self.collectors: list[Collector] = []
        self.agents: list[Agent] = []
        self.faults: list[FaultRecord] = []
        self.mounts: list[Path] = []
        self.schema = ""
        self.notes: list[str] = []
        self.truth: dict[str, Any] = {}
        self.rules = self.tmp / "soak.rules"
        self._traffic_stop = threading.Event()
        self._traffic: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.sampler: system.Sampler | None = None
        self.rogue: dict[str, Any] = {}
        self.ledger_before_kill: list[tuple[str, set[int]]] = []
        self.started = time.time()
        self.phase_end = 0.0

    # -- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Rules, collectors, enrolment, veths, uplinks, agents; raises on any failure."""
        self.rules.write_text(traffic.SOAK_RULE)
        kinds = ["sqlite", "postgres"] if self.p.postgres else ["sqlite", "sqlite2"]
        if self.p.postgres and not self._postgres_up():
            kinds = ["sqlite", "sqlite2"]
            self.notes.append("PostgreSQL at 127.0.0.1:5432 not reachable: second collector on SQLite")
        for kind in kinds:
            self.collectors.append(self._collector(kind))
        for c in self.collectors:
            self.start_collector(c)
            c.rogue_secret = self._enrol(c, f"soak-rogue-{c.name}", f"rogue-{c.name}", self.tmp / "unused")["secret"]
        for i in range(self.p.agents):
            self.agents.append(self._agent(i, self.collectors[i % len(self.collectors)]))
        procs = [c.proc for c in self.collectors] + [a.proc for a in self.agents]
        self.sampler = system.Sampler(procs)
        self.sampler.start()
        for a in self.agents:
            self.start_agent(a)

    def _postgres_up(self) -> bool:
        try:
            Store(PG_URL).query("SELECT 1")
        except Exception:
            return False
        return True

    def _collector(self, kind: str) -> Collector:
        port = _free_port()
        name = f"collector-{kind}"
        if kind == "postgres":
            self.schema = f"soak_{self.tag}_{secrets.token_hex(3)}"
            db = f"{PG_URL}?schema={self.schema}"
        else:
            db = str(self.tmp / f"{name}.sqlite")
        config = self.tmp / f"{name}.toml"
        config.write_text(
            f"[limits]\nmax_skew = {MAX_SKEW}\n\n[retention]\n"
            + "".join(f"{k} = 0\n" for k in ("flows", "health", "observations", "alerts", "evidence", "devices"))
        )
        proc = system.collector_proc(name, self.tmp, db, port, config)
        return Collector(name, db, port, proc, Store(db), url=f"http://127.0.0.1:{port}")

    def start_collector(self, c: Collector) -> float:
        """Start (or restart) `c` and wait for /healthz."""
        c.proc.start()
        return system.wait_http(c.url + "/healthz")

    def _enrol(self, c: Collector, agent_id: str, site: str, spool: Path, url: str = "") -> dict[str, Any]:
        out = self.tmp / f"{agent_id}.collector.toml"
        done = subprocess.run(
            [sys.executable, "-m", "collector", "agent", "add", "--db", c.db, "--site", site, "--id", agent_id,
             "--url", url or c.url, "--config-out", str(out), "--spool-dir", str(spool), "--json"],
            capture_output=True, text=True, env=system.env(), cwd=system.REPO, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"enrolling {agent_id}: {done.stderr.strip()}")
        info: dict[str, Any] = json.loads(done.stdout)
        info["table"] = out.read_text()
        return info

    def _agent(self, i: int, c: Collector) -> Agent:
        name, site = f"agent-{i}", f"soak-site-{i}"
        veth = system.make_veth(f"{self.tag}{i}")
        uplink = Uplink(c.port)
        port = uplink.start()
        base = self.tmp / name
        base.mkdir()
        if i == 0:
            # The first agent's spool lives on a small tmpfs: the disk-full fault fills it.
            system.sh("mount", "-t", "tmpfs", "-o", f"size={SPOOL_TMPFS}", "veille-soak", str(base))
            self.mounts.append(base)
        spool = base / "spool"
        table = self._enrol(c, name, site, spool, url=f"http://127.0.0.1:{port}")["table"]
        # The second agent gets a small spool bound, so a long blackhole makes it shed by kind.
        bound = "spool_max_bytes = 8192\n" if i == 1 else ""
        table = table.replace("spool_max_bytes", "# spool_max_bytes")
        config = self.tmp / f"{name}.toml"
        config.write_text(
            f'[agent]\nid = "{name}"\nsite = "{site}"\nlog_level = "info"\n\n'
            f'[capture]\ninterfaces = ["{veth.cap}"]\n\n'
            f'[rules]\nfiles = ["{self.rules}"]\nhome_net = ["192.0.2.0/24"]\n\n'
            "[pipeline]\ntcp_timeout = 5.0\nudp_timeout = 1.0\nother_timeout = 1.0\nclosed_linger = 1.0\n\n"
            "[health]\ninterval = 2.0\n\n"
            f"{table}\nbatch_max_age = {BATCH_MAX_AGE}\nrequest_timeout = {REQUEST_TIMEOUT}\n"
            f"backoff_initial = 0.2\nbackoff_max = 2.0\n{bound}"
        )
        events = self.tmp / f"{name}.events.jsonl"
        proc = system.agent_proc(name, self.tmp, config, events, ",".join(traffic.SHIPPED_OBS))
        return Agent(name, i, site, c, veth, uplink, proc, events, spool)

    def start_agent(self, a: Agent, extra_env: dict[str, str] | None = None) -> None:
        """Start (or restart) `a` and wait until it captures."""
        mark = a.proc.log_length()
        a.proc.start(extra_env)
        a.proc.wait_log(r'"msg":\s*"capturing"', since=mark)

    # -- traffic -------------------------------------------------------------------------------
    def start_traffic(self) -> None:
        """One thread per agent sends a round every `round_period` s at `pps`."""
        for a in self.agents:
            t = threading.Thread(target=self._traffic_loop, args=(a,), name=f"traffic-{a.name}", daemon=True)
            self._traffic.append(t)
            t.start()

    def _traffic_loop(self, a: Agent) -> None:
        round_no = 0
        folder = self.tmp / f"rounds-{a.name}"
        folder.mkdir(exist_ok=True)
        next_at = time.monotonic()
        while not self._traffic_stop.is_set():
            frames = traffic.build_round(a.index, round_no, self.p.devices, self.p.markers, self.p.seed)
            pcap = traffic.write_pcap(frames, folder / "round.pcap")
            if round_no == 0:
                truth = traffic.truth_of(pcap, self.rules)
                with self._lock:
                    self.truth[a.name] = {"counts": truth.counts, "devices": sorted(truth.devices)}
            up_before = a.proc.alive()
            t0 = time.time()
            a.veth.send(pcap, self.p.pps)
            a.rounds.append((t0, time.time(), up_before and a.proc.alive()))
            round_no += 1
            next_at += self.p.round_period
            self._traffic_stop.wait(max(0.0, next_at - time.monotonic()))

    def stop_traffic(self) -> None:
        """Stop sending and wait for the senders."""
        self._traffic_stop.set()
        for t in self._traffic:
            t.join(30)

    # -- faults --------------------------------------------------------------------------------
    def schedule(self) -> list[tuple[str, str]]:
        """The seeded fault list: every kind once per cycle, shuffled, each with a seeded target."""
        slot = self._slot()
        n = max(len(FAULTS), int(self.p.minutes * 60 / slot))
        out: list[tuple[str, str]] = []
        while len(out) < n:
            cycle = list(FAULTS)
            self.rng.shuffle(cycle)
            for kind in cycle:
                out.append((kind, self._target(kind)))
        return out[:n]

    def _slot(self) -> float:
        # Each fault needs ~5-12 s of fault and ~1-2 s of recovery on this hardware; long runs space
        # faults at most MAX_SLOT apart so the schedule keeps cycling.
        return min(MAX_SLOT, max(MIN_SLOT, self.p.minutes * 60 / len(FAULTS) * 0.8))

    def _target(self, kind: str) -> str:
        if kind in ("collector_kill", "clock_skew", "malformed_flood"):
            return self.rng.choice(self.collectors).name
        if kind == "postgres_terminate":
            pg = [c for c in self.collectors if c.store.postgres]
            return pg[0].name if pg else self.collectors[-1].name
        if kind == "spool_disk_full":
            return self.agents[0].name
        return self.rng.choice(self.agents).name

    def run_faults(self) -> None:
        """Run the schedule, one fault per slot, checking process liveness in between."""
        slot = self._slot()
        for kind, target in self.schedule():
            began = time.monotonic()
            record = FaultRecord(kind, target, time.time())
            try:
                affected = getattr(faults, kind)(self, record, target)
                record.end = time.time()
                record.recovery = self._recovered(affected, record.end)
                record.ok = record.ok and record.recovery is not None
            except Exception as exc:
                record.ok = False
                record.detail["error"] = f"{type(exc).__name__}: {exc}"
                record.end = record.end or time.time()
            self.faults.append(record)
            self._check_procs()
            rest = slot - (time.monotonic() - began)
            if rest > 0:
                time.sleep(rest)
        self.phase_end = time.time()

    def _check_procs(self) -> None:
        for p in [c.proc for c in self.collectors] + [a.proc for a in self.agents]:
            p.check()

    def _recovered(self, agents: list[Agent], since: float) -> float | None:
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        waiting = list(agents)
        while time.monotonic() < deadline:
            waiting = [a for a in waiting if not self._stored_after(a, since)]
            if not waiting:
                return round(time.time() - since, 2)
            time.sleep(0.25)
        return None

    @staticmethod
    def _stored_after(a: Agent, since: float) -> bool:
        try:
            return a.collector.store.last_received(a.name) > since
        except Exception:
            return False

    def agent_named(self, name: str) -> Agent:
        """The agent called `name`."""
        return next(a for a in self.agents if a.name == name)

    def collector_named(self, name: str) -> Collector:
        """The collector called `name`."""
        return next(c for c in self.collectors if c.name == name)

    def agents_of(self, c: Collector) -> list[Agent]:
        """The agents shipping to `c`."""
        return [a for a in self.agents if a.collector is c]

    # -- drain and teardown --------------------------------------------------------------------
    def drain(self) -> dict[str, Any]:
        """Stop traffic, let flows end, stop every agent with SIGTERM, empty leftover spools."""
        alive = {p.name: p.alive() for p in self._procs()}
        self.stop_traffic()
        time.sleep(8.0)  # tcp_timeout 5 s + the worker's 1 s tick + a batch age
        exits: dict[str, Any] = {}
        for a in self.agents:
            exits[a.name] = a.proc.terminate()
            if _undelivered(a):
                # The collector was unreachable at the very end: a new incarnation sends the spool.
                self.start_agent(a)
                deadline = time.monotonic() + RECOVERY_TIMEOUT
                while time.monotonic() < deadline and _undelivered(a):
                    time.sleep(0.5)
                exits[a.name + " (spool drain)"] = a.proc.terminate()
        return {"alive_before_drain": alive, "agent_exit_status": exits}

    def _procs(self) -> list[Proc]:
        return [c.proc for c in self.collectors] + [a.proc for a in self.agents]

    def close(self) -> None:
        """Stop and remove everything this run created, whatever state it is in."""
        self._traffic_stop.set()
        for p in self._procs():
            with contextlib.suppress(Exception):
                if p.alive():
                    p.terminate(20)
        if self.sampler is not None:
            self.sampler.stop()
        for a in self.agents:
            with contextlib.suppress(Exception):
                a.uplink.stop()
            system.remove_veth(a.veth)
        for m in self.mounts:
            system.sh("umount", "-l", str(m), check=False)
        if self.schema:
            with contextlib.suppress(Exception):
                Store(PG_URL).query(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        if not self.p.keep and self.p.workdir is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self) -> dict[str, Any]:
        """Set up, run the schedule with traffic, drain and return the accounting report."""
        from bench.soak.report import build

        try:
            self.setup()
            self.start_traffic()
            time.sleep(self.p.round_period * 2)
            self.run_faults()
            drained = self.drain()
            return build(self, drained)
        finally:
            self.close()


def _undelivered(a: Agent) -> list[SpoolFile]:
    """Spool files holding more than the health event a stopping agent writes last."""
    return [f for f in ledger.read_spool(a.spool)[0] if set(f.kinds) - {"health"}]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kernel_rx(veths: list[Veth]) -> dict[str, dict[str, int]]:
    """sysfs counters of every capture end (read before the veths go)."""
    return {v.cap: v.kernel_counters() for v in veths}


def preflight() -> str | None:
    """Why a soak cannot run here (None when it can): root, ip(8), tcpreplay, packet sockets."""
    import os

    if os.geteuid() != 0:
        return "needs root: network namespaces, veth pairs, packet sockets and a tmpfs mount"
    for tool in ("ip", "tcpreplay", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None
