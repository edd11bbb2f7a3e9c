"""The whole replay pipeline against tshark, on every shared capture tshark decodes.

Per frame, the fields Veille reports must equal tshark's: DHCP option 55 / 12 / 60, DHCPv6 ORO,
TLS SNI, HTTP method/host/URI/User-Agent, DNS query names. Flow counts must equal tshark's
conversation counts (`-z conv,tcp` / `-z conv,udp`) on captures no timeout splits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import PipelineConfig, replay_events
from tests.reference import read_tshark_tsv

SETS = ("protocols", "ja4")


def _captures(corpora: Path) -> list[Path]:
    out = []
    for s in SETS:
        for p in sorted((corpora / s / "pcap").iterdir()):
            if (corpora / s / "reference" / f"{p.name}.tshark.tsv").exists():
                out.append(p)
    return out


def _events(path: Path) -> list[dict[str, Any]]:
    cfg = PipelineConfig(inventory=False)
    return list(replay_events([str(path)], cfg))


def _by_frame(events: list[dict[str, Any]], kind: str) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["type"] == kind:
            out[e["pkt"]].append(e)
    return out


# Field checks: (name, tshark column, our event type, function event -> text as tshark prints it)
def _dhcp_params(e: dict[str, Any]) -> str:
    return ",".join(str(x) for x in e["params"])


def _dns_names(e: dict[str, Any]) -> str:
    # tshark prints the root name as "<Root>".
    return ",".join(q or "<Root>" for q in e["queries"])


# Checked per frame: tshark reports these on the frame that carries (or completes) the message.
CHECKS = [
    ("DHCP params (opt 55)", "dhcp.option.request_list_item", "dhcp", _dhcp_params),
    ("DHCP hostname (opt 12)", "dhcp.option.hostname", "dhcp", lambda e: e["hostname"] or ""),
    ("DHCP vendor class (opt 60)", "dhcp.option.vendor_class_id", "dhcp", lambda e: e["vendor_class"] or ""),
    ("DHCPv6 ORO", "dhcpv6.requested_option_code", "dhcp6", lambda e: ",".join(str(x) for x in e["oro"])),
    ("TLS SNI", "tls.handshake.extensions_server_name", "tls_client", lambda e: e["sni"] or ""),
    ("DNS query names", "dns.qry.name", "dns", _dns_names),
]

# Checked per TCP connection, in order: tshark reports an HTTP request on the frame that completes
# the whole PDU (body included), Veille on the frame that completes the request head, so frame
# numbers differ by design while the sequence of requests per connection must be identical.
HTTP_CHECKS = [
    ("HTTP method", "http.request.method", "method"),
    ("HTTP host", "http.host", "host"),
    ("HTTP URI", "http.request.uri", "uri"),
    ("HTTP User-Agent", "http.user_agent", "user_agent"),
]


def _tshark_text(v: str) -> str:
    # tshark escapes a few characters in field output; compare unescaped.
    return v.replace("\\\\", "\\").replace('\\"', '"')


def _quoted_in_icmp(row: dict[str, str]) -> bool:
    # tshark also decodes the packet quoted inside an ICMP error; that is no message of a device.
    return row.get("_ws.col.Protocol", "").startswith("ICMP")


@pytest.mark.corpora
def test_fields_equal_tshark_per_frame(corpora: Path) -> None:
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    mismatches: list[str] = []
    explained: Counter[str] = Counter()
    for pcap in _captures(corpora):
        ref = read_tshark_tsv(pcap.parent.parent / "reference" / f"{pcap.name}.tshark.tsv")
        events = _events(pcap)
        for name, col, kind, fmt in CHECKS:
            ours = _by_frame(events, kind)
            for frame, row in ref.items():
                want = _tshark_text(row.get(col, ""))
                got_events = ours.get(frame, [])
                if not want and not got_events:
                    continue
                if want and _quoted_in_icmp(row):
                    explained["packet quoted in an ICMP error"] += 1
                    continue
                got = ";".join(fmt(e) for e in got_events)
                if not want and not got:
                    continue  # the message has no such field; tshark prints nothing either
                if want and not got_events:
                    got = "<no event>"
                total[name] += 1
                if want == got:
                    agree[name] += 1
                else:
                    mismatches.append(f"{pcap.name} frame {frame} {name}: tshark={want!r} veille={got!r}")
        _compare_http(pcap, ref, events, agree, total, mismatches, explained)
    for name in [c[0] for c in CHECKS] + [c[0] for c in HTTP_CHECKS]:
        print(f"{name}: {agree[name]}/{total[name]} agree with tshark")
    for reason, n in explained.items():
        print(f"not compared ({reason}): {n}")
    for m in mismatches[:40]:
        print("MISMATCH", m)
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    assert sum(total.values()) > 100  # the comparison really ran


def _conn_key(src: str, sport: Any, dport: Any) -> tuple[str, int, int]:
    return (src, int(sport), int(dport))


def _compare_http(
    pcap: Path,
    ref: dict[int, dict[str, str]],
    events: list[dict[str, Any]],
    agree: Counter[str],
    total: Counter[str],
    mismatches: list[str],
    explained: Counter[str],
) -> None:
    theirs: dict[tuple[str, int, int], list[dict[str, str]]] = defaultdict(list)
    for _frame, row in sorted(ref.items()):
        if not row.get("http.request.method"):
            continue
        if not row.get("tcp.srcport"):
            # SSDP (HTTP over UDP): Veille reports it as an `ssdp` event, compared in its own test.
            explained["SSDP shown by tshark as HTTP over UDP"] += 1
            continue
        src = row.get("ip.src") or row.get("ipv6.src", "")
        theirs[
            _conn_key(src.split(",")[-1], row["tcp.srcport"].split(",")[-1], row["tcp.dstport"].split(",")[-1])
        ].append(row)
    ours: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["type"] == "http":
            ours[_conn_key(e["src"], e["sport"], e["dport"])].append(e)
    for key in sorted(set(theirs) | set(ours)):
        t_list, o_list = theirs.get(key, []), ours.get(key, [])
        for i in range(max(len(t_list), len(o_list))):
            for name, col, field in HTTP_CHECKS:
                want = _tshark_text(t_list[i].get(col, "")) if i < len(t_list) else "<no request>"
                got = (o_list[i].get(field) or "") if i < len(o_list) else "<no event>"
                total[name] += 1
                if want == got:
                    agree[name] += 1
                else:
                    mismatches.append(f"{pcap.name} {key} request {i} {name}: tshark={want!r} veille={got!r}")


def _tshark_conv_count(pcap: Path, proto: str) -> int:
    out = subprocess.run(
        ["tshark", "-n", "-q", "-r", str(pcap), "-z", f"conv,{proto}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return sum(1 for line in out.splitlines() if re.match(r"^\S+:\d+\s+<->\s+\S+:\d+", line.strip()))


@pytest.mark.corpora
def test_flow_counts_equal_tshark_conversations(corpora: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (.ci/run installs it)")
    agree = 0
    total = 0
    diffs = []
    for pcap in _captures(corpora):
        if pcap.suffix not in (".pcap", ".pcapng", ".cap"):
            continue
        events = _events(pcap)
        flows = [e for e in events if e["type"] == "flow"]
        span = max((e["ts_end"] for e in flows), default=0) - min((e["ts_start"] for e in flows), default=0)
        if span > 55:  # a UDP timeout (60 s) could split a conversation; only compare where none can
            continue
        for proto in ("tcp", "udp"):
            ours = sum(1 for e in flows if e["proto"] == proto)
            theirs = _tshark_conv_count(pcap, proto)
            stats = events[-1]
            if proto == "udp" and stats["tunnelled"] and theirs > ours:
                # tshark lists the outer VXLAN/GTP-U conversation too; Veille decapsulates and keeps
                # only the flows inside, where the devices are.
                print(f"explained: {pcap.name} udp: tshark {theirs} includes outer tunnel conversations")
                continue
            total += 1
            if ours == theirs:
                agree += 1
            else:
                diffs.append(f"{pcap.name} {proto}: tshark {theirs}, veille {ours}")
    print(f"flow counts: {agree}/{total} (capture, proto) pairs equal tshark conversations")
    for d in diffs:
        print("DIFF", d)
    assert total > 10
    assert not diffs
