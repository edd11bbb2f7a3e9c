"""Run suricata-verify RULE tests through the replay pipeline and compare alert counts with Suricata's.

A test is *run* when every rule of its rule files loads; it is *skipped* (with the reason: the
keywords or protocols Veille does not honour, or a documented out-of-scope need) otherwise.
Each `checks` filter on `event_type: alert` is evaluated on our alerts: the sid, and the packet
number / endpoints / protocol when the filter names them; keys we cannot evaluate are listed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.pipeline import Pipeline, PipelineConfig
from capture.pcapfile import read_frames
from signatures.rules import load_rules

# Needs that are outside the subset for a reason other than a rule keyword.
OUT_OF_SCOPE = {
    "bug-6402-01": "needs Geneve decapsulation (UDP 6081, not decoded) and per-layer inspection of "
    "tunnelled packets (Suricata alerts on the outer GRE and the inner TCP packet separately)",
}
_KEYMAP = {"pcap_cnt": "pkt", "src_ip": "src", "dest_ip": "dst", "src_port": "sport", "dest_port": "dport",
           "proto": "proto"}  # fmt: skip


@dataclass
class Result:
    name: str
    skipped: str | None = None
    checks: list[tuple[str, int, int]] = field(default_factory=list)  # (description, expected, got)
    ignored_keys: set[str] = field(default_factory=set)

    @property
    def exact(self) -> bool:
        return self.skipped is None and all(e == g for _, e, g in self.checks)


def iter_test_dirs(root: Path) -> Iterator[Path]:
    for ty in sorted(glob.glob(str(root / "suricata-verify" / "**" / "test.yaml"), recursive=True)):
        d = Path(ty).parent
        if glob.glob(str(d / "*.rules")):
            yield d


def _flatten(m: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def replay_alerts(rule_files: list[str], pcap: str) -> list[dict[str, Any]]:
    """Alerts of a replay, each tagged with its 1-based packet number as `pkt`."""
    p = Pipeline(PipelineConfig(rule_files=rule_files, inventory=False))
    alerts: list[dict[str, Any]] = []
    for n, frame in enumerate(read_frames(pcap), 1):
        p.feed(frame)
        alerts.extend({**e, "pkt": n} for e in p.take() if e["type"] == "alert")
    p.finish()
    alerts.extend(e for e in p.take() if e["type"] == "alert")
    return alerts


def _matches(alert: dict[str, Any], conds: dict[str, Any], res: Result) -> bool:
    for f, v in conds.items():
        if f == "pkt" and alert.get("proto") == "tcp":
            # Suricata inspects TCP stream data once the peer ACKs it (IDS mode), Veille when it
            # arrives: the packet number of a TCP alert differs by design; counts still must agree.
            res.ignored_keys.add("pcap_cnt of TCP alerts (stream inspection timing)")
            continue
        got = str(alert.get(f)).lower() if f == "proto" else alert.get(f)
        if got != v:
            return False
    return True


def run_test(d: Path, root: Path) -> Result:
    name = os.path.relpath(d, root / "suricata-verify")
    res = Result(name)
    rules = sorted(str(p) for p in d.glob("*.rules"))
    pcaps = sorted(str(p) for p in d.glob("*.pcap"))
    if name in OUT_OF_SCOPE:
        res.skipped = OUT_OF_SCOPE[name]
        return res
    rs = load_rules(rules, {})
    if rs.skipped:
        res.skipped = "unsupported: " + ", ".join(sorted({s.keyword for s in rs.skipped}))
        return res
    if len(pcaps) != 1:
        res.skipped = f"expected one pcap, found {len(pcaps)}"
        return res
    spec = yaml.safe_load((d / "test.yaml").read_text())
    alerts = replay_alerts(rules, pcaps[0])
    for check in spec.get("checks", []):
        flt = check.get("filter")
        if not flt:
            continue
        match = _flatten(flt.get("match", {}))
        if match.get("event_type") != "alert":
            continue
        conds: dict[str, Any] = {}
        for k, v in match.items():
            if k == "event_type":
                continue
            if k == "alert.signature_id":
                conds["sid"] = int(v)
            elif k in _KEYMAP:
                conds[_KEYMAP[k]] = str(v).lower() if k == "proto" else v
            else:
                res.ignored_keys.add(k)
        got = sum(1 for a in alerts if _matches(a, conds, res))
        desc = ",".join(f"{k}={v}" for k, v in conds.items()) or "any alert"
        res.checks.append((desc, int(flt["count"]), got))
    if not res.checks:
        res.skipped = "no alert checks"
    return res
