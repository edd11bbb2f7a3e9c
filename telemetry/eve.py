"""Suricata EVE JSON from Veille events, so SIEM parsers written for Suricata read Veille unchanged.

Strategy
- One converter for both sides: replay/agent event dicts (docs/events.md names) and the wire Structs the
  collector stores (`telemetry.schema`) are first flattened to the replay dict shape, then mapped by a
  table of per-type functions (`_MAPPERS`) to EVE records with Suricata's field names: a common header
  (`timestamp`, `flow_id`, `event_type`, `src_ip`, `src_port`, `dest_ip`, `dest_port`, `proto`,
  `community_id`, `app_proto`, `ether`, `pcap_cnt`) plus the protocol object (`alert`, `dhcp`, `tls`,
  `quic`, `dns`/`mdns`/`llmnr` in the EVE v3 DNS shape, `http`, `ssh`, `flow`, `stats`).
- `flow_id` is derived from the Community ID (first 8 bytes of its SHA-1, masked to 51 bits as Suricata
  keeps flow ids JSON-safe), so a flow record and every observation of that flow share it.
- Veille's own knowledge rides under the `veille` key: `veille.device` (type, vendor, os, confidence) on
  `veille_device` records and, once a device is known, on every record whose source MAC it is; the
  converter keeps a bounded MAC -> device map for that (the only state; no I/O, no clock).
- Known differences from Suricata, kept on purpose (docs/siem.md): DHCP `hostname` without trailing NULs;
  one `tls` record per hello (client, then server) rather than one per session; flow byte counts are the
  IP bytes Veille measures plus the Ethernet header (14 B, +4 per VLAN tag) per packet when the flow has MACs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import msgspec

from telemetry.community import community_id as compute_community_id
from telemetry.schema import DeviceEvent, Event, ObservationEvent, event_type

EveRecord = dict[str, Any]

# Suricata's JSON flow id is a 64-bit hash shown as a JSON integer; 51 bits stay exact in every JSON reader
# (IEEE 754 doubles hold 53), which is what Suricata itself masks to since 5.0 (output-json.c).
FLOW_ID_MASK: Final = (1 << 51) - 1
# Devices remembered for `veille.device` enrichment: a large site has a few thousand; the agent's inventory
# itself is bounded at 10k devices (DESIGN.md budgets). The same bound applies to alerted flows remembered.
MAX_DEVICES: Final = 10_000
# Ethernet header bytes per frame (IEEE 802.3) and per 802.1Q tag, added to flow byte counts (module doc).
ETHER_HEADER: Final = 14
VLAN_TAG: Final = 4

PROTO_NAMES: Final = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "icmp6": "IPv6-ICMP", "sctp": "SCTP"}
_PROTO_NUMBERS: Final = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP"}
# DHCP message types (RFC 2132 9.6) as Suricata names them, and whether the message is a BOOTP reply.
DHCP_TYPES: Final = {
    1: ("discover", False),
    2: ("offer", True),
    3: ("request", False),
    4: ("decline", False),
    5: ("ack", True),
    6: ("nak", True),
    7: ("release", False),
    8: ("inform", False),
}
# Option 55 codes Suricata names in `dhcp.params` (rust/src/dhcp/logger.rs); others are left out there too.
DHCP_PARAMS: Final = {
    1: "subnet_mask",
    3: "router",
    6: "dns_server",
    15: "domain",
    35: "arp_timeout",
    42: "ntp_server",
    66: "tftp_server_name",
    150: "tftp_server_ip",
}
# TLS versions as Suricata prints them (SSLVersionToString).
TLS_VERSIONS: Final = {
    0x0200: "SSLv2",
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}
# DNS RR types (IANA registry) and RCODEs (RFC 1035 4.1.1, RFC 6895) by their mnemonic.
DNS_TYPES: Final = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    41: "OPT",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}
DNS_RCODES: Final = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}
# Flow end reasons: Veille's `end_reason` -> Suricata's `flow.reason`.
FLOW_REASONS: Final = {
    "eof": "shutdown",
    "idle": "timeout",
    "fin": "timeout",
    "rst": "timeout",
    "active": "timeout",
    "evict": "forced",
}
_OBS_COMMON: Final = ("ts", "src_mac", "src", "dst", "sport", "dport", "community_id")


def timestamp(ts: float) -> str:
    """EVE `timestamp`: ISO 8601 in UTC with microseconds and a `+0000` offset, as Suricata writes it."""
    micros = round(ts * 1_000_000)
    seconds, frac = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:06d}+0000"


def flow_id(community_id: str | None, src: str | None = None, dst: str | None = None) -> int:
    """A JSON-safe 51-bit flow id from a Community ID (or from the endpoints when there is none)."""
    digest: bytes | None = None
    if community_id and community_id.startswith("1:"):
        try:
            digest = base64.b64decode(community_id[2:], validate=True)
        except (binascii.Error, ValueError):
            digest = None
    if digest is None or len(digest) < 8:
        digest = hashlib.sha1(f"{community_id}|{src}|{dst}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & FLOW_ID_MASK


def proto_name(proto: Any) -> str | None:
    """EVE `proto`: IP protocol name (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`) or number as text; None otherwise.

    Non-IP protocols (an ARP detection's `arp`) have no EVE `proto`.
    """
    if proto is None or isinstance(proto, bool):
        return None
    if isinstance(proto, int):
        return _PROTO_NUMBERS.get(proto, str(proto))
    text = str(proto)
    return PROTO_NAMES.get(text.lower(), text if text.isdigit() else None)


def flatten(event: Event | Mapping[str, Any]) -> dict[str, Any]:
    """A wire Struct or replay dict as a replay-shaped dict (`type` plus docs/events.md field names)."""
    if isinstance(event, Mapping):
        return dict(event)
    if isinstance(event, ObservationEvent):
        flat = {k: v for k in _OBS_COMMON if (v := getattr(event, k)) is not None}
        flat.update(event.fields)
        flat["type"] = event.kind
        return flat
    # Only a device holds nested Structs (names, os, evidence); the others are flat and copied shallowly.
    body: dict[str, Any] = msgspec.structs.asdict(event)
    if isinstance(event, DeviceEvent):
        body = msgspec.to_builtins(body)
    body["type"] = event_type(event)
    return body


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ether(ev: Mapping[str, Any]) -> dict[str, str] | None:
    src, dst = ev.get("src_mac"), ev.get("dst_mac")
    if not src and not dst:
        return None
    out = {}
    if src:
        out["src_mac"] = src
    if dst:
        out["dest_mac"] = dst
    return out


def _header(ev: Mapping[str, Any], kind: str, ts: float, src: Any, sport: Any, dst: Any, dport: Any) -> EveRecord:
    cid = ev.get("community_id")
    proto = ev.get("proto")
    if cid is None and src and dst and proto is not None and sport is not None and dport is not None:
        try:
            cid = compute_community_id(proto, src, int(sport), dst, int(dport))
        except (ValueError, TypeError, OverflowError, struct.error):  # not a 5-tuple Community ID can hash
            cid = None
    rec: EveRecord = {"timestamp": timestamp(ts), "flow_id": flow_id(cid, src, dst)}
    if ev.get("pkt") is not None:
        rec["pcap_cnt"] = ev["pkt"]
    rec["event_type"] = kind
    if src is not None:
        rec["src_ip"] = src
    pname = proto_name(proto)
    if pname in ("ICMP", "IPv6-ICMP"):
        if sport is not None:
            rec["icmp_type"] = sport
        if dport is not None:
            rec["icmp_code"] = dport
    elif sport is not None:
        rec["src_port"] = sport
    if dst is not None:
        rec["dest_ip"] = dst
    if dport is not None and pname not in ("ICMP", "IPv6-ICMP"):
        rec["dest_port"] = dport
    if pname is not None:
        rec["proto"] = pname
    if cid:
        rec["community_id"] = cid
    if ev.get("vlan") is not None:
        rec["vlan"] = [ev["vlan"]]
    ether = _ether(ev)
    if ether:
        rec["ether"] = ether
    return rec


def _obs_header(ev: Mapping[str, Any], kind: str, app_proto: str | None = None) -> EveRecord:
    rec = _header(ev, kind, float(ev.get("ts") or 0.0), ev.get("src"), ev.get("sport"), ev.get("dst"), ev.get("dport"))
    if app_proto:
        rec["app_proto"] = app_proto
    return rec


def _hex_colon(text: str) -> str:
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def _dhcp(ev: Mapping[str, Any]) -> EveRecord:
    rec = _obs_header(ev, "dhcp", "dhcp")
    msg_type = _int(ev.get("msg_type"))
    name, reply = DHCP_TYPES.get(msg_type or 0, ("unknown", ev.get("sport") == 67))
    d: dict[str, Any] = {"type": "reply" if reply else "request"}
    if ev.get("xid") is not None:
        d["id"] = ev["xid"]
    if ev.get("client_mac"):
        d["client_mac"] = ev["client_mac"]
    d["assigned_ip"] = ev.get("yiaddr") or "0.0.0.0"
    if ev.get("ciaddr"):
        d["client_ip"] = ev["ciaddr"]
    client_id = ev.get("client_id")
    if isinstance(client_id, str) and len(client_id) >= 4:
        # Suricata logs option 61 without its type byte (RFC 2132 9.14), colon-separated.
        d["client_id"] = _hex_colon(client_id[2:])
    if ev.get("hostname"):
        d["hostname"] = ev["hostname"]
    d["dhcp_type"] = name
    if ev.get("requested_ip"):
        d["requested_ip"] = ev["requested_ip"]
    params = ev.get("params")
    if isinstance(params, list) and params:
        d["params"] = [DHCP_PARAMS[p] for p in params if p in DHCP_PARAMS]
    if ev.get("vendor_class"):
        d["vendor_class_identifier"] = ev["vendor_class"]
    rec["dhcp"] = d
    return rec


def _tls_version(value: Any) -> str | None:
    if isinstance(value, int):
        return TLS_VERSIONS.get(value, f"0x{value:04x}")
    return None


def _tls(ev: Mapping[str, Any]) -> EveRecord:
    quic = bool(ev.get("quic"))
    kind = "quic" if quic else "tls"
    rec = _obs_header(ev, kind, kind)
    t: dict[str, Any] = {}
    if ev.get("sni"):
        t["sni"] = ev["sni"]
    if ev["type"] == "tls_client":
        versions = [v for v in ev.get("supported_versions") or [] if isinstance(v, int) and v & 0x0F0F != 0x0A0A]
        version = _tls_version(max(versions) if versions else ev.get("version"))
        if version and not quic:
            t["version"] = version
        if ev.get("ja3"):
            t["ja3"] = {"hash": ev["ja3"], "string": ev.get("ja3_string") or ""}
        if ev.get("ja4"):
            t["ja4"] = ev["ja4"]
        if ev.get("alpn"):
            t["client_alpns"] = list(ev["alpn"])
    else:
        version = _tls_version(ev.get("selected_version") or ev.get("version"))
        if version and not quic:
            t["version"] = version
        if ev.get("ja3s"):
            t["ja3s"] = {"hash": ev["ja3s"], "string": ev.get("ja3s_string") or ""}
        if ev.get("alpn"):
            t["server_alpns"] = list(ev["alpn"])
    rec[kind] = t
    return rec


def _rrtype(value: Any) -> str:
    if isinstance(value, int):
        return DNS_TYPES.get(value, f"TYPE{value}")
    return str(value)


def _dns(ev: Mapping[str, Any]) -> EveRecord:
    kind = str(ev.get("proto_name") or "dns")
    rec = _obs_header(ev, kind, kind)
    response = bool(ev.get("response"))
    d: dict[str, Any] = {"version": 3, "type": "response" if response else "request"}
    if ev.get("id") is not None:
        d["id"] = ev["id"]
    if response:
        rcode = _int(ev.get("rcode"))
        d["rcode"] = DNS_RCODES.get(rcode or 0, str(rcode))
    queries = ev.get("queries") or ([ev["query"]] if ev.get("query") else [])
    qtype = _rrtype(ev.get("qtype")) if ev.get("qtype") is not None else None
    d["queries"] = [{"rrname": q, **({"rrtype": qtype} if qtype else {})} for q in queries if isinstance(q, str)]
    answers = ev.get("answers") or []
    if response and answers:
        d["answers"] = [
            {"rrname": a.get("name"), "rrtype": _rrtype(a.get("type")), "ttl": a.get("ttl"), "rdata": a.get("data")}
            for a in answers
            if isinstance(a, Mapping)
        ]
    rec[kind] = d
    return rec


def _http(ev: Mapping[str, Any]) -> EveRecord:
    rec = _obs_header(ev, "http", "http")
    h: dict[str, Any] = {}
    for src_key, eve_key in (("host", "hostname"), ("uri", "url"), ("user_agent", "http_user_agent")):
        if ev.get(src_key):
            h[eve_key] = ev[src_key]
    if ev.get("method"):
        h["http_method"] = ev["method"]
    if ev.get("version"):
        version = str(ev["version"])
        h["protocol"] = version if version.startswith("HTTP/") else f"HTTP/{version}"
    rec["http"] = h
    return rec


def _ssh(ev: Mapping[str, Any]) -> EveRecord:
    rec = _obs_header(ev, "ssh", "ssh")
    side: dict[str, Any] = {}
    banner = str(ev.get("banner") or "")
    if banner.startswith("SSH-"):
        proto, _, software = banner[4:].partition("-")
        side["proto_version"] = proto
        side["software_version"] = software.split(" ", 1)[0]
    client = ev.get("role") != "server"
    hkey = "hassh" if client else "hassh_server"
    if ev.get(hkey):
        side["hassh"] = {"hash": ev[hkey], "string": ev.get(f"{hkey}_string") or ""}
    rec["ssh"] = {"client" if client else "server": side}
    return rec


def _flow(ev: Mapping[str, Any]) -> EveRecord:
    start, end = float(ev.get("ts_start") or 0.0), float(ev.get("ts_end") or 0.0)
    rec = _header(ev, "flow", start, ev.get("src"), ev.get("sport"), ev.get("dst"), ev.get("dport"))
    if ev.get("app"):
        rec["app_proto"] = ev["app"]
    pf, pr = int(ev.get("pkts_fwd") or 0), int(ev.get("pkts_rev") or 0)
    bf, br = int(ev.get("bytes_fwd") or 0), int(ev.get("bytes_rev") or 0)
    if ev.get("src_mac") or ev.get("dst_mac"):
        per_pkt = ETHER_HEADER + (VLAN_TAG if ev.get("vlan") is not None else 0)
        bf, br = bf + per_pkt * pf, br + per_pkt * pr
    reason = str(ev.get("end_reason") or "")
    if reason in ("fin", "rst"):
        state = "closed"
    elif pr > 0:
        state = "established"
    else:
        state = "new"
    f: dict[str, Any] = {
        "pkts_toserver": pf,
        "pkts_toclient": pr,
        "bytes_toserver": bf,
        "bytes_toclient": br,
        "start": timestamp(start),
        "end": timestamp(end),
        "age": int(end - start),
        "state": state,
        "reason": FLOW_REASONS.get(reason, "timeout"),
        "alerted": False,
    }
    rec["flow"] = f
    if ev.get("tcp_flags"):
        rec["tcp"] = {"tcp_flags_text": ev["tcp_flags"]}
    return rec


# Alert app fields -> the EVE object Suricata attaches to an alert of that app protocol.
_ALERT_APP: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "http": ("http", {"host": "hostname", "uri": "url", "user_agent": "http_user_agent", "method": "http_method"}),
    "tls": ("tls", {"sni": "sni", "ja3": "ja3", "ja4": "ja4"}),
    "dns": ("dns", {"query": "query"}),
}


def _alert(ev: Mapping[str, Any], categories: Mapping[str, str]) -> EveRecord:
    rec = _obs_header(ev, "alert")
    app = ev.get("app_fields") if ev.get("app_fields") is not None else ev.get("app")
    app_fields: Mapping[str, Any] = app if isinstance(app, Mapping) else {}
    app_proto = ev.get("app_proto") or (app if isinstance(app, str) else None)
    if not app_proto:
        for name, (_, keys) in _ALERT_APP.items():
            if any(k in app_fields for k in keys):
                app_proto = name
                break
    if app_proto:
        rec["app_proto"] = app_proto
    classtype = str(ev.get("classtype") or "")
    rec["alert"] = {
        "action": "blocked" if ev.get("action") in ("drop", "reject") else "allowed",
        "gid": ev.get("gid", 1),
        "signature_id": ev.get("sid", 0),
        "rev": ev.get("rev", 1),
        "signature": ev.get("msg", ""),
        "category": categories.get(classtype, classtype),
        "severity": ev.get("severity", 3),
    }
    if ev.get("rule_file"):
        rec["alert"]["metadata"] = {"rule_file": [ev["rule_file"]]}
    if app_proto in _ALERT_APP:
        key, names = _ALERT_APP[app_proto]
        if key == "dns" and app_fields.get("query"):
            rec["dns"] = {"queries": [{"rrname": app_fields["query"]}]}
        else:
            obj = {eve: app_fields[k] for k, eve in names.items() if app_fields.get(k) is not None}
            if key == "tls" and isinstance(obj.get("ja3"), str):
                obj["ja3"] = {"hash": obj["ja3"]}
            if obj:
                rec[key] = obj
    return rec


def device_summary(ev: Mapping[str, Any]) -> dict[str, Any]:
    """`veille.device`: what Veille concluded about a device (type, vendor, os, confidence, ...)."""
    os_ = ev.get("os") if isinstance(ev.get("os"), Mapping) else {}
    assert isinstance(os_, Mapping)
    names = [n.get("name") if isinstance(n, Mapping) else n for n in ev.get("names") or []]
    return {
        "mac": ev.get("mac"),
        "type": ev.get("device_type"),
        "vendor": ev.get("vendor"),
        "os": {"family": os_.get("family"), "version": os_.get("version")},
        "confidence": ev.get("confidence", 0.0),
        "randomized_mac": bool(ev.get("randomized_mac")),
        "ips": list(ev.get("ips") or []),
        "names": [n for n in names if n],
    }


def _device(ev: Mapping[str, Any]) -> EveRecord:
    ips = list(ev.get("ips") or [])
    ts = float(ev.get("last_seen") or ev.get("ts") or 0.0)
    rec: EveRecord = {"timestamp": timestamp(ts), "event_type": "veille_device"}
    if ips:
        rec["src_ip"] = ips[0]
    if ev.get("mac"):
        rec["ether"] = {"src_mac": ev["mac"]}
    rec["veille"] = {"device": device_summary(ev)}
    return rec


def _stats(ev: Mapping[str, Any]) -> EveRecord:
    ts = float(ev.get("ts") or 0.0)
    rec: EveRecord = {"timestamp": timestamp(ts), "event_type": "stats"}
    if ev["type"] == "health":
        rec["stats"] = {
            "uptime": int(ev.get("uptime") or 0),
            "capture": {
                "kernel_packets": ev.get("packets", 0),
                "kernel_drops": ev.get("drops_kernel", 0),
                "pipeline_drops": ev.get("drops_pipeline", 0),
            },
            "flow": {"active": ev.get("flows_live", 0)},
        }
        rec["veille"] = {
            "rules_version": ev.get("rules_version"),
            "fingerprints_version": ev.get("fingerprints_version"),
            "agent_version": ev.get("agent_version"),
        }
    else:
        rec["stats"] = {
            "decoder": {"pkts": ev.get("packets", 0), "bytes": ev.get("bytes", 0)},
            "flow": {"total": ev.get("flows", 0)},
        }
    return rec


Mapper = Callable[[Mapping[str, Any]], EveRecord]
_MAPPERS: Final[dict[str, Mapper]] = {
    "dhcp": _dhcp,
    "tls_client": _tls,
    "tls_server": _tls,
    "dns": _dns,
    "http": _http,
    "ssh": _ssh,
    "flow": _flow,
    "device": _device,
    "health": _stats,
    "stats": _stats,
}
EVE_EVENT_TYPES: Final = frozenset(
    {"alert", "dhcp", "tls", "quic", "dns", "mdns", "llmnr", "http", "ssh", "flow", "veille_device", "stats"}
)


class EveError(ValueError):
    """An event whose fields cannot be put in EVE form; the message names the event type and the problem."""


class EveConverter:
    """Converts events to EVE records; remembers devices (bounded) to add `veille.device` by source MAC.

    `host` becomes the EVE `host` field (Suricata's sensor name: the agent id), `site` goes to
    `veille.site`, `in_iface` to `in_iface`; `categories` maps a classtype to its description.
    """

    def __init__(
        self,
        host: str | None = None,
        site: str | None = None,
        in_iface: str | None = None,
        categories: Mapping[str, str] | None = None,
        max_devices: int = MAX_DEVICES,
    ) -> None:
        self.host = host
        self.site = site
        self.in_iface = in_iface
        self.categories: Mapping[str, str] = categories or {}
        self.max_devices = max_devices
        self.devices: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # Community IDs of flows that alerted, for `flow.alerted` (bounded like the device map).
        self.alerted: OrderedDict[str, None] = OrderedDict()
        self.invalid = 0

    def convert(self, event: Event | Mapping[str, Any]) -> EveRecord | None:
        """The EVE record of one event, or None for kinds EVE has no place for (ARP, p0f SYN, ...).

        Raises `EveError` naming the event type when a field has a shape EVE cannot take (an observation's
        open-ended fields come from agents and are only checked for size by the schema).
        """
        ev = flatten(event)
        kind = ev.get("type")
        try:
            if kind == "alert":
                rec = _alert(ev, self.categories)
            else:
                mapper = _MAPPERS.get(str(kind))
                if mapper is None:
                    return None
                rec = mapper(ev)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise EveError(f"{kind} event: {type(exc).__name__}: {exc}") from None
        cid = rec.get("community_id")
        if kind == "alert" and cid:
            self.alerted[cid] = None
            self.alerted.move_to_end(cid)
            if len(self.alerted) > self.max_devices:
                self.alerted.popitem(last=False)
        elif kind == "flow" and cid in self.alerted:
            rec["flow"]["alerted"] = True
        if kind == "device" and ev.get("mac"):
            self._remember(str(ev["mac"]), rec["veille"]["device"])
        elif ev.get("src_mac") in self.devices:
            rec.setdefault("veille", {})["device"] = self.devices[str(ev["src_mac"])]
        if self.in_iface:
            rec["in_iface"] = self.in_iface
        if self.host:
            rec["host"] = self.host
        if self.site:
            rec.setdefault("veille", {})["site"] = self.site
        return rec

    def convert_all(self, events: Iterable[Event | Mapping[str, Any]]) -> Iterator[EveRecord]:
        """Every EVE record of `events`, in order (events without an EVE form are skipped)."""
        for event in events:
            try:
                rec = self.convert(event)
            except EveError:
                self.invalid += 1
                continue
            if rec is not None:
                yield rec

    def _remember(self, mac: str, summary: dict[str, Any]) -> None:
        self.devices[mac] = summary
        self.devices.move_to_end(mac)
        while len(self.devices) > self.max_devices:
            self.devices.popitem(last=False)


def to_eve(event: Event | Mapping[str, Any], host: str | None = None) -> EveRecord | None:
    """One event as an EVE record (no device enrichment); None when EVE has no form for it."""
    return EveConverter(host=host).convert(event)


def is_ip(text: Any) -> bool:
    """True for IPv4/IPv6 text (used by EVE readers to check address fields)."""
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True
