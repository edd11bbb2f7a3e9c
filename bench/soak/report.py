"""Accounting and the verdict: events generated, captured, stored, duplicated, shed and lost per kind.

Per agent and kind, `captured` is what the agent's pipeline produced (its `--events` file, every
incarnation); `stored` is what its collector holds. Alerts and observations are matched one by one
(ts, addresses, ports); flow summaries by count (the collector keeps hourly roll-ups: each flow of the
soak traffic has the site gateway as one end, so the gateway's roll-up counts every flow once).
A captured event missing from the store is explained, in this order, by: a SIGKILL of its agent within
`KILL_WINDOW` s after it (unacknowledged by design), a spool file the soak damaged on purpose, or the
shed counters the agent itself reported in its health events. Anything left is `unexplained` and fails
the run, as does a duplicate, a stored event never captured, an acknowledged batch (a spool file at a
kill, or a stored batch before a collector died) missing from the store, a process that died outside
the schedule, or a fault without recovery.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from bench.soak import traffic
from bench.soak.ledger import read_spool

if TYPE_CHECKING:
    from bench.soak.run import Agent, Soak

KINDS: Final = ("flow", "alert", *traffic.SHIPPED_OBS)
# A health event's start (ts - uptime) is within this many seconds of its process start: the agent
# imports, loads rules and opens capture in between.
HEALTH_MATCH: Final = 15.0


def _produced(a: Agent) -> tuple[Counter[str], dict[str, Counter[tuple[Any, ...]]], list[float], set[str]]:
    counts: Counter[str] = Counter()
    ids: dict[str, Counter[tuple[Any, ...]]] = {k: Counter() for k in KINDS}
    flow_ends: list[float] = []
    macs: set[str] = set()
    if not a.events.exists():
        return counts, ids, flow_ends, macs
    for line in a.events.read_text(errors="replace").splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = e.get("type")
        if kind == "flow":
            counts["flow"] += 1
            flow_ends.append(float(e["ts_end"]))
        elif kind == "alert":
            counts["alert"] += 1
            ids["alert"][(round(float(e["ts"]), 6), e["sid"], e["src"], e["sport"], e["dst"], e["dport"])] += 1
        elif kind in traffic.SHIPPED_OBS:
            counts[kind] += 1
            ids[kind][(kind, round(float(e["ts"]), 6), e.get("src"), e.get("dst"))] += 1
        elif kind == "device":
            counts["device"] += 1
            macs.add(e["mac"])
    return counts, ids, flow_ends, macs


def _incarnations(health: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    last_uptime = -1.0
    for h in health:
        uptime = float(h.get("uptime", 0.0))
        if not out or uptime < last_uptime:
            out.append([])
        out[-1].append(h)
        last_uptime = uptime
    return out


def _process_runs(a: Agent) -> list[tuple[float, dict[str, Any] | None]]:
    """Each incarnation of the agent process: its start time and its "stopped" log line, if any."""
    runs: list[tuple[float, dict[str, Any] | None]] = []
    for r in a.proc.log_records():
        raw = r.get("raw")
        if isinstance(raw, str) and raw.startswith("--- start "):
            runs.append((float(raw.split()[2]), None))
        elif r.get("msg") == "stopped" and runs:
            runs[-1] = (runs[-1][0], r)
    return runs


def _health_totals(a: Agent, health: list[dict[str, Any]]) -> dict[str, Any]:
    shed: Counter[str] = Counter()
    corrupt = drops_k = drops_p = packets = invalid = 0
    alarms: set[str] = set()
    reasons: Counter[str] = Counter()
    health_runs = _incarnations(health)
    for inc in health_runs:
        last = inc[-1]
        drops_k += int(last.get("drops_kernel", 0))
        drops_p += int(last.get("drops_pipeline", 0))
        packets += int(last.get("packets", 0))
        invalid += int(last.get("events_invalid", 0))
        for h in inc:
            for x in h.get("alarms") or ():
                if str(x) not in alarms:
                    alarms.add(str(x))
                    reasons[re.sub(r"\d+", "N", str(x))] += 1
            corrupt = max(corrupt, int(h.get("corrupt", 0)))
    # Shed totals per process run: a stopped run's last log line has them all (including what its
    # SIGTERM flush shed after its last health event); a killed run's last stored health event, found
    # by its start time (ts - uptime; killed runs never run under a faked clock).
    runs: list[dict[str, Any]] = []
    for started, stopped in _process_runs(a):
        gaps = [
            (abs(float(i[0].get("ts", 0)) - float(i[0].get("uptime", 0)) - started), n)
            for n, i in enumerate(health_runs)
        ]
        gap, best = min(gaps, default=(HEALTH_MATCH, -1))
        matched = health_runs[best] if gap < HEALTH_MATCH else []
        final: dict[str, Any] = {}
        if stopped is not None:
            final = stopped.get("shed") or {}
        elif matched:
            final = matched[-1].get("shed") or {}
        for k, n in final.items():
            shed[k] += int(n)
        run_alarms = {str(x) for h in matched for x in h.get("alarms") or ()}
        reason = ""
        if final:
            reason = (
                "spool write failed: ENOSPC"
                if any("No space left" in x for x in run_alarms)
                else "spool over spool_max_bytes (shed by kind)"
            )
        runs.append(
            {
                "started": round(started, 1),
                "ended": "SIGTERM" if stopped is not None else "killed or running",
                "shed": final,
                "shed_reason": reason,
            }
        )
    return {
        "shed": dict(shed),
        "alarms": sorted(alarms),
        "shed_reasons": dict(reasons),
        "runs": runs,
        "drops_kernel": drops_k,
        "drops_pipeline": drops_p,
        "packets": packets,
        "events_invalid": invalid,
        "health_events": len(health),
    }


def _in_window(ts: float, kills: list[float], window: float) -> bool:
    return any(k - window <= ts <= k for k in kills)


def _account(soak: Soak, a: Agent) -> tuple[dict[str, Any], list[str]]:
    from bench.soak.run import KILL_WINDOW

    fails: list[str] = []
    store = a.collector.store
    counts, ids, flow_ends, macs = _produced(a)
    health = store.health(a.name)
    totals = _health_totals(a, health)
    shed: Counter[str] = Counter(totals["shed"])
    shed_obs = shed.pop("obs", 0)
    corrupt_kinds: Counter[str] = Counter()
    corrupt_ids: set[tuple[Any, ...]] = set()
    for f in a.corrupted:
        corrupt_kinds.update(f.kinds)
        corrupt_ids.update(f.alerts, f.observations)
    truth = soak.truth.get(a.name, {"counts": {}, "devices": []})
    captured_rounds = sum(1 for _, _, up in a.rounds if up)
    stored_ids = {"alert": store.alerts(a.name), **{k: Counter[tuple[Any, ...]]() for k in traffic.SHIPPED_OBS}}
    for key, n in store.observations(a.name).items():
        if key[0] in stored_ids:
            stored_ids[key[0]][key] = n
    kinds: dict[str, Any] = {}
    obs_budget = shed_obs
    for kind in KINDS:
        generated = int(truth["counts"].get(kind, 0)) * len(a.rounds) + a.hostile_generated[kind]
        row: dict[str, Any] = {
            "generated": generated,
            "generated_while_agent_down": int(truth["counts"].get(kind, 0)) * (len(a.rounds) - captured_rounds),
            "captured": counts[kind],
        }
        if kind == "flow":
            stored = store.flows(a.site, traffic.gateway_mac(a.index))
            window = sum(1 for t in flow_ends if _in_window(t, a.kills, KILL_WINDOW + 2.0))
            missing = max(0, counts[kind] - stored)
            row.update(stored=stored, duplicates=max(0, stored - counts[kind]), not_captured_stored=0)
            lost_window, damaged = min(missing, window), 0
        else:
            produced, got = ids[kind], stored_ids[kind]
            dup = sum(n - 1 for n in got.values() if n > 1)
            extra = sum((Counter(got.keys()) - Counter(produced.keys())).values())
            missing_ids = Counter(produced.keys()) - Counter(got.keys())
            missing = sum(missing_ids.values())
            damaged = sum(1 for key in missing_ids if key in corrupt_ids)
            lost_window = sum(
                1
                for key in missing_ids
                if key not in corrupt_ids and _in_window(float(key[0 if kind == "alert" else 1]), a.kills, KILL_WINDOW)
            )
            row.update(stored=sum(got.values()), duplicates=dup, not_captured_stored=extra)
            if extra:
                fails.append(f"{a.name}: {extra} stored {kind} events were never captured")
        # Flows are matched by count: damaged files first, then the agent's shed counters, then kills.
        rest = missing
        corrupt = min(rest, corrupt_kinds[kind]) if kind == "flow" else damaged
        rest -= corrupt
        if kind != "flow":
            lost_window = min(rest, lost_window)
            rest -= lost_window
        if kind in traffic.SHIPPED_OBS:
            shed_here = min(rest, obs_budget)
            obs_budget -= shed_here
        else:
            shed_here = min(rest, shed[kind])
        rest -= shed_here
        if kind == "flow":
            lost_window = min(rest, lost_window)
            rest -= lost_window
        row.update(
            missing=missing,
            lost_unacked_at_kill=lost_window,
            quarantined_corrupt=corrupt,
            shed=shed_here,
            unexplained=rest,
        )
        if row["duplicates"]:
            fails.append(f"{a.name}: {row['duplicates']} {kind} events stored twice")
        if rest:
            fails.append(f"{a.name}: {rest} {kind} events captured, not stored, not shed, not at a kill")
        kinds[kind] = row
    stored_macs = store.devices(a.site)
    expected_macs = set(truth["devices"])
    devices = {
        "generated": len(expected_macs),
        "captured": len(macs),
        "stored": len(stored_macs & expected_macs),
        "device_events_captured": counts["device"],
        "unexpected": sorted(stored_macs - expected_macs),
    }
    if macs - stored_macs:
        fails.append(f"{a.name}: devices captured but not stored: {sorted(macs - stored_macs)}")
    batches = store.batches(a.name)
    acked_lost = []
    corrupt_seqs = {f.seq for f in a.corrupted}
    for f in a.spool_snapshots:
        if f.seq in corrupt_seqs:
            continue
        if f.seq not in batches:
            acked_lost.append(f"seq {f.seq} ({f.events} events, spooled at a kill) never stored")
        elif batches[f.seq][0] > f.events:
            acked_lost.append(f"seq {f.seq}: stored {batches[f.seq][0]} events, the spool held {f.events}")
    for name, seqs in soak.ledger_before_kill:
        if name == a.name:
            gone = seqs - set(batches)
            if gone:
                acked_lost.append(f"{len(gone)} batches stored before a collector SIGKILL are gone: {sorted(gone)[:5]}")
    fails += [f"{a.name}: {x}" for x in acked_lost]
    quarantine = sorted(p.name for p in (a.spool / "corrupt").glob("*")) if (a.spool / "corrupt").is_dir() else []
    for f in a.corrupted:
        if not any(n.startswith(f.path.name) for n in quarantine):
            fails.append(f"{a.name}: damaged spool file {f.path.name} not moved to corrupt/")
    left, _ = read_spool(a.spool)
    unsent = [f for f in left if set(f.kinds) - {"health"}]
    if unsent:
        fails.append(f"{a.name}: {len(unsent)} spool files with events never sent")
    return {
        "collector": a.collector.name,
        "site": a.site,
        "rounds_sent": len(a.rounds),
        "rounds_while_agent_down": len(a.rounds) - captured_rounds,
        "kinds": kinds,
        "devices": devices,
        "batches_stored": len(batches),
        "spool_files_checked_at_kills": len(a.spool_snapshots),
        "spool_files_damaged": [f.path.name for f in a.corrupted],
        "quarantined": quarantine,
        "spool_left_at_end": {f.path.name: f.kinds for f in left},
        "kills": len(a.kills),
        "health": totals,
        "kernel": a.veth.kernel_counters(),
    }, fails


def build(soak: Soak, drained: dict[str, Any]) -> dict[str, Any]:
    """The report of a finished run (before teardown): figures, faults, processes, verdict."""
    failures: list[str] = []
    agents: dict[str, Any] = {}
    for a in soak.agents:
        agents[a.name], fails = _account(soak, a)
        failures += fails
    for name, up in drained["alive_before_drain"].items():
        if not up:
            failures.append(f"{name} was not running at the end of the fault phase")
    for name, status in drained["agent_exit_status"].items():
        if status != 0:
            failures.append(f"{name}: exit status {status} after SIGTERM")
    rogue: dict[str, Any] = {}
    for c in soak.collectors:
        n = len(c.store.batches(f"soak-rogue-{c.name}"))
        rogue[c.name] = {"rogue_batches_stored": n}
        if n:
            failures.append(f"{c.name}: {n} batches of the rogue client stored")
    faults = []
    for f in soak.faults:
        faults.append(
            {
                "fault": f.name,
                "target": f.target,
                "at_s": round(f.start - soak.started, 1),
                "duration_s": round(f.end - f.start, 2),
                "recovery_s": f.recovery,
                "ok": f.ok,
                **f.detail,
            }
        )
        if not f.ok:
            failures.append(f"fault {f.name} on {f.target}: {f.detail.get('error') or 'not recovered or wrong answer'}")
    processes: dict[str, Any] = {}
    assert soak.sampler is not None
    for p in [c.proc for c in soak.collectors] + [a.proc for a in soak.agents]:
        u = soak.sampler.usage[p.name]
        processes[p.name] = {
            "incarnations": len(p.pids),
            "peak_rss_mb": round(u.peak_rss / 2**20, 1),
            "peak_cpu_percent": round(u.peak_cpu, 1),
            "cpu_seconds": round(u.cpu_seconds, 1),
            "unexpected_exits": list(p.unexpected),
        }
        failures += p.unexpected
    return {
        "profile": {
            k: (str(v) if v is not None and not isinstance(v, int | float | bool) else v)
            for k, v in vars(soak.p).items()
        },
        "seconds": round(time.time() - soak.started, 1),
        "notes": soak.notes,
        "round_truth": soak.truth,
        "agents": agents,
        "faults": faults,
        "processes": processes,
        "rogue": rogue,
        "drain": drained,
        "failures": failures,
        "pass": not failures,
    }


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i < 2 or i == len(widths) - 1 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    return [line(headers), "-" * (sum(widths) + 2 * (len(widths) - 1)), *(line(r) for r in cells)]


_KIND_COLUMNS: Final = (
    ("generated", "generated"),
    ("while down", "generated_while_agent_down"),
    ("captured", "captured"),
    ("stored", "stored"),
    ("dup", "duplicates"),
    ("lost at kill", "lost_unacked_at_kill"),
    ("corrupt", "quarantined_corrupt"),
    ("shed", "shed"),
    ("unexplained", "unexplained"),
)


def render(report: dict[str, Any]) -> str:
    """The report as text tables for people."""
    p = report["profile"]
    out = [f"Veille soak: {p['minutes']} min, seed {p['seed']}, {len(report['agents'])} agents, {report['seconds']} s"]
    out += [f"note: {note}" for note in report["notes"]]
    rows = [
        [name, kind, *(r[key] for _, key in _KIND_COLUMNS)]
        for name, a in report["agents"].items()
        for kind, r in a["kinds"].items()
    ]
    out += ["", *_table(["agent", "kind", *(h for h, _ in _KIND_COLUMNS)], rows), ""]
    for name, a in report["agents"].items():
        d, h = a["devices"], a["health"]
        out.append(
            f"{name}: devices generated {d['generated']}, captured {d['captured']}, stored {d['stored']}; "
            f"{a['batches_stored']} batches; kernel drops {h['drops_kernel']}, pipeline drops {h['drops_pipeline']}; "
            f"shed by kind {h['shed'] or '{}'}"
        )
        for reason, n in h["shed_reasons"].items():
            out.append(f"  alarm x{n}: {reason}")
        for run in h["runs"]:
            if run["shed"]:
                out.append(f"  run started {run['started']} ({run['ended']}): shed {run['shed']}: {run['shed_reason']}")
    skip = {"fault", "target", "at_s", "duration_s", "recovery_s", "ok"}
    rows = [
        [
            f["fault"],
            f["target"],
            f["at_s"],
            f["duration_s"],
            "-" if f["recovery_s"] is None else f"{f['recovery_s']:.2f}",
            "yes" if f["ok"] else "NO",
            json.dumps({k: v for k, v in f.items() if k not in skip})[:80],
        ]
        for f in report["faults"]
    ]
    out += ["", *_table(["fault", "target", "at s", "held s", "recovery s", "ok", "detail"], rows)]
    rows = [
        [name, pr["incarnations"], pr["peak_rss_mb"], pr["peak_cpu_percent"], pr["cpu_seconds"]]
        for name, pr in report["processes"].items()
    ]
    out += ["", *_table(["process", "runs", "peak RSS MB", "peak CPU %", "CPU s"], rows), ""]
    out.append("PASS" if report["pass"] else "FAIL")
    out += [f"  - {x}" for x in report["failures"]]
    return "\n".join(out)
