"""Proof of issue 9 with real processes on loopback: fixtures replayed in the `pseudonymised` and `minimal`
profiles and shipped to a real collector leave no MAC, IP or host name of the capture anywhere in the
collector's SQLite file (every table dumped, and the raw file bytes) or in its API answers, while the
device count, device types, vendors and alerts stay those of the `full` replay."""

from __future__ import annotations

import ipaddress
import json
import re
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.privacy import CLEAR, DNS_QUERY, KEEP, SERVER_NAME, SPECS, USER_AGENT, PrivacyConfig, classes_of, field_table
from agent.reveal import new_key
from tests.e2e.collector_proc import cli, running_collector
from tests.strings import string_leaves

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
PCAPS = REPO / "pcaps"
CAPTURES = {
    "ecole": [str(PCAPS / "school_morning.pcap")],
    "mairie": [str(PCAPS / "lan_attacks.pcap"), "--rules", str(PCAPS / "lan_attacks.rules"), "--home-net",
               "[192.0.2.0/24]"],
}  # fmt: skip
PROFILES = ("pseudonymised", "minimal")
_MAC = re.compile(r"(?<![0-9a-f:])[0-9a-f]{2}(?::[0-9a-f]{2}){5}(?![0-9a-f:])")
_TOKEN = re.compile(r"[0-9a-f.:]{2,}")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_collector(tmp_path) as c:
        yield c


def _api(c: dict[str, Any], path: str) -> Any:
    req = urllib.request.Request(c["url"] + path, headers={"Authorization": f"Bearer {c['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "veille", "replay", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def _host_addresses(text: str) -> Iterator[str]:
    low = text.lower()
    for m in _MAC.finditer(low):
        if not int(m.group(0)[:2], 16) & 1 and m.group(0) != "00:00:00:00:00:00":
            yield m.group(0)
    for m in _TOKEN.finditer(low):
        for cand in {m.group(0), m.group(0).strip(".:")}:
            try:
                a = ipaddress.ip_address(cand)
            except ValueError:
                continue
            if not (a.is_unspecified or a.is_multicast or a.is_loopback or str(a) == "255.255.255.255"):
                yield str(a)


def _needles(events: list[dict[str, Any]], profile: str) -> tuple[set[str], set[str], list[str]]:
    """MAC/IP addresses and host names of the capture; names that are also clear words are set aside."""
    addrs = {a for e in events for _, v in string_leaves(e) for a in _host_addresses(v)}
    names: set[str] = set()
    for e in events:
        if e["type"] == "device":
            names.update(n["name"] for n in e["names"])
        elif e["type"] in ("dhcp", "nbns", "dhcp6"):
            names.update(v for k in ("hostname", "name", "fqdn") if isinstance(v := e.get(k), str))
    hosts = {x for n in names for x in (n.rstrip(".").lower(), n.lower().split(".")[0]) if len(x) >= 3}
    cfg = PrivacyConfig(profile=profile, key_file="k")  # type: ignore[arg-type]
    clear = {c for c in (KEEP, USER_AGENT, SERVER_NAME, DNS_QUERY) if cfg.treatment(c) == CLEAR}
    clear_text = " ".join(
        v.lower()
        for e in events
        for path, v in string_leaves(e)
        if (cls := dict(field_table(SPECS.get(e["type"], {}))).get(path)) and set(classes_of(cls)) <= clear
    )
    words = sorted(h for h in hosts if h in clear_text)
    return addrs, hosts - set(words), words


def _found(haystack: str, addrs: set[str], hosts: set[str], minimal: bool) -> list[str]:
    end = r"(?![0-9a-f:/])" if minimal else r"(?![0-9a-f:])"  # minimal keeps a.b.c.0/24 networks
    hits = [a for a in addrs if re.search(r"(?<![0-9a-f.:])" + re.escape(a) + end, haystack)]
    hits += [a for a in addrs if ":" in a and len(a) == 17 and a.replace(":", "") in haystack]
    return sorted(hits + [h for h in hosts if h in haystack])


def test_pseudonymised_and_minimal_sites_leave_nothing_identifying_in_the_collector(
    collector: dict[str, Any], tmp_path: Path
) -> None:
    key = tmp_path / "site.key"
    new_key(key)
    full: dict[str, list[dict[str, Any]]] = {}
    for cap, args in CAPTURES.items():
        out = _replay(*args)
        assert out.returncode == 0, out.stderr
        full[cap] = [json.loads(x) for x in out.stdout.splitlines()]
    for cap, args in CAPTURES.items():
        for profile in PROFILES:
            site = f"{cap}-{profile}"
            cfg = tmp_path / f"{site}.toml"
            cli(
                "collector", "agent", "add", "--db", str(collector["db"]), "--site", site, "--url", collector["url"],
                "--config-out", str(cfg), "--spool-dir", str(tmp_path / f"spool-{site}"), cwd=tmp_path,
            )  # fmt: skip
            ship = _replay(*args, "--ship", "--agent-config", str(cfg), "--privacy-profile", profile,
                           "--privacy-key-file", str(key), "--privacy-map", str(tmp_path / "map.jsonl"))  # fmt: skip
            assert ship.returncode == 0, ship.stderr
            assert " 0 spooled" in ship.stderr and "0 batches rejected" in ship.stderr, ship.stderr

    # Same inventory and alerts as the full replay, per site.
    answers: list[Any] = []
    for cap, events in full.items():
        want = [e for e in events if e["type"] == "device"]
        alerts = sorted(e["sid"] for e in events if e["type"] == "alert")
        for profile in PROFILES:
            site = f"{cap}-{profile}"
            got = _api(collector, f"/api/v1/devices?limit=1000&site={site}")
            answers.append(got)
            items = got["items"]
            assert len(items) == len(want), site
            assert Counter(d["device_type"] for d in items) == Counter(d["device_type"] for d in want), site
            assert Counter(d["vendor"] for d in items) == Counter(d["vendor"] for d in want), site
            assert sum(d["randomized"] for d in items) == sum(d["randomized_mac"] for d in want), site
            assert all(d["pseudonymised"] for d in items), site
            got_alerts = _api(collector, f"/api/v1/alerts?limit=1000&site={site}")
            answers.append(got_alerts)
            assert sorted(a["sid"] for a in got_alerts["items"]) == alerts, site
            for d in items:
                answers.append(_api(collector, f"/api/v1/devices/{site}/{urllib.parse.quote(d['mac'], safe='')}"))
            answers.append(_api(collector, f"/api/v1/sites/{site}/top-talkers?since=0&limit=100"))
            types = dict(sorted(Counter(d["device_type"] for d in items).items()))
            print(f"\n{site}: {len(items)} devices as in full ({types}), {len(got_alerts['items'])} alerts")
    answers.append(_api(collector, "/api/v1/sites"))
    agents = _api(collector, "/api/v1/agents")
    answers.append(agents)
    for agent in agents["items"]:
        answers.append(_api(collector, f"/api/v1/agents/{agent['agent_id']}/health?since=1"))
    answers.append(_api(collector, "/api/v1/audit?limit=1000"))

    # Stop the collector so the WAL is checkpointed, then read everything it stored.
    collector["proc"].terminate()
    collector["proc"].wait(timeout=20)
    con = sqlite3.connect(collector["db"])
    dump = "\n".join(con.iterdump()).lower()
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    con.close()
    raw = b"".join(p.read_bytes() for p in collector["db"].parent.glob(collector["db"].name + "*"))
    raw_text = raw.decode("latin-1").lower()
    api_text = json.dumps(answers).lower()
    assert rows["devices"] > 0 and rows["observations"] > 0 and rows["flow_hourly"] > 0 and rows["alerts"] > 0

    # One store holds both profiles' sites, so the check allows what either may ship: a /24 or /48
    # network (minimal) and the words pseudonymised ships in clear.
    for cap, events in full.items():
        addrs, hosts, words = _needles([e for e in events if e["type"] != "stats"], "pseudonymised")
        for where, text in (("database dump", dump), ("database file", raw_text), ("API answers", api_text)):
            leaked = _found(text, addrs, hosts, minimal=True)
            assert not leaked, (cap, where, leaked[:10])
        print(f"{cap}: 0 of {len(addrs)} MAC/IP addresses and 0 of {len(hosts)} host names in the database "
              f"({sum(rows.values())} rows in {len(tables)} tables, {len(raw)} bytes) or {len(answers)} API "
              f"answers; names that are also clear words, not checked: {words}")  # fmt: skip
