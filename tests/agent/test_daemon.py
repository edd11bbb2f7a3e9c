"""The daemon's parts without root: config checking, reload policy, health, the live pipeline, and a
whole in-process run whose frames come from a fixture capture instead of a packet socket (the
source is the edge collaborator; the collector is a real `python -m collector serve` process).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.config import load_config, parse_config
from agent.daemon import Daemon, Knowledge, LivePipeline, ReloadError, build_knowledge, neighbour_pairs
from agent.health import HealthInputs, HealthMonitor
from capture.flows import FlowConfig
from capture.frame import Frame
from capture.live import Block, CaptureStats, InterfaceStats
from capture.pcapfile import read_frames
from telemetry.schema import HealthEvent
from telemetry.shipper import ShipperStats
from tests.agent.test_live_e2e import (
    LAN,
    LAN_RULES,
    REPO,
    SCHOOL,
    Collector,
    enrol,
    replay_truth,
    spool_events,
    spooled_health,
    start_collector,
    stop_collector,
)

GOOD = """[agent]
id = "a1"
site = "s1"
[capture]
interfaces = ["eth1"]
"""


def _config(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _veille(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veille", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


# -- check-config ------------------------------------------------------------------------------------


def test_check_config_prints_every_problem_with_its_key(tmp_path: Path) -> None:
    bad = _config(
        tmp_path,
        """[agent]
site = "s1"
log_level = "loud"
[capture]
interfaces = ["eth1", "a/b"]
snaplen = 4
[capture.ring]
block_size = 1000
[health]
interval = -1.0
colour = "red"
""",
    )
    done = _veille("agent", "check-config", str(bad))
    print(done.stdout)
    assert done.returncode == 1
    for key in (
        "agent.id: missing",
        "agent.log_level:",
        "capture.interfaces[1]:",
        "capture.snaplen:",
        "capture.ring.block_size:",
        "health.interval:",
        "health.colour: unknown key",
    ):
        assert f"{bad}: {key}" in done.stdout, key
    assert "8 problems" in done.stdout  # frame_size 2048 > block_size 1000 as well
    as_json = json.loads(_veille("agent", "check-config", "--json", str(bad)).stdout)
    assert {p["key"] for p in as_json} >= {"agent.id", "health.interval", "capture.ring.block_size"}


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    good = _config(tmp_path, GOOD)
    done = _veille("agent", "check-config", str(good))
    assert (done.returncode, done.stdout.strip()) == (0, f"{good}: OK")


def test_run_refuses_a_bad_config_before_capturing(tmp_path: Path) -> None:
    bad = _config(tmp_path, GOOD.replace('id = "a1"', 'id = ""'))
    done = _veille("agent", "run", "--config", str(bad))
    assert done.returncode == 1
    assert "agent.id: missing" in done.stderr


def test_run_refuses_an_unknown_observation_kind(tmp_path: Path) -> None:
    done = _veille("agent", "run", "--config", str(_config(tmp_path, GOOD)), "--ship-observations", "dhcp,dhpc")
    assert done.returncode == 2 and "unknown kind 'dhpc'" in done.stderr


def test_example_config_is_valid_apart_from_its_secret() -> None:
    problems = [str(p) for p in parse_config(_toml(REPO / "etc" / "agent.example.toml"))[1]]
    assert all(p.startswith("collector.secret") for p in problems), problems


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())


# -- reload policy -----------------------------------------------------------------------------------


def _with_rules(tmp_path: Path, *files: Path) -> Any:
    listed = json.dumps([str(f) for f in files])
    text = GOOD + f'[rules]\nfiles = {listed}\nhome_net = ["192.0.2.0/24"]\n'
    return load_config(_config(tmp_path, text, "rules.toml"))


def test_knowledge_loads_rules_and_names_versions(tmp_path: Path) -> None:
    rules = tmp_path / "a.rules"
    rules.write_text(LAN_RULES.read_text())
    k = build_knowledge(_with_rules(tmp_path, rules))
    assert k.ruleset.loaded == 5 and k.engine is not None
    assert k.rules_version is not None and k.rules_version.startswith("rules:")
    rules.write_text(LAN_RULES.read_text() + "\n")
    assert build_knowledge(_with_rules(tmp_path, rules)).rules_version != k.rules_version
    assert k.engine.config.encryption_handling == "default"
    config = _with_rules(tmp_path, rules)
    full = dataclasses.replace(config, rules=dataclasses.replace(config.rules, encryption_handling="full"))
    assert build_knowledge(full).engine.config.encryption_handling == "full"


def test_reload_refuses_a_missing_file(tmp_path: Path) -> None:
    rules = tmp_path / "a.rules"
    rules.write_text(LAN_RULES.read_text())
    config = _with_rules(tmp_path, rules)
    rules.unlink()
    with pytest.raises(ReloadError, match=r"a\.rules"):
        build_knowledge(config)


def test_reload_refuses_a_file_where_nothing_parses(tmp_path: Path) -> None:
    rules = tmp_path / "a.rules"
    rules.write_text("alert tcp any any -> any any (msg:unterminated\nthis is not a rule\n")
    with pytest.raises(ReloadError, match="none of 2 rules loaded"):
        build_knowledge(_with_rules(tmp_path, rules))


def test_reload_refuses_to_lose_a_running_rule_but_skips_a_new_bad_one(tmp_path: Path) -> None:
    rules = tmp_path / "a.rules"
    rules.write_text(LAN_RULES.read_text())
    running = build_knowledge(_with_rules(tmp_path, rules))
    broken = LAN_RULES.read_text().replace("sid:9100002;", "sid:9100002; nosuchkw;")
    rules.write_text(broken)
    with pytest.raises(ReloadError, match="9100002"):
        build_knowledge(_with_rules(tmp_path, rules), running)
    new_bad = 'alert tcp any any -> any any (msg:"new"; nosuchkw; sid:9100050;)\n'
    rules.write_text(LAN_RULES.read_text() + new_bad)
    k = build_knowledge(_with_rules(tmp_path, rules), running)
    assert k.ruleset.loaded == 5 and len(k.skipped) == 1 and "9100050" in k.skipped[0]


def test_unchanged_detections_keep_their_learnt_state(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, GOOD))
    first = build_knowledge(config)
    assert build_knowledge(config, first).lan is first.lan
    changed = load_config(_config(tmp_path, GOOD + "[detections]\nscan_port_threshold = 99\n", "b.toml"))
    assert build_knowledge(changed, first).lan is not first.lan


# -- health ------------------------------------------------------------------------------------------


def test_health_event_fits_the_wire_schema_and_reports_reload_errors() -> None:
    monitor = HealthMonitor()
    spent = time.process_time() + 0.05
    while time.process_time() < spent:  # some CPU to measure (the kernel counts it in 10 ms ticks)
        sum(i * i for i in range(10_000))
    monitor.reload_error = "rules: none of 1 rules loaded"
    stats = ShipperStats(batches_sent=3, batches_acked=2, spool_bytes=100, shed={"flow": 4}, alarms=("spool slow",))
    inputs = HealthInputs(
        packets=10, drops_kernel=1, drops_pipeline=2, flows_live=3, devices=4, events_by_type={"flow": 7},
        events_invalid=2, shipper=stats,
    )  # fmt: skip
    event = monitor.event(inputs)
    checked = msgspec.convert(msgspec.to_builtins(event), HealthEvent)
    print(f"health: cpu {checked.cpu}, rss {checked.rss}")
    assert (checked.packets, checked.drops_kernel, checked.drops_pipeline) == (10, 1, 2)
    assert (checked.batches_sent, checked.shed, checked.events_by_type) == (3, {"flow": 4}, {"flow": 7})
    assert checked.events_invalid == 2
    assert checked.alarms == ["spool slow", "reload_error: rules: none of 1 rules loaded"]
    assert checked.rss > 1_000_000 and 0.0 < checked.cpu <= 100.0 * (os.cpu_count() or 1)
    monitor.reload_error = None
    assert monitor.event(inputs).alarms == ["spool slow"]


# -- the live pipeline -------------------------------------------------------------------------------


def test_wall_clock_tick_ends_idle_flows_and_devices_are_emitted_once_per_change() -> None:
    p = LivePipeline(FlowConfig(), build_knowledge(parse_config(_toml_text(GOOD))[0]))
    frames = list(read_frames(str(SCHOOL)))
    for f in frames[:200]:  # a busy moment of the morning: flows are open
        p.feed(f)
    live_before = len(p.flows)
    p.take()
    p.tick(frames[199].ts_ns / 1e9 + 3600)  # then an hour of silence on the link
    for f in frames[200:]:
        p.feed(Frame(f.ts_ns + 3600 * 10**9, f.linktype, f.data))
    events = p.take()
    ended = [e for e in events if e["type"] == "flow" and e["ts_end"] <= frames[199].ts_ns / 1e9]
    assert live_before > 0 and len(ended) == live_before
    assert {e["end_reason"] for e in ended} <= {"idle", "fin", "rst"}
    p.device_events()
    first = [e for e in p.take() if e["type"] == "device"]
    p.device_events()  # nothing changed since
    assert len(first) == len(replay_truth(SCHOOL)["macs"]) and p.take() == []
    print(f"tick ended {len(ended)} idle flows; {len(first)} devices emitted once")


def test_neighbour_bindings_reach_the_inventory() -> None:
    p = LivePipeline(FlowConfig(), Knowledge())
    p.bind_neighbours([("192.0.2.77", "02:00:00:00:00:77")], 1000.0)
    assert p._inventory.mac_for("192.0.2.77", 1001.0) == "02:00:00:00:00:77"


def test_neighbour_pairs_reads_only_captured_interfaces() -> None:
    assert neighbour_pairs(["no-such-if0"]) == []


def test_installed_rules_take_effect_between_two_packets(tmp_path: Path) -> None:
    rules = tmp_path / "a.rules"
    rules.write_text(LAN_RULES.read_text())
    with_rules = build_knowledge(_with_rules(tmp_path, rules))
    p = LivePipeline(FlowConfig(), with_rules)
    frames = list(read_frames(str(LAN)))
    for f in frames:
        p.feed(f)
    p.flush()
    first = sorted(e["sid"] for e in p.take() if e["type"] == "alert" and 9100000 <= e["sid"] < 9200000)
    p.install(Knowledge())
    shift = 10**12  # later than anything of the first pass
    for f in frames:
        p.feed(Frame(f.ts_ns + shift, f.linktype, f.data))
    p.flush()
    second = [e for e in p.take() if e["type"] == "alert" and 9100000 <= e["sid"] < 9200000]
    assert first == replay_truth(LAN, [LAN_RULES])["sids"] and second == []


def _toml_text(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


# -- a whole run in process --------------------------------------------------------------------------


class PcapSource:
    """Frames of a capture file served in blocks, stamped with the time they are read (as the kernel does)."""

    def __init__(self, path: Path, block: int = 64) -> None:
        self.frames = list(read_frames(str(path)))
        self.block = block
        self.pos = 0
        self.closed = False
        self.filters: list[str] = []

    def read_tagged_block(self, timeout: float | None = None) -> Block | None:
        if self.pos >= len(self.frames) or (self.closed and timeout == 0):
            if timeout:
                time.sleep(min(timeout, 0.05))
            return None
        chunk = self.frames[self.pos : self.pos + self.block]
        self.pos += len(chunk)
        now = time.time_ns()
        return Block("pcap", [Frame(now, f.linktype, f.data) for f in chunk])

    def update_filter(self, expression: str) -> None:
        self.filters.append(expression)

    def stats(self) -> CaptureStats:
        return CaptureStats((InterfaceStats("pcap", mode="pcap", frames=self.pos, up=True),))

    def close(self) -> None:
        self.closed = True

    @property
    def done(self) -> bool:
        return self.pos >= len(self.frames)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path)
    try:
        yield c
    finally:
        stop_collector(c)


async def _until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_daemon_in_process_ships_reloads_and_stops_cleanly(collector: Collector, tmp_path: Path) -> None:
    rules = tmp_path / "site.rules"
    rules.write_text(LAN_RULES.read_text())
    table = await asyncio.to_thread(enrol, collector, tmp_path, "a1", "s1")
    path = _config(
        tmp_path,
        GOOD + f'[rules]\nfiles = ["{rules}"]\n[health]\ninterval = 0.5\n' + table,
    )
    config = load_config(path)
    source = PcapSource(SCHOOL)
    daemon = Daemon(config, source_factory=lambda ifaces, cfg: source)
    assert ifaces_seen(config) == ["eth1"]
    run = asyncio.create_task(daemon.run())
    await _until(
        "every frame fed", lambda: daemon.pipeline is not None and daemon.pipeline.packets == len(source.frames)
    )
    rules.write_text("garbage\n")
    assert await daemon.reload() is False
    assert daemon.health.reload_error is not None and "none of 1 rules" in daemon.health.reload_error
    assert daemon.knowledge.ruleset.loaded == 5  # the running rules stayed
    rules.write_text(LAN_RULES.read_text())
    assert await daemon.reload() is True and daemon.health.reload_error is None
    # Pipeline timeouts apply live; a new interface list waits for a restart.
    text = path.read_text().replace('["eth1"]', '["eth2"]\nbpf = "not tcp port 22"')
    path.write_text(text + "[pipeline]\nudp_timeout = 7.0\n")
    assert await daemon.reload() is True
    assert source.filters == ["not tcp port 22"]  # swapped on the open sockets, capture not reopened
    assert daemon.pipeline is not None and daemon.pipeline.flows.config.udp_timeout == 7.0
    assert 7.0 in daemon.pipeline.flows._timeouts
    assert daemon.config.capture.interfaces == ["eth1"] and daemon.config.pipeline.udp_timeout == 7.0
    daemon.stop()
    assert await asyncio.wait_for(run, 30) == 0
    assert source.closed
    stored = await asyncio.to_thread(collector.events)
    spooled = spool_events(tmp_path / "spool")
    final = max(
        await asyncio.to_thread(collector.health) + spooled_health(tmp_path / "spool"), key=lambda h: h["uptime"]
    )
    submitted = sum(final["events_by_type"].values()) + 1 - final.get("events_invalid", 0)
    print(
        f"in-process run: {stored} acknowledged + {spooled} spooled, {submitted} submitted; {final['packets']} packets"
    )
    assert stored + spooled == submitted
    assert final["packets"] == len(source.frames) and final["privacy_profile"] == "full"
    devices = await asyncio.to_thread(collector.devices, "s1")
    assert devices == replay_truth(SCHOOL)["macs"]


def ifaces_seen(config: Any) -> list[str]:
    return list(config.capture.interfaces)


class DyingSource(PcapSource):
    """A capture whose thread fails after a few blocks (as `LiveSource.read_tagged_block` reports it)."""

    def read_tagged_block(self, timeout: float | None = None) -> Block | None:
        if self.pos >= 4 * self.block:
            from capture.live import LiveCaptureError

            raise LiveCaptureError("eth1", "capture thread failed: OSError(100, 'Network is down')")
        return super().read_tagged_block(timeout)


async def test_a_dead_capture_stops_the_daemon_with_status_1(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, GOOD))
    source = DyingSource(SCHOOL)
    daemon = Daemon(config, source_factory=lambda ifaces, cfg: source)
    status = await asyncio.wait_for(daemon.run(), 30)
    assert status == 1 and source.closed
    assert daemon.worker is not None and "Network is down" in repr(daemon.worker.failure)
    assert daemon.pipeline is not None and daemon.pipeline.packets == 4 * source.block
    # The flows open when capture died were still ended and counted, not dropped with the thread.
    assert daemon.events_by_type["flow"] > 0 and len(daemon.pipeline.flows) == 0


async def test_a_site_can_ship_chosen_observation_kinds(collector: Collector, tmp_path: Path) -> None:
    table = await asyncio.to_thread(enrol, collector, tmp_path, "a1", "s1")
    config = load_config(_config(tmp_path, GOOD + table))
    source = PcapSource(SCHOOL)
    daemon = Daemon(config, source_factory=lambda ifaces, cfg: source, ship_observations=["dhcp"])
    run = asyncio.create_task(daemon.run())
    await _until(
        "every frame fed", lambda: daemon.pipeline is not None and daemon.pipeline.packets == len(source.frames)
    )
    daemon.stop()
    assert await asyncio.wait_for(run, 30) == 0
    kinds = dict(await asyncio.to_thread(collector.query, "SELECT kind, COUNT(*) FROM observations GROUP BY kind"))
    from agent.pipeline import replay_events

    dhcp = sum(1 for e in replay_events([str(SCHOOL)]) if e["type"] == "dhcp")
    print(f"observations shipped: {kinds} (dhcp in the replay: {dhcp})")
    assert kinds == {"dhcp": dhcp} and daemon.events_by_type["dhcp"] == dhcp


async def test_pseudonymise_profile_applies_before_shipping(collector: Collector, tmp_path: Path) -> None:
    from agent.reveal import PseudonymMap, new_key, read_key, verify

    key = tmp_path / "pseudonym.key"
    new_key(key)
    table = await asyncio.to_thread(enrol, collector, tmp_path, "a1", "s1")
    privacy = f'[privacy]\nprofile = "pseudonymised"\nkey_file = "{key}"\n'
    config = load_config(_config(tmp_path, GOOD + privacy + table))
    source = PcapSource(SCHOOL)
    daemon = Daemon(config, source_factory=lambda ifaces, cfg: source)
    assert daemon.config.privacy.profile == "pseudonymised"
    run = asyncio.create_task(daemon.run())
    await _until(
        "every frame fed", lambda: daemon.pipeline is not None and daemon.pipeline.packets == len(source.frames)
    )
    daemon.stop()
    assert await asyncio.wait_for(run, 30) == 0
    stored = await asyncio.to_thread(collector.devices, "s1")
    macs = replay_truth(SCHOOL)["macs"]
    print(f"devices at the collector: {len(stored)}, all pseudonyms: {all(m.startswith('pm:') for m in stored)}")
    assert len(stored) == len(macs) and all(m.startswith("pm:") for m in stored) and not stored & macs
    # The site can map every stored pseudonym back with its key (agent/reveal.py's map, written by the daemon).
    records = {r.pseudonym: r for r in PseudonymMap(daemon.privacy.map.path).read()}
    master = read_key(key)
    assert stored <= set(records) and all(verify(master, records[m]) for m in stored)
    assert {records[m].value for m in stored} == macs
    healths = await asyncio.to_thread(collector.health)
    assert healths and {h.get("privacy_profile") for h in healths} == {"pseudonymised"}


async def test_an_unwritable_spool_is_a_clear_start_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool folder should be\n")
    table = '[collector]\nurl = "http://127.0.0.1:9"\nagent_id = "a1"\nsite = "s1"\nsecret = "x"\n'
    config = load_config(_config(tmp_path, GOOD + table + f'spool_dir = "{blocker}/spool"\n'))
    source = PcapSource(SCHOOL)
    status = await Daemon(config, source_factory=lambda ifaces, cfg: source).run()
    assert status == 1 and source.pos == 0
    assert any("cannot start the shipper" in r.getMessage() and "not-a-dir" in r.getMessage() for r in caplog.records)


class StuckSource(PcapSource):
    """A capture whose reads hang once `stuck` is set (a wedged stage), until `release` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import threading

        self.stuck = threading.Event()
        self.release = threading.Event()

    def read_tagged_block(self, timeout: float | None = None) -> Block | None:
        if self.stuck.is_set():
            self.release.wait()
        return super().read_tagged_block(timeout)


async def test_watchdog_pings_at_half_the_interval_and_stop_when_the_pipeline_is_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import agent.worker as worker_mod
    from agent.sdnotify import Notifier

    monkeypatch.setattr(worker_mod, "STALL_TICKS", 1)  # stuck after one tick (1 s) instead of ten
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)

    def drain() -> list[str]:
        out = []
        while True:
            try:
                out.append(sock.recv(4096).decode())
            except BlockingIOError:
                return out

    notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
    source = StuckSource(SCHOOL)
    daemon = Daemon(load_config(_config(tmp_path, GOOD)), notifier=notifier, source_factory=lambda i, c: source)
    run = asyncio.create_task(daemon.run())
    try:
        await asyncio.sleep(1.0)
        healthy = [m for m in drain() if m == "WATCHDOG=1"]
        source.stuck.set()
        await asyncio.sleep(1.5)
        drain()
        await asyncio.sleep(1.0)
        stalled = [m for m in drain() if m == "WATCHDOG=1"]
        source.release.set()
        await asyncio.sleep(0.5)
        drain()
        await asyncio.sleep(0.6)
        again = [m for m in drain() if m == "WATCHDOG=1"]
        print(f"WATCHDOG=1 per second: healthy {len(healthy)}, stuck {len(stalled)}, recovered {len(again) / 0.6:.0f}")
        assert len(healthy) >= 4 and stalled == [] and len(again) >= 2
    finally:
        source.release.set()
        daemon.stop()
        assert await asyncio.wait_for(run, 30) == 0
        sock.close()


def test_reveal_and_pseudonym_are_reachable_through_veille_agent(tmp_path: Path) -> None:
    from agent.privacy import MAC, pseudonym
    from agent.reveal import new_key, read_key

    key = tmp_path / "k"
    new_key(key)
    at = 1_700_000_000.0
    done = _veille("agent", "pseudonym", "02:00:00:00:00:01", "--class", "mac", "--key-file", str(key), "--at", str(at))
    assert done.returncode == 0, done.stderr
    period = int(at // (30 * 86400))
    assert pseudonym(read_key(key), period, MAC, "02:00:00:00:00:01") in done.stdout
    assert _veille("agent", "reveal", "--help").returncode == 0


async def test_reload_switches_the_privacy_profile_or_keeps_the_old_one(tmp_path: Path) -> None:
    from agent.reveal import new_key

    path = _config(tmp_path, GOOD)
    source = PcapSource(SCHOOL)
    daemon = Daemon(load_config(path), source_factory=lambda ifaces, cfg: source)
    run = asyncio.create_task(daemon.run())
    try:
        await _until("running", lambda: daemon.worker is not None)
        assert daemon.privacy is None  # standard: events leave as seen
        key = tmp_path / "k"
        path.write_text(GOOD + f'[privacy]\nprofile = "pseudonymised"\nkey_file = "{key}"\n')
        assert await daemon.reload() is False  # the key file does not exist yet
        assert "privacy.key_file" in (daemon.health.reload_error or "") and daemon.privacy is None
        new_key(key)
        assert await daemon.reload() is True
        assert daemon.privacy is not None and daemon.privacy.filter.config.profile == "pseudonymised"
        event = daemon.privacy.filter.apply({"type": "flow", "ts_start": 1.0, "src_mac": "02:00:00:00:00:01"})
        assert event["src_mac"].startswith("pm:")
    finally:
        daemon.stop()
        assert await asyncio.wait_for(run, 30) == 0
