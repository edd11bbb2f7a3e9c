"""The faults, one function per kind: `kind(soak, record, target) -> agents whose recovery to wait for`.

Each injects its fault for real (signals, a tmpfs filled to ENOSPC, PostgreSQL backends terminated,
spool bytes damaged, hostile requests and packets), holds it for a few seconds and undoes it. What the
accounting needs later (spool contents at a kill, the ledger before a collector dies, files damaged on
purpose) is recorded on the agent or the soak as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psutil

from bench.soak import ledger, traffic

if TYPE_CHECKING:
    from bench.soak.run import Agent, FaultRecord, Soak

# Seconds a fault is held: longer than the shipper's backoff_max (2 s in the soak config), so the
# agents retry against the fault at least twice.
HOLD: Final = 5.0
# How far a rogue client's clock is off: twice the collector's max_skew, on both sides.
SKEW_FACTOR: Final = 2.0
PG_PORT: Final = 5432
# Debian's faketime package: an agent process with a skewed clock, not a patched one.
FAKETIME: Final = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _hold(seconds: float = HOLD) -> None:
    time.sleep(seconds)


def collector_kill(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """SIGKILL a collector, keep it down, restart it on the same port and database."""
    c = soak.collector_named(target)
    agents = soak.agents_of(c)
    for a in agents:
        soak.ledger_before_kill.append((a.name, set(c.store.batches(a.name))))
    c.proc.kill()
    _hold()
    record.detail["restart_s"] = round(soak.start_collector(c), 2)
    return agents


def agent_kill(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """SIGKILL an agent, snapshot its spool (what it had acknowledged), restart it."""
    a = soak.agent_named(target)
    killed = a.proc.kill()
    a.kills.append(killed)
    files, problems = ledger.read_spool(a.spool)
    a.spool_snapshots += files
    record.detail.update(spool_files=len(files), spool_problems=problems)
    _hold(2.0)
    soak.start_agent(a)
    a.down.append((killed, time.time()))
    record.detail["down_s"] = round(time.time() - killed, 2)
    return [a]


def uplink_blackhole(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """Swallow everything an agent sends to its collector for a while."""
    a = soak.agent_named(target)
    a.uplink.blackhole(True)
    _hold(HOLD * 2)
    files, _ = ledger.read_spool(a.spool)
    record.detail["spooled_files"] = len(files)
    a.uplink.blackhole(False)
    return [a]


def spool_disk_full(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """Blackhole the uplink and fill the tmpfs under the spool until the kernel says ENOSPC."""
    a = soak.agent_named(target)
    filler = a.spool.parent / "filler"
    a.uplink.blackhole(True)
    written = 0
    try:
        with filler.open("wb") as f:
            chunk = b"\0" * 65536
            while True:
                try:
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    record.detail["filler_bytes"] = written
    _hold(HOLD * 1.5)
    record.detail["agent_alive_while_full"] = a.proc.alive()
    filler.unlink()
    a.uplink.blackhole(False)
    record.ok = bool(record.detail["agent_alive_while_full"])
    return [a]


def postgres_terminate(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """pg_terminate_backend() on exactly the collector's own connections (by client port)."""
    c = soak.collector_named(target)
    if not c.store.postgres:
        record.detail["skipped"] = "this collector is not on PostgreSQL"
        return soak.agents_of(c)
    assert c.proc.proc is not None
    ports: list[int] = []
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(c.proc.proc.pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == PG_PORT:
                ports.append(conn.laddr.port)
    record.detail["connections"] = len(ports)
    if ports:
        from bench.soak.run import PG_URL

        rows = ledger.Store(PG_URL).query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(?::int[]) "
            "AND client_addr = '127.0.0.1'",
            ports,
        )
        record.detail["terminated"] = sum(1 for r in rows if r[0])
    _hold(1.0)
    return soak.agents_of(c)


def clock_skew(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """A client whose clock is past the collector's max_skew, both ways: refused with clock_skew."""
    from bench.soak.run import MAX_SKEW

    c = soak.collector_named(target)
    answers = {}
    for sign in (1, -1):
        skew = sign * SKEW_FACTOR * MAX_SKEW
        answers[f"{skew:+.0f}s"] = asyncio.run(
            ledger.skewed_request(c.url, f"soak-rogue-{c.name}", c.rogue_secret, f"rogue-{c.name}", skew)
        )
    record.detail["answers"] = {k: f"{s} {r}" for k, (s, r) in answers.items()}
    record.ok = all(s == 401 and r == "clock_skew" for s, r in answers.values())
    agents = soak.agents_of(c)
    if not FAKETIME.is_file():
        record.detail["agent"] = f"skipped: {FAKETIME} absent (Debian package faketime)"
    elif agents:
        _skewed_agent(soak, record, agents[0], SKEW_FACTOR * MAX_SKEW)
    return agents


def _skewed_agent(soak: Soak, record: FaultRecord, a: Agent, skew: float) -> None:
    """Restart `a` with its clock `skew` s ahead (libfaketime): every batch is refused and stays spooled;
    back on the true clock, the spool is delivered."""
    a.proc.terminate()
    stopped = time.time()
    soak.start_agent(a, {"LD_PRELOAD": str(FAKETIME), "FAKETIME": f"{skew:+.0f}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    a.down.append((stopped, time.time()))
    time.sleep(1.0)  # batches of the previous incarnation still in flight are stored, by design
    skewed_from = time.time()
    _hold(HOLD * 1.5)
    stored = [seq for seq, (_, received) in a.collector.store.batches(a.name).items() if received > skewed_from]
    a.proc.terminate()
    files, _ = ledger.read_spool(a.spool)
    stopped = time.time()
    soak.start_agent(a)
    a.down.append((stopped, time.time()))
    record.detail["agent"] = f"{a.name} at {skew:+.0f} s: {len(stored)} batches stored, {len(files)} spooled"
    record.ok = record.ok and not stored and bool(files)


def spool_corrupt(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """Blackhole until the agent spools, SIGKILL it, damage one spool file, restart, restore."""
    a = soak.agent_named(target)
    a.uplink.blackhole(True)
    deadline = time.monotonic() + 4 * HOLD
    files: list[ledger.SpoolFile] = []
    while time.monotonic() < deadline and len(files) < 2:
        time.sleep(0.5)
        files, _ = ledger.read_spool(a.spool)
    killed = a.proc.kill()
    a.kills.append(killed)
    files, _ = ledger.read_spool(a.spool)
    rng = random.Random(soak.p.seed * 31 + len(soak.faults))
    if files:
        victim = rng.choice(files)
        record.detail["damage"] = ledger.corrupt_file(victim.path, rng)
        record.detail["file"] = victim.path.name
        a.corrupted.append(victim)
        a.spool_snapshots += [f for f in files if f is not victim]
    else:
        record.detail["damage"] = "no spool file appeared"
        record.ok = False
    soak.start_agent(a)
    a.down.append((killed, time.time()))
    a.uplink.blackhole(False)
    return [a]


def malformed_flood(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """Signed but malformed batches from an enrolled rogue client: every answer must be a 4xx."""
    c = soak.collector_named(target)
    result = asyncio.run(
        ledger.rogue_flood(c.url, f"soak-rogue-{c.name}", c.rogue_secret, f"rogue-{c.name}", soak.p.flood, soak.p.seed)
    )
    record.detail.update(
        sent=result.sent,
        statuses={str(k): v for k, v in sorted(result.statuses.items())},
        reasons=dict(result.reasons.most_common(8)),
    )
    record.ok = result.server_errors == 0 and c.proc.alive()
    return soak.agents_of(c)


def hostile_burst(soak: Soak, record: FaultRecord, target: str) -> list[Agent]:
    """pcaps/malformed.pcap looped onto the capture interface at full speed: the agent stays up."""
    from bench.soak.run import MALFORMED

    a = soak.agent_named(target)
    loops = 20
    a.veth.send(Path(MALFORMED), pps=5000, loop=loops)
    truth = traffic.truth_of(Path(MALFORMED), soak.rules)
    for kind, n in truth.counts.items():
        # Looped copies of a flow share its 5-tuple and merge live: flows count once per burst.
        a.hostile_generated[kind] += n if kind == "flow" else n * loops
    record.detail["packets"] = loops * 28
    _hold(1.0)
    record.ok = a.proc.alive()
    return [a]
