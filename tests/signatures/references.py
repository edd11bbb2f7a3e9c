"""Test helper: load the reference tools' outputs in ../shared/corpora-like folders.

Each loader returns a list of (key, value) where key is the sender's (src, sport) or the flow's
(src, sport, dst, dport), so one capture can be compared with what our code finds.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

Entry = tuple[tuple[object, ...], str]


def _last(value: str) -> str:
    return value.split(",")[-1] if value else value


_TLS_COLUMN = re.compile(r"TLS|SSL|QUIC|DTLS")


def tshark_tsv(path: Path) -> dict[str, list[Entry]]:
    """JA3 / JA3 string keyed by client (src, sport); JA3S / JA3S string keyed by server."""
    out: dict[str, list[Entry]] = {"ja3": [], "ja3_string": [], "ja3s": [], "ja3s_string": [], "tls_senders": []}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            src = _last(row["ip.src"]) or _last(row["ipv6.src"])
            sport = _last(row["tcp.srcport"]) or _last(row["udp.srcport"])
            key = (src, int(sport)) if sport else (src, 0)
            if _TLS_COLUMN.search(row["_ws.col.Protocol"]):
                out["tls_senders"].append((key, row["_ws.col.Protocol"]))  # tshark dissected it as TLS
            if row["tls.handshake.ja3"]:
                out["ja3"].append((key, row["tls.handshake.ja3"]))
                out["ja3_string"].append((key, row["tls.handshake.ja3_full"]))
            if row["tls.handshake.ja3s"]:
                out["ja3s"].append((key, row["tls.handshake.ja3s"]))
                out["ja3s_string"].append((key, row["tls.handshake.ja3s_full"]))
    return out


def foxio_python(path: Path) -> dict[str, list[Entry]]:
    """JA4 / JA4_r (first hello of each stream) and HASSH from FoxIO's ja4.py JSON output."""
    out: dict[str, list[Entry]] = {"ja4": [], "ja4_r": [], "ja4_2nd": [], "hassh": [], "hassh_server": []}
    for item in json.loads(path.read_text() or "[]"):
        key = (item["src"], int(item["srcport"]), item["dst"], int(item["dstport"]))
        rkey = (key[2], key[3], key[0], key[1])
        if "JA4.1" in item:
            out["ja4"].append((key, item["JA4.1"]))
            out["ja4_r"].append((key, item["JA4_r.1"]))
        if "JA4.2" in item:
            out["ja4_2nd"].append((key, item["JA4.2"]))
        extras = item.get("ssh_extras") or {}
        if extras.get("hassh"):
            out["hassh"].append((key, extras["hassh"]))
        if extras.get("hassh_server"):
            out["hassh_server"].append((rkey, extras["hassh_server"]))
    return out


_SNAP_ITEM = re.compile(r"^- ", re.M)
_SNAP_FIELD = re.compile(r"^ {2,4}(\w+): (.+)$", re.M)


def foxio_rust(path: Path) -> dict[str, list[Entry]]:
    """JA4 and HASSH from FoxIO's Rust insta snapshot (a flat YAML list; no YAML library needed)."""
    out: dict[str, list[Entry]] = {"ja4": [], "hassh": [], "hassh_server": []}
    text = path.read_text().split("---", 2)[-1]
    for chunk in _SNAP_ITEM.split(text)[1:]:
        chunk = "  " + chunk
        fields = {k: v for k, v in _SNAP_FIELD.findall(chunk) if v != "null"}
        if "src" not in fields:
            continue
        key = (fields["src"], int(fields["src_port"]), fields["dst"], int(fields["dst_port"]))
        rkey = (key[2], key[3], key[0], key[1])
        if "ja4" in fields:
            out["ja4"].append((key, fields["ja4"]))
        if "hassh" in fields:
            out["hassh"].append((key, fields["hassh"]))
        if "hassh_server" in fields:
            out["hassh_server"].append((rkey, fields["hassh_server"]))
    return out


def arkime(path: Path) -> dict[str, list[Entry]]:
    """JA3/JA3S/JA4/JA4_r/HASSH from an Arkime `.test` file (session documents)."""
    names = {
        ("tls", "ja3"): "ja3",
        ("tls", "ja3string"): "ja3_string",
        ("tls", "ja3s"): "ja3s",
        ("tls", "ja3sstring"): "ja3s_string",
        ("tls", "ja4"): "ja4",
        ("tls", "ja4_r"): "ja4_r",
        ("ssh", "hassh"): "hassh",
        ("ssh", "hasshServer"): "hassh_server",
    }
    out: dict[str, list[Entry]] = {v: [] for v in names.values()}
    for session in json.loads(path.read_text()).get("sessions3", []):
        body = session["body"]
        src, dst = body["source"], body["destination"]
        key = (src["ip"], int(src["port"]), dst["ip"], int(dst["port"]))
        rkey = (key[2], key[3], key[0], key[1])
        for (section, field), name in names.items():
            for value in body.get(section, {}).get(field, []):
                server_side = name.startswith("ja3s") or name == "hassh_server"
                out[name].append((rkey if server_side else key, value))
    return out
