"""`veille agent run` end to end on real kernel interfaces, shipping to a real collector.

Each test builds a network namespace with a veth pair (pyroute2 and ip(8), as root): the agent
captures on the end left in this namespace, traffic is sent from the end inside the new one
(tcpreplay of the project's fixture captures, documentation addresses only). The agent and the
collector (`python -m collector serve`, SQLite) run as subprocesses; the checks read the
collector's database, the agent's spool and its JSON-lines event file. IPv6 is off on both veth
ends so the kernel sends nothing of its own: every captured packet is a fixture packet.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import PipelineConfig, replay_events

pytestmark = [pytest.mark.netns, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCHOOL = REPO / "pcaps" / "school_morning.pcap"
LAN = REPO / "pcaps" / "lan_attacks.pcap"
LAN_RULES = REPO / "pcaps" / "lan_attacks.rules"
_counter = itertools.count()


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace, a veth pair and packet sockets")
    for tool in ("ip", "tcpreplay"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"needs {tool}")


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@dataclass
class Veth:
    ns: str
    cap: str
    peer: str

    def replay(self, pcap: Path, *extra: str) -> None:
        """Send a capture from the far end, as fast as the link takes it."""
        _sh("ip", "netns", "exec", self.ns, "tcpreplay", "-q", "--topspeed", "-i", self.peer, *extra, str(pcap))


@pytest.fixture
def veth() -> Iterator[Veth]:
    _need_root()
    from pyroute2 import netns

    tag = f"{os.getpid() % 100000}{next(_counter)}"
    ns, cap, peer = f"vae{tag}", f"vac{tag}", f"vap{tag}"
    netns.create(ns)
    try:
        _sh("ip", "link", "add", cap, "type", "veth", "peer", "name", peer, "netns", ns)
        Path(f"/proc/sys/net/ipv6/conf/{cap}/disable_ipv6").write_text("1")
        _sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1")
        _sh("ip", "link", "set", cap, "up")
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
        yield Veth(ns, cap, peer)
    finally:
        subprocess.run(["ip", "link", "del", cap], capture_output=True, check=False)
        netns.remove(ns)


@dataclass
class Collector:
    url: str
    db: Path
    proc: subprocess.Popen[str]

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as con:
            return list(con.execute(sql, args))

    def events(self) -> int:
        return int(self.query("SELECT COALESCE(SUM(events), 0) FROM batches")[0][0])

    def devices(self, site: str) -> set[str]:
        return {r[0] for r in self.query("SELECT mac FROM devices WHERE site = ?", site)}

    def health(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.query("SELECT data FROM health ORDER BY ts")]


def start_collector(tmp: Path) -> Collector:
    db = tmp / "collector.sqlite"
    err = tmp / "collector.err"
    with err.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "serve", "--db", str(db), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            env=_env(),
            cwd=tmp,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(https?://\S+)", line)
    assert match, f"collector printed {line!r}; stderr: {err.read_text()[-2000:]}"
    return Collector(match.group(1).rstrip("/"), db, proc)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path)
    try:
        yield c
    finally:
        stop_collector(c)


def stop_collector(c: Collector) -> None:
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(30)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()


def enrol(c: Collector, tmp: Path, agent_id: str = "agent-e2e", site: str = "test") -> str:
    """`collector agent add` and return its [collector] table, with test-sized batches."""
    out = tmp / "collector.toml"
    done = subprocess.run(
        [sys.executable, "-m", "collector", "agent", "add", "--db", str(c.db), "--site", site, "--id", agent_id,
         "--url", c.url, "--config-out", str(out), "--spool-dir", str(tmp / "spool")],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Batches close after 0.5 s so the checks see events quickly.
    return out.read_text() + "batch_max_age = 0.5\nbackoff_initial = 0.2\nbackoff_max = 1.0\n"


def agent_config(tmp: Path, iface: str, collector_table: str, rules: list[Path] | None = None, extra: str = "") -> Path:
    path = tmp / "agent.toml"
    files = json.dumps([str(r) for r in rules or []])
    path.write_text(
        f"""[agent]
id = "agent-e2e"
site = "test"
log_level = "info"

[capture]
interfaces = ["{iface}"]

[rules]
files = {files}
home_net = ["192.0.2.0/24"]

[pipeline]
# Short timeouts so flows end within a test's seconds, not Zeek's minutes.
tcp_timeout = 5.0
udp_timeout = 2.0
other_timeout = 2.0
closed_linger = 1.0

[health]
interval = 1.0
{extra}
{collector_table}"""
    )
    return path


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    log: Path
    events: Path

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"raw": line})
        return out

    def wait_log(self, pattern: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.log_lines():
                if re.search(pattern, json.dumps(rec)):
                    return rec
            assert self.proc.poll() is None, f"agent exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no log line matching {pattern!r}: {self.log.read_text()[-3000:]}")

    def event_lines(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    started: list[Agent] = []

    def start(config: Path, **env: str) -> Agent:
        log = tmp_path / f"agent{len(started)}.log"
        events = tmp_path / f"events{len(started)}.jsonl"
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "veille", "agent", "run", "--config", str(config), "--events", str(events)],
                stdout=handle,
                stderr=handle,
                env=_env(**env),
            )
        agent = Agent(proc, log, events)
        started.append(agent)
        agent.wait_log(r'"msg": "capturing"')
        return agent

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def spool_events(spool: Path) -> int:
    from telemetry.spool import Spool

    s = Spool(spool, 1 << 30, "zstd")
    total = 0
    for seq in s.pending():
        loaded = s.load(seq)
        total += loaded.events if loaded else 0
    return total


def spooled_health(spool: Path) -> list[dict[str, Any]]:
    """Health events in the spool's batches, as the collector would store them."""
    import msgspec

    from telemetry.codec import decode_batch, decompress
    from telemetry.schema import HealthEvent
    from telemetry.spool import Spool

    s = Spool(spool, 1 << 30, "zstd")
    out = []
    for seq in s.pending():
        loaded = s.load(seq)
        assert loaded is not None
        batch = decode_batch(decompress(loaded.body, loaded.encoding))
        out += [msgspec.to_builtins(e) for e in batch.events if isinstance(e, HealthEvent)]
    return out


def replay_truth(pcap: Path, rules: list[Path] | None = None) -> dict[str, Any]:
    """What the same capture gives through the replay pipeline: devices, flow packets, alert sids."""
    cfg = PipelineConfig(rule_files=[str(r) for r in rules or []], variables={"HOME_NET": "[192.0.2.0/24]"})
    macs: set[str] = set()
    flow_pkts = 0
    sids: list[int] = []
    packets = 0
    for e in replay_events([str(pcap)], cfg):
        if e["type"] == "device":
            macs.add(e["mac"])
        elif e["type"] == "flow":
            flow_pkts += e["pkts_fwd"] + e["pkts_rev"]
        elif e["type"] == "alert":
            sids.append(e["sid"])
        elif e["type"] == "stats":
            packets = e["packets"]
    return {"macs": macs, "flow_pkts": flow_pkts, "sids": sorted(sids), "packets": packets}


# ---------------------------------------------------------------------------------------------------


def test_fixture_traffic_reaches_the_collector(
    veth: Veth, collector: Collector, tmp_path: Path, start_agent: Callable[..., Agent]
) -> None:
    truth = replay_truth(SCHOOL)
    config = agent_config(tmp_path, veth.cap, enrol(collector, tmp_path))
    agent = start_agent(config)
    veth.replay(SCHOOL)
    # Every fixture packet is captured and fed: the agent's own health events say so.
    health = wait_for(
        "health with every packet",
        lambda: [h for h in collector.health() if h.get("packets") == truth["packets"]],
    )
    drops = health[-1].get("drops_kernel", 0) + health[-1].get("drops_pipeline", 0)
    print(f"live capture: {health[-1]['packets']}/{truth['packets']} packets, {drops} dropped")
    assert drops == 0
    # Devices are shipped while live, before any shutdown.
    devices = wait_for("devices", lambda: collector.devices("test") >= truth["macs"] and collector.devices("test"))
    print(f"devices at the collector while live: {len(devices)} (replay: {len(truth['macs'])})")
    assert devices == truth["macs"]
    # Flows end on the wall-clock tick (idle link) and reach the collector before shutdown.
    wait_for("flows", lambda: collector.query("SELECT COALESCE(SUM(flows), 0) FROM flow_hourly")[0][0] > 0)
    assert agent.stop() == 0
    flows = [e for e in agent.event_lines() if e["type"] == "flow"]
    live_pkts = sum(e["pkts_fwd"] + e["pkts_rev"] for e in flows)
    print(f"packets in flow summaries, live vs replay: {live_pkts}/{truth['flow_pkts']}")
    assert live_pkts == truth["flow_pkts"]
    # Shipped = acknowledged + spooled, nothing more and nothing less.
    last = max(collector.health() + spooled_health(tmp_path / "spool"), key=lambda h: h["uptime"])
    shipped_flows = len(flows)
    stored = collector.events()
    spooled = spool_events(tmp_path / "spool")
    print(f"events at the collector {stored}, in the spool {spooled}, flow summaries {shipped_flows}")
    assert last["events_by_type"]["flow"] == shipped_flows
    assert stored + spooled == sum(last["events_by_type"].values()) + 1 - last.get("events_invalid", 0)
    # Logs are JSON lines and never carry the collector secret.
    secret = re.search(r'secret = "([^"]+)"', config.read_text())
    assert secret and secret.group(1) not in agent.log.read_text()
    assert all("raw" not in rec for rec in agent.log_lines())


def test_interface_down_and_up_keeps_capturing(
    veth: Veth, collector: Collector, tmp_path: Path, start_agent: Callable[..., Agent]
) -> None:
    truth = replay_truth(SCHOOL)
    agent = start_agent(agent_config(tmp_path, veth.cap, enrol(collector, tmp_path)))
    veth.replay(SCHOOL)
    wait_for("first pass", lambda: any(h["packets"] == truth["packets"] for h in collector.health()))
    _sh("ip", "link", "set", veth.cap, "down")
    time.sleep(1.5)
    _sh("ip", "link", "set", veth.cap, "up")
    wait_for("link up", lambda: "UP" in subprocess.run(["ip", "link", "show", veth.cap], capture_output=True,
                                                        text=True).stdout.split(">")[0])  # fmt: skip
    time.sleep(0.5)
    veth.replay(SCHOOL)
    wait_for("second pass", lambda: any(h["packets"] == 2 * truth["packets"] for h in collector.health()))
    # Deleted and re-created: the capture re-opens on the new interface index.
    _sh("ip", "link", "del", veth.cap)
    _sh("ip", "link", "add", veth.cap, "type", "veth", "peer", "name", veth.peer, "netns", veth.ns)
    Path(f"/proc/sys/net/ipv6/conf/{veth.cap}/disable_ipv6").write_text("1")
    _sh("ip", "netns", "exec", veth.ns, "sysctl", "-qw", f"net.ipv6.conf.{veth.peer}.disable_ipv6=1")
    _sh("ip", "link", "set", veth.cap, "up")
    _sh("ip", "netns", "exec", veth.ns, "ip", "link", "set", veth.peer, "up")
    agent.wait_log("re-opened")
    time.sleep(0.5)
    veth.replay(SCHOOL)
    health = wait_for("third pass", lambda: [h for h in collector.health() if h["packets"] == 3 * truth["packets"]])
    print(f"packets after down/up and re-create: {health[-1]['packets']} = 3 x {truth['packets']}")
    assert agent.stop() == 0


def test_sighup_with_a_broken_ruleset_keeps_the_old_one(
    veth: Veth, collector: Collector, tmp_path: Path, start_agent: Callable[..., Agent]
) -> None:
    rules = tmp_path / "site.rules"
    rules.write_text(LAN_RULES.read_text())
    truth = replay_truth(LAN, [LAN_RULES])
    assert truth["sids"], "the fixture rules must fire on the fixture capture"
    agent = start_agent(agent_config(tmp_path, veth.cap, enrol(collector, tmp_path), rules=[rules]))
    veth.replay(LAN)
    # Fixture rule sids are 9100001..; LAN detections (always on in the agent) use their own range.
    rule_sids = "SELECT sid FROM alerts WHERE sid BETWEEN 9100000 AND 9199999 ORDER BY sid"
    wait_for("alerts", lambda: {r[0] for r in collector.query(rule_sids)} >= set(truth["sids"]))
    time.sleep(1.5)
    pass1 = [r[0] for r in collector.query(rule_sids)]
    print(f"rule alerts, first pass: {pass1} (replay: {truth['sids']})")
    assert pass1 == truth["sids"]
    first = wait_for("health", collector.health)[-1]
    # A broken edit: the file now holds one rule with a syntax error in place of the working ones.
    rules.write_text('alert http any any -> any any (msg:"broken"; content:"x"; sid:9100001; rev:2; nosuchkw;)\n')
    agent.proc.send_signal(signal.SIGHUP)
    rec = agent.wait_log("reload failed")
    print(f"reload refused: {rec['reload_error']}")
    assert "9100001" in rec["reload_error"]
    alarm = wait_for(
        "reload_error in health",
        lambda: [a for h in collector.health() for a in h.get("alarms", []) if a.startswith("reload_error")],
    )
    assert "9100001" in alarm[0]
    # The old rules still match: the same traffic gives the same alerts again.
    veth.replay(LAN)
    wait_for("second alerts", lambda: len(collector.query(rule_sids)) >= 2 * len(pass1))
    time.sleep(1.5)
    pass2 = [r[0] for r in collector.query(rule_sids)]
    print(f"rule alerts after the refused reload: {len(pass2)} = 2 x {len(pass1)}")
    assert pass2 == sorted(pass1 * 2)
    # A good edit is taken: rules version changes, and the alarm clears.
    rules.write_text(LAN_RULES.read_text().replace("sid:9100003", "sid:9100103"))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log('"msg": "reloaded"')
    later = wait_for(
        "new rules version",
        lambda: [h for h in collector.health() if h.get("rules_version") != first["rules_version"]],
    )
    assert not [a for a in later[-1].get("alarms", []) if a.startswith("reload_error")]
    assert agent.stop() == 0


def test_sigterm_during_load_loses_nothing(
    veth: Veth, collector: Collector, tmp_path: Path, start_agent: Callable[..., Agent]
) -> None:
    agent = start_agent(agent_config(tmp_path, veth.cap, enrol(collector, tmp_path)))
    sender = subprocess.Popen(
        ["ip", "netns", "exec", veth.ns, "tcpreplay", "-q", "--topspeed", "--loop", "200", "-i", veth.peer,
         str(SCHOOL)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Under load, and long enough for health events to have an interval between them to check: a
        # fast pipeline passes 20,000 packets before its first health event.
        wait_for(
            "load",
            lambda: (hs := collector.health()) and len(hs) >= 3 and any(h["packets"] > 20_000 for h in hs),
        )
        # The collector goes away too: what is in flight must end up in the spool.
        stop_collector(collector)
        time.sleep(0.5)
        started = time.monotonic()
        assert agent.stop() == 0
        took = time.monotonic() - started
    finally:
        sender.kill()
        sender.wait()
    print(f"SIGTERM under load: exited in {took:.1f} s")
    assert took < 30  # the unit's TimeoutStopSec
    stored = collector.events()
    spooled = spool_events(tmp_path / "spool")
    # The last health event (written at shutdown) counts everything submitted before it.
    healths = collector.health() + spooled_health(tmp_path / "spool")
    final = max(healths, key=lambda h: h["uptime"])
    flows = [e for e in agent.event_lines() if e["type"] == "flow"]
    print(
        f"events: {stored} acknowledged + {spooled} spooled = {stored + spooled}; "
        f"submitted {sum(final['events_by_type'].values()) + 1}; flows {len(flows)}; shed {final.get('shed')}"
    )
    assert not final.get("shed")
    assert final["events_by_type"]["flow"] == len(flows)
    assert stored + spooled == sum(final["events_by_type"].values()) + 1 - final.get("events_invalid", 0)
    # The loop stayed responsive under load: a health event every interval (1 s), none late by much
    # (the last one is written at shutdown, after the drain, and is left out).
    uptimes = sorted(h["uptime"] for h in healths)[:-1]
    gaps = [b - a for a, b in itertools.pairwise(uptimes)]
    drops = final.get("drops_kernel", 0) + final.get("drops_pipeline", 0)
    print(f"health events {len(uptimes)}, gaps {gaps}; packets {final['packets']}, dropped {drops}")
    assert len(uptimes) >= 2 and max(gaps) < 2.5


def test_notify_socket_sees_ready_and_watchdog(veth: Veth, tmp_path: Path, start_agent: Callable[..., Agent]) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    try:
        config = agent_config(tmp_path, veth.cap, "")
        agent = start_agent(config, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000")
        got: list[str] = []

        def receive() -> bool:
            with contextlib.suppress(TimeoutError):
                got.append(sock.recv(4096).decode())
            text = "\n".join(got)
            return "READY=1" in text and text.count("WATCHDOG=1") >= 2

        wait_for("READY=1 and two WATCHDOG=1", receive, timeout=10)
        agent.proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1", lambda: receive() and any("RELOADING=1" in g for g in got), timeout=10)
        assert agent.stop() == 0
        wait_for("STOPPING=1", lambda: receive() and any("STOPPING=1" in g for g in got), timeout=10)
        print(f"notifications: {[g.splitlines()[0] for g in got]}")
        assert any(re.search(r"STATUS=capturing on \S+: \d+ pkt/s, \d+ flows", g) for g in got)
    finally:
        sock.close()


RESPONDER = """
import socket, sys, time
from zeroconf import IPVersion, ServiceInfo, Zeroconf
zc = Zeroconf(interfaces=["192.0.2.2"], ip_version=IPVersion.V4Only)
info = ServiceInfo(
    "_ipp._tcp.local.", "Imprimante Salle 12._ipp._tcp.local.", addresses=[socket.inet_aton("192.0.2.2")],
    port=631, properties={"ty": "HP LaserJet Pro M404", "product": "(HP LaserJet Pro M404)"},
    server="imprimante-salle-12.local.",
)
zc.register_service(info)
print("registered", flush=True)
sys.stdin.read()
zc.unregister_service(info)
zc.close()
"""


@pytest.fixture
def two_netns() -> Iterator[Veth]:
    """A veth pair between two fresh namespaces: `cap` (192.0.2.1) in `ns + "a"`, `peer` (192.0.2.2) in `ns`.

    Addressed IP traffic between this test host's own namespace and a veth peer is not guaranteed
    (a host firewall may drop it); between two namespaces the test creates, it is.
    """
    _need_root()
    from pyroute2 import netns

    tag = f"{os.getpid() % 100000}{next(_counter)}"
    ns, cap, peer = f"vae{tag}", f"vac{tag}", f"vap{tag}"
    netns.create(ns)
    netns.create(ns + "a")
    try:
        _sh("ip", "link", "add", cap, "type", "veth", "peer", "name", peer, "netns", ns)
        _sh("ip", "link", "set", cap, "netns", ns + "a")
        for where, dev, addr in ((ns + "a", cap, "192.0.2.1/24"), (ns, peer, "192.0.2.2/24")):
            _sh("ip", "netns", "exec", where, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            _sh("ip", "netns", "exec", where, "ip", "addr", "add", addr, "dev", dev)
            _sh("ip", "netns", "exec", where, "ip", "link", "set", dev, "up")
            _sh("ip", "netns", "exec", where, "ip", "link", "set", "lo", "up")
        yield Veth(ns, cap, peer)
    finally:
        netns.remove(ns + "a")
        netns.remove(ns)


def test_active_mdns_browsing_feeds_the_inventory(two_netns: Veth, tmp_path: Path) -> None:
    veth = two_netns
    inside = ["ip", "netns", "exec", veth.ns + "a"]
    responder = subprocess.Popen(
        ["ip", "netns", "exec", veth.ns, sys.executable, "-c", RESPONDER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    collector: Collector | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "registered"
        # The service announced itself before the agent started: only asking finds it again.
        time.sleep(2)
        db = tmp_path / "collector.sqlite"
        serve = subprocess.Popen(
            [*inside, sys.executable, "-m", "collector", "serve", "--db", str(db), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(), cwd=tmp_path,
        )  # fmt: skip
        assert serve.stdout is not None
        match = re.search(r"(https?://\S+)", serve.stdout.readline())
        assert match
        collector = Collector(match.group(1).rstrip("/"), db, serve)
        config = agent_config(tmp_path, veth.cap, enrol(collector, tmp_path))
        peer_mac = subprocess.run(
            ["ip", "netns", "exec", veth.ns, "cat", f"/sys/class/net/{veth.peer}/address"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        log, events = tmp_path / "agent-mdns.log", tmp_path / "events-mdns.jsonl"
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                [*inside, sys.executable, "-m", "veille", "agent", "run", "--config", str(config),
                 "--events", str(events), "--mdns-browse", "5"],
                stdout=handle, stderr=handle, env=_env(),
            )  # fmt: skip
        agent = Agent(proc, log, events)
        agent.wait_log(r'"msg": "capturing"')
        active = wait_for(
            "an active mDNS answer attributed to the printer's MAC",
            lambda: [e for e in agent.event_lines() if e.get("active") and e.get("src_mac") == peer_mac],
            timeout=40,
        )
        print(f"active mDNS answers attributed to {peer_mac}: {len(active)}")
        assert active[0]["answers"][0] == {
            "name": "_ipp._tcp.local", "type": 12, "ttl": 4500, "data": "Imprimante Salle 12._ipp._tcp.local"
        }  # fmt: skip
        assert agent.stop() == 0
        names, device_type = collector.query("SELECT names, device_type FROM devices WHERE mac = ?", peer_mac)[0]
        print(f"collector device {peer_mac}: type {device_type}, names {names}")
        assert "imprimante-salle-12" in names
        assert device_type == "printer"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if collector is not None:
            stop_collector(collector)
        assert responder.stdin is not None
        responder.stdin.close()
        responder.wait(10)


def _syn(src_mac: str, src_ip: str) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    pkt = Ether(src=src_mac, dst="02:00:00:00:00:01") / IP(src=src_ip, dst="203.0.113.80", ttl=64)
    return bytes(pkt / TCP(sport=40000, dport=443, flags="S", window=64240, options=[("MSS", 1460)]))


def test_kernel_neighbour_table_binds_addresses_for_the_inventory(
    veth: Veth, tmp_path: Path, start_agent: Callable[..., Agent]
) -> None:
    from pyroute2 import netns

    from agent.daemon import neighbour_pairs

    # A permanent entry, as the gateway's kernel would hold for a LAN host it talks to.
    _sh("ip", "neigh", "add", "192.0.2.50", "lladdr", "02:00:00:00:00:50", "dev", veth.cap, "nud", "permanent")
    assert ("192.0.2.50", "02:00:00:00:00:50") in neighbour_pairs([veth.cap])
    assert neighbour_pairs(["lo"]) == []
    agent = start_agent(agent_config(tmp_path, veth.cap, ""))
    time.sleep(1.0)  # the first neighbour-table read happens at start
    sender = netns.create_socket(veth.ns, socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sender.bind((veth.peer, 0))
        # Documentation addresses are not private: a SYN from one is attributed to its MAC only when
        # something binds the address to that MAC. The neighbour table does for .50, nothing for .51.
        sender.send(_syn("02:00:00:00:00:50", "192.0.2.50"))
        sender.send(_syn("02:00:00:00:00:51", "192.0.2.51"))
    finally:
        sender.close()
    syns = wait_for(
        "both SYNs", lambda: len(s := [e for e in agent.event_lines() if e["type"] == "tcp_syn"]) == 2 and s
    )
    assert agent.stop() == 0
    devices = {e["mac"]: e for e in agent.event_lines() if e["type"] == "device"}
    print(f"tcp_syn observations {len(syns)}, devices {sorted(devices)}")
    assert len(syns) == 2
    assert devices["02:00:00:00:00:50"]["ips"] == ["192.0.2.50"]
    assert "02:00:00:00:00:51" not in devices


SANDBOXED = r"""
import ctypes, errno, sys
names = sys.stdin.read().split()
families = [int(f) for f in sys.argv[1].split(",")]
lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_uint), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
lib.seccomp_rule_add_array.argtypes = [
    ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)
]
ALLOW, EQ = 0x7FFF0000, 4
ctx = lib.seccomp_init(0x00050000 | errno.EPERM)  # SystemCallErrorNumber=EPERM
for name in names:
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        continue
    if name == "socket":  # RestrictAddressFamilies=
        for family in families:
            assert lib.seccomp_rule_add_array(ctx, ALLOW, nr, 1, ctypes.byref(ArgCmp(0, EQ, family, 0))) == 0
        continue
    assert lib.seccomp_rule_add(ctx, ALLOW, nr, 0) == 0, name
assert ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) == 0  # NoNewPrivileges=yes
assert lib.seccomp_load(ctx) == 0
from veille.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_agent_runs_unprivileged_under_the_units_sandbox(veth: Veth, collector: Collector) -> None:
    """As veille-agent.service runs it: an unprivileged user with CAP_NET_RAW and CAP_NET_ADMIN only, the
    unit's system call filter and address families, no new privileges."""
    import shutil
    import stat
    import tempfile

    from tests.systemd.test_sandbox import unit_allow_list, unit_families

    tool, setpriv = shutil.which("systemd-analyze"), shutil.which("setpriv")
    if tool is None or setpriv is None:
        pytest.skip("needs systemd-analyze and setpriv")
    if not Path("/lib/x86_64-linux-gnu/libseccomp.so.2").exists() and not shutil.which("scmp_sys_resolver"):
        pytest.skip("libseccomp is not installed")
    # pytest's own temp folders are root-only; the unprivileged agent gets a state folder of its own.
    state = Path(tempfile.mkdtemp(prefix="veille-sandbox-"))
    try:
        state.chmod(0o755)
        for sub in ("spool", "events"):
            (state / sub).mkdir()
            os.chown(state / sub, 65534, 65534)
        config = agent_config(
            state, veth.cap, enrol(collector, state).replace(str(state / "spool"), str(state / "spool"))
        )
        os.chown(config, 65534, 65534)
        config.chmod(stat.S_IRUSR)
        (state / "collector.toml").unlink()
        truth = replay_truth(SCHOOL)
        log = state / "agent.log"
        events = state / "events" / "events.jsonl"
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                 "--inh-caps=-all,+net_raw,+net_admin", "--ambient-caps=-all,+net_raw,+net_admin",
                 "--bounding-set=-all,+net_raw,+net_admin",
                 sys.executable, "-c", SANDBOXED, ",".join(map(str, unit_families())),
                 "agent", "run", "--config", str(config), "--events", str(events)],
                stdin=subprocess.PIPE, stdout=handle, stderr=handle, env=_env(), cwd=state,
            )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(" ".join(sorted(unit_allow_list(tool))).encode())
        proc.stdin.close()
        agent = Agent(proc, log, events)
        try:
            agent.wait_log(r'"msg": "capturing"')
            status = Path(f"/proc/{proc.pid}/status").read_text()
            caps = int(re.search(r"CapEff:\s*(\w+)", status).group(1), 16)  # type: ignore[union-attr]
            uid = int(re.search(r"Uid:\s*(\d+)", status).group(1))  # type: ignore[union-attr]
            veth.replay(SCHOOL)
            health = wait_for(
                "every packet", lambda: [h for h in collector.health() if h.get("packets") == truth["packets"]]
            )
            devices = wait_for(
                "devices", lambda: collector.devices("test") >= truth["macs"] and collector.devices("test")
            )
            assert agent.stop() == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        print(f"sandboxed agent: uid {uid}, CapEff {caps:#x}, {health[-1]['packets']} packets, {len(devices)} devices")
        assert uid == 65534 and caps == (1 << 13) | (1 << 12)  # CAP_NET_RAW | CAP_NET_ADMIN
        assert devices == truth["macs"]
        assert not [r for r in agent.log_lines() if r.get("level") == "error"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
