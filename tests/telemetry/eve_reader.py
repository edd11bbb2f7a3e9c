"""A small EVE JSON reader for tests: JSON lines in, records validated against Suricata's field shapes.

It is written from Suricata's EVE documentation (docs.suricata.io "Eve JSON Format") and the
suricata-verify check syntax (`dhcp.params[0]`, `llmnr.answers[0].rrname`), independently of
telemetry/eve.py: it only knows what EVE looks like, not how Veille builds it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{4}$")
PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()

# field path -> expected Python type(s), from the EVE format documentation.
SHAPES: dict[str, tuple[type, ...]] = {
    "timestamp": (str,),
    "flow_id": (int,),
    "event_type": (str,),
    "src_ip": (str,),
    "dest_ip": (str,),
    "src_port": (int,),
    "dest_port": (int,),
    "proto": (str,),
    "community_id": (str,),
    "app_proto": (str,),
    "pcap_cnt": (int,),
    "alert.action": (str,),
    "alert.gid": (int,),
    "alert.signature_id": (int,),
    "alert.rev": (int,),
    "alert.signature": (str,),
    "alert.category": (str,),
    "alert.severity": (int,),
    "dhcp.type": (str,),
    "dhcp.id": (int,),
    "dhcp.client_mac": (str,),
    "dhcp.assigned_ip": (str,),
    "dhcp.dhcp_type": (str,),
    "dhcp.params": (list,),
    "tls.sni": (str,),
    "tls.version": (str,),
    "tls.ja3.hash": (str,),
    "tls.ja3.string": (str,),
    "tls.ja3s.hash": (str,),
    "tls.ja4": (str,),
    "dns.version": (int,),
    "dns.type": (str,),
    "dns.queries": (list,),
    "dns.answers": (list,),
    "http.hostname": (str,),
    "http.url": (str,),
    "http.http_user_agent": (str,),
    "http.http_method": (str,),
    "flow.pkts_toserver": (int,),
    "flow.pkts_toclient": (int,),
    "flow.bytes_toserver": (int,),
    "flow.bytes_toclient": (int,),
    "flow.start": (str,),
    "flow.end": (str,),
    "flow.age": (int,),
    "flow.state": (str,),
    "flow.reason": (str,),
}
FLOW_STATES = {"new", "established", "closed", "bypassed", "local_bypassed", "capture_bypassed"}
FLOW_REASONS = {"timeout", "forced", "shutdown"}
PROTOS = {"TCP", "UDP", "ICMP", "IPv6-ICMP", "SCTP"}


def get(record: Any, path: str) -> Any:
    """The value at a suricata-verify path (`a.b[0].c`), or the module's _MISSING marker."""
    node = record
    for name, index in PATH_RE.findall(path):
        if name:
            if not isinstance(node, dict) or name not in node:
                return _MISSING
            node = node[name]
        else:
            i = int(index)
            if not isinstance(node, list) or i >= len(node):
                return _MISSING
            node = node[i]
    return node


def has(record: Any, path: str) -> bool:
    return get(record, path) is not _MISSING


def problems(record: dict[str, Any]) -> list[str]:
    """Every way a record departs from EVE's field shapes."""
    out = []
    for path, types in SHAPES.items():
        value = get(record, path)
        if value is not _MISSING and not isinstance(value, types):
            out.append(f"{path}: {type(value).__name__} {value!r}")
    for path in ("timestamp", "flow.start", "flow.end"):
        value = get(record, path)
        if value is not _MISSING and not TIMESTAMP_RE.match(str(value)):
            out.append(f"{path}: not EVE time {value!r}")
    for path in ("src_ip", "dest_ip", "dhcp.assigned_ip"):
        value = get(record, path)
        if value is not _MISSING:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                out.append(f"{path}: not an IP {value!r}")
    if "proto" in record and record["proto"] not in PROTOS and not str(record["proto"]).isdigit():
        out.append(f"proto: {record['proto']!r}")
    if get(record, "flow.state") not in (_MISSING, *FLOW_STATES):
        out.append(f"flow.state: {record['flow']['state']!r}")
    if get(record, "flow.reason") not in (_MISSING, *FLOW_REASONS):
        out.append(f"flow.reason: {record['flow']['reason']!r}")
    if "event_type" not in record:
        out.append("event_type missing")
    elif record["event_type"] not in record and record["event_type"] not in ("flow", "stats", "veille_device"):
        out.append(f"no {record['event_type']!r} object")
    for port in ("src_port", "dest_port"):
        if port in record and not 0 <= record[port] <= 65535:
            out.append(f"{port} out of range")
    return out


def read_lines(text: str) -> list[dict[str, Any]]:
    """Parse EVE JSON lines; every line must be one JSON object."""
    records = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        value = json.loads(line)
        if not isinstance(value, dict):
            raise ValueError(f"line {no}: not a JSON object")
        records.append(value)
    return records
