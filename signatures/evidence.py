"""Observations matched against knowledge: `Evidence` about the device that sent them.

`evidence_from_observation(event)` takes one observation event (the dicts of docs/events.md)
and returns what it suggests about its sender: vendor, OS family and version, device type,
each with a weight in (0, 1] and the source protocol and value it rests on. It is pure: the
DHCP database is passed in (or loaded once, lazily, from the packaged file). Which device the
event belongs to (client MAC, source MAC, locality) is the inventory's business, not this one's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from signatures.dhcp_fp import DhcpDatabase, DhcpMatch, fingerprint_text
from signatures.services import (
    NBNS_SUFFIX_HINTS,
    Hint,
    hostname_hints,
    mdns_service_hint,
    model_hint,
    oui_vendor_hint,
    parse_txt,
    ssdp_server_hints,
    ssdp_type_hint,
    txt_hints,
)
from signatures.useragent import parse_user_agent

MAX_VALUE_LEN = 200  # evidence values are shown to operators; longer observed values are cut
MAX_ANSWERS = 64  # mDNS answers examined per packet (a full 9000-byte packet holds ~100)
_DHCP_CLIENT_MSGS = frozenset((1, 3, 4, 7, 8))  # discover, request, decline, release, inform (RFC 2132 §9.6)
_DHCP_SERVER_MSGS = frozenset((2, 5, 6))  # offer, ack, nak
_DNS_PTR, _DNS_TXT, _DNS_A, _DNS_AAAA, _DNS_SRV = 12, 16, 1, 28, 33
_NBNS_REGISTRATION_OPCODES = frozenset((5, 8, 9))  # registration, refresh, multi-homed (RFC 1002 §4.2.1.1)


@dataclass(frozen=True, slots=True)
class Suggests:
    vendor: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    device_type: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {}
        for key in ("vendor", "os_family", "os_version", "device_type"):
            v = getattr(self, key)
            if v:
                out[key] = v
        return out

    def __bool__(self) -> bool:
        return bool(self.vendor or self.os_family or self.device_type)


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class Evidence:
    """One observed value and what it suggests about its sender."""

    source: str
    value: str
    suggests: Suggests
    weight: float
    first_seen: float
    last_seen: float
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity for de-duplication: one value can carry several distinct hints (OS and product)."""
        return (self.source, self.value, self.note)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "value": self.value,
            "suggests": self.suggests.as_dict(),
            "weight": round(self.weight, 3),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "note": self.note,
        }


@functools.lru_cache(maxsize=4096)
def _suggests(vendor: str | None, os_family: str | None, os_version: str | None, device_type: str | None) -> Suggests:
    """Shared instances: thousands of devices carry the same few suggestions."""
    return Suggests(vendor, os_family, os_version, device_type)


@functools.lru_cache(maxsize=1024)
def _match_note(name: str, how: str, source: str) -> str:
    return f"{name} ({how}; {source})"


def _ev(source: str, value: str, hint: Hint, ts: float) -> Evidence:
    s = _suggests(hint.vendor, hint.os_family, hint.os_version, hint.device_type)
    return Evidence(source, value[:MAX_VALUE_LEN], s, hint.weight, ts, ts, hint.why)


@functools.cache
def default_dhcp_db() -> DhcpDatabase:
    """The packaged DHCP fingerprint database, loaded on first use."""
    return DhcpDatabase.load()


# ---------------------------------------------------------------- static maps

# p0f label names (p0f.fp `label = s:class:NAME:flavor`) -> OS family; `None` version unless specific.
_P0F_NAMES: tuple[tuple[str, Hint], ...] = (
    ("Windows XP", Hint(0.35, os_family="Windows", os_version="XP", why="p0f TCP/IP stack signature")),
    ("Windows", Hint(0.35, os_family="Windows", why="p0f TCP/IP stack signature")),
    ("Linux (Android)", Hint(0.35, os_family="Android", why="p0f TCP/IP stack signature")),
    ("Linux", Hint(0.25, os_family="Linux", why="p0f TCP/IP stack signature (also Android, ChromeOS, IoT)")),
    ("iOS", Hint(0.35, os_family="iOS", vendor="Apple", why="p0f TCP/IP stack signature")),
    ("Mac OS X", Hint(0.3, os_family="Darwin", vendor="Apple", why="p0f: Apple stack (macOS, sometimes iOS)")),
    ("MacOS X", Hint(0.3, os_family="Darwin", vendor="Apple", why="p0f: Apple stack (macOS, sometimes iOS)")),
    ("FreeBSD", Hint(0.3, os_family="FreeBSD", why="p0f TCP/IP stack signature")),
    ("OpenBSD", Hint(0.3, os_family="OpenBSD", why="p0f TCP/IP stack signature")),
    ("Solaris", Hint(0.3, os_family="Solaris", why="p0f TCP/IP stack signature")),
    ("Nintendo", Hint(0.4, "game console", vendor="Nintendo", why="p0f TCP/IP stack signature")),
    ("BlackBerry", Hint(0.4, "phone", "BlackBerry", why="p0f TCP/IP stack signature")),
)
# Connectivity checks each OS makes when it joins a network (host names from each vendor's docs).
_PROBE_HOSTS = {
    "captive.apple.com": Hint(0.35, os_family="Darwin", vendor="Apple", why="Apple captive-portal check"),
    "www.msftconnecttest.com": Hint(0.4, os_family="Windows", why="Windows NCSI connectivity check"),
    "www.msftncsi.com": Hint(0.4, os_family="Windows", why="Windows NCSI connectivity check"),
    "dns.msftncsi.com": Hint(0.4, os_family="Windows", why="Windows NCSI connectivity check"),
    "connectivitycheck.gstatic.com": Hint(0.35, os_family="Android", why="Android captive-portal check"),
    "connectivitycheck.android.com": Hint(0.35, os_family="Android", why="Android captive-portal check"),
    "nmcheck.gnome.org": Hint(0.35, os_family="Linux", why="NetworkManager connectivity check"),
    "connectivity-check.ubuntu.com": Hint(0.35, os_family="Linux", why="Ubuntu connectivity check"),
}
_SSH_BANNERS: tuple[tuple[re.Pattern[str], Hint], ...] = tuple(
    (re.compile(p), h)
    for p, h in (
        (r"OpenSSH_for_Windows", Hint(0.5, os_family="Windows", why="Windows OpenSSH port")),
        (r"Raspbian", Hint(0.5, "iot", "Linux", vendor="Raspberry Pi", why="Raspbian OpenSSH package")),
        (r"\b(Debian|Ubuntu)\b", Hint(0.4, os_family="Linux", why="distribution OpenSSH package")),
        (r"FreeBSD", Hint(0.4, os_family="FreeBSD", why="FreeBSD OpenSSH package")),
        (r"dropbear", Hint(0.3, "iot", "Linux", why="Dropbear SSH (embedded Linux)")),
        (r"^SSH-[\d.]+-Cisco-", Hint(0.6, "network equipment", vendor="Cisco", why="Cisco IOS SSH")),
        (r"^SSH-[\d.]+-ROSSSH", Hint(0.7, "network equipment", vendor="MikroTik", why="RouterOS SSH")),
        (r"^SSH-[\d.]+-HUAWEI-", Hint(0.6, "network equipment", vendor="Huawei", why="Huawei VRP SSH")),
    )
)
# OpenSSH package versions -> distribution release (Ubuntu and Debian package archives).
_SSH_RELEASES = (
    ("OpenSSH_7.6p1 Ubuntu-4", "Ubuntu 18.04"),
    ("OpenSSH_8.2p1 Ubuntu-4", "Ubuntu 20.04"),
    ("OpenSSH_8.9p1 Ubuntu-3", "Ubuntu 22.04"),
    ("OpenSSH_9.6p1 Ubuntu-3", "Ubuntu 24.04"),
    ("OpenSSH_8.4p1 Debian-5", "Debian 11"),
    ("OpenSSH_9.2p1 Debian-2", "Debian 12"),
)
_DHCP_SERVER_HINT = Hint(0.4, "network equipment", why="serves DHCP (routers on most site LANs; servers too)")
_WINDOWS_ITTL = Hint(0.15, os_family="Windows", why="initial TTL 128 (Windows stacks)")


def p0f_hint(label: str) -> Hint | None:
    """What a p0f label (`os=` text) suggests."""
    for name, hint in _P0F_NAMES:
        if label.startswith(name):
            return hint
    return None


def evidence_from_vendor(vendor: str, ts: float) -> list[Evidence]:
    """Evidence from the MAC's registered organisation."""
    hint = oui_vendor_hint(vendor)
    base = Hint(0.3, vendor=vendor, why="IEEE registry owner of the MAC block")
    if hint is not None:
        base = Hint(max(hint.weight, base.weight), hint.device_type, hint.os_family, vendor=vendor, why=hint.why)
    return [_ev("oui", vendor, base, ts)]


# ---------------------------------------------------------------- per observation type


def _dhcp(event: Mapping[str, Any], ts: float, db: DhcpDatabase) -> list[Evidence]:
    if event.get("msg_type") not in _DHCP_CLIENT_MSGS:
        return []
    out: list[Evidence] = []
    params = event.get("params") or []
    vc = event.get("vendor_class") or None
    matches = db.match_v4(params, vc)
    best_params = next((m for m in matches if m.how in ("exact", "prefix", "subset")), None)
    if best_params is not None:
        out.append(_from_match("dhcp", fingerprint_text(params), best_params, ts))
    for m in matches:
        if m.how == "vendor_class" and vc:
            out.append(_from_match("dhcp_vendor_class", vc, m, ts))
            break
    host = event.get("hostname")
    if host:
        out.extend(_ev("dhcp_hostname", host, h, ts) for h in hostname_hints(host))
    return out


def _from_match(source: str, value: str, m: DhcpMatch, ts: float) -> Evidence:
    e = m.entry
    s = _suggests(e.vendor or None, e.os_family or None, m.os_version or None, e.device_type or None)
    weight = e.weight * (0.8 if m.how == "subset" else 1.0)  # a subset match says less than an exact one
    return Evidence(source, value[:MAX_VALUE_LEN], s, weight, ts, ts, _match_note(e.name, m.how, e.source))


def _dhcp6(event: Mapping[str, Any], ts: float, db: DhcpDatabase) -> list[Evidence]:
    out: list[Evidence] = []
    oro = event.get("oro") or []
    ent = event.get("enterprise")
    vc = event.get("vendor_class") or None
    for m in db.match_v6(oro, ent, vc)[:1]:
        value = f"oro={fingerprint_text(oro)};enterprise={ent};vendor_class={vc or ''}"
        out.append(_from_match("dhcp6", value, m, ts))
    fqdn = event.get("fqdn")
    if fqdn:
        out.extend(_ev("dhcp6_fqdn", fqdn, h, ts) for h in hostname_hints(fqdn.split(".")[0]))
    return out


def _records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Answer and additional records (mDNS responders put SRV, TXT and A in the additional section)."""
    return ((event.get("answers") or []) + (event.get("additionals") or []))[:MAX_ANSWERS]


def _dns(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    proto = event.get("proto_name")
    out: list[Evidence] = []
    if proto == "dns" and not event.get("response"):
        hint = _PROBE_HOSTS.get((event.get("query") or "").lower().rstrip("."))
        if hint is not None:
            out.append(_ev("dns_query", event["query"], hint, ts))
        return out
    if not event.get("response"):
        return out  # mDNS/LLMNR queries ask about others
    for ans in _records(event):
        name, rtype, data = ans.get("name") or "", ans.get("type"), ans.get("data") or ""
        if proto == "mdns":
            if rtype == _DNS_PTR:
                svc = mdns_service_hint(data) or mdns_service_hint(name)
                if svc is not None and not name.startswith("_services._dns-sd"):
                    out.append(_ev("mdns_service", svc[0], svc[1], ts))
            elif rtype == _DNS_SRV:
                svc = mdns_service_hint(name)
                if svc is not None:
                    out.append(_ev("mdns_service", svc[0], svc[1], ts))
            elif rtype == _DNS_TXT:
                for value, hint in txt_hints(parse_txt(data)):
                    out.append(_ev("mdns_txt", value, hint, ts))
        if rtype in (_DNS_A, _DNS_AAAA) and name:
            host = name.rstrip(".").removesuffix(".local")
            out.extend(_ev(f"{proto}_name", host, h, ts) for h in hostname_hints(host))
    return out


def _nbns(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    if not (event.get("response") or event.get("opcode") in _NBNS_REGISTRATION_OPCODES):
        return []  # a query names someone else
    name = event.get("name") or ""
    out = [_ev("nbns_name", name, h, ts) for h in hostname_hints(name)]
    hint = NBNS_SUFFIX_HINTS.get(event.get("suffix") or 0)
    if hint is not None:
        out.append(_ev("nbns_suffix", f"{name}<{event.get('suffix', 0):02x}>", hint, ts))
    return out


def _ssdp(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    out: list[Evidence] = []
    method = event.get("method")
    if method in ("NOTIFY", "HTTP"):
        kind = event.get("nt") if method == "NOTIFY" else event.get("st")
        if kind:
            hint = ssdp_type_hint(kind)
            if hint is not None:
                out.append(_ev("ssdp_type", kind, hint, ts))
        server = event.get("server")
        if server:
            out.extend(_ev("ssdp_server", server, h, ts) for h in ssdp_server_hints(server))
    elif method == "M-SEARCH":
        ua = event.get("user_agent")
        if ua:
            out.extend(_ev("ssdp_user_agent", ua, h, ts) for h in ssdp_server_hints(ua))
    return out


def _http(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    out: list[Evidence] = []
    host = (event.get("host") or "").lower().split(":")[0]
    hint = _PROBE_HOSTS.get(host)
    if hint is not None:
        out.append(_ev("http_host", host, hint, ts))
    ua = event.get("user_agent")
    if not ua:
        return out
    info = parse_user_agent(ua)
    if info.bot or not (info.os_family or info.device_type):
        return out
    weight = 0.6 if info.device_type in ("phone", "tablet", "chromebook", "tv/streamer", "game console") else 0.45
    model = model_hint(info.device_family) if info.device_family else None
    vendor = info.device_brand if info.device_brand not in (None, "Generic", "Spider") else None
    why = f"User-Agent: {info.browser or '?'} on {info.os_family or '?'} ({info.device_family or 'no device'})"
    h = Hint(weight, info.device_type, info.os_family, info.os_version, vendor or (model.vendor if model else None))
    out.append(_ev("http_user_agent", ua, Hint(h.weight, h.device_type, h.os_family, h.os_version, h.vendor, why), ts))
    return out


def _ssh(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    banner = event.get("banner") or ""
    hint = next((h for rx, h in _SSH_BANNERS if rx.search(banner)), None)
    release = next((rel for prefix, rel in _SSH_RELEASES if prefix in banner), None)
    if hint is not None and release is not None:
        hint = Hint(hint.weight, hint.device_type, hint.os_family, release, hint.vendor, hint.why)
    if event.get("role") == "server" and (hint is None or hint.device_type is None):
        base = hint or Hint(0.3)
        why = (base.why + "; " if base.why else "") + "runs an SSH server"
        hint = Hint(base.weight, "server", base.os_family, base.os_version, base.vendor, why)
    return [_ev("ssh_banner", banner, hint, ts)] if hint is not None else []


def dhcp_server_evidence(event: Mapping[str, Any]) -> list[Evidence]:
    """Evidence about the sender of a DHCP offer, ack or nak: it serves addresses."""
    if event.get("type") != "dhcp" or event.get("msg_type") not in _DHCP_SERVER_MSGS:
        return []
    ts = float(event.get("ts") or 0.0)
    value = str(event.get("server_id") or event.get("src") or "")
    return [_ev("dhcp_server", value, _DHCP_SERVER_HINT, ts)]


def _tcp_syn(event: Mapping[str, Any], ts: float) -> list[Evidence]:
    out: list[Evidence] = []
    label = event.get("p0f")
    if label:
        hint = p0f_hint(label)
        if hint is not None:
            out.append(_ev("tcp_syn", label, hint, ts))
    ttl = event.get("ttl")
    if not label and isinstance(ttl, int) and 64 < ttl <= 128 and not event.get("synack"):
        out.append(_ev("ttl", "initial TTL 128", _WINDOWS_ITTL, ts))
    return out


_Handler = Callable[[Mapping[str, Any], float], list[Evidence]]
_HANDLERS: dict[str, _Handler] = {
    "dns": _dns,
    "nbns": _nbns,
    "ssdp": _ssdp,
    "http": _http,
    "ssh": _ssh,
    "tcp_syn": _tcp_syn,
}


def evidence_from_observation(event: Mapping[str, Any], dhcp_db: DhcpDatabase | None = None) -> list[Evidence]:
    """Evidence about the sender of one observation event; [] when it says nothing."""
    kind = event.get("type")
    ts = float(event.get("ts") or 0.0)
    if kind == "dhcp":
        return _dhcp(event, ts, dhcp_db or default_dhcp_db())
    if kind == "dhcp6":
        return _dhcp6(event, ts, dhcp_db or default_dhcp_db())
    handler = _HANDLERS.get(kind or "")
    return handler(event, ts) if handler is not None else []


def names_from_observation(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, source) pairs a device announces for itself in this event."""
    kind = event.get("type")
    out: list[tuple[str, str]] = []
    if kind == "dhcp" and event.get("hostname") and event.get("msg_type") in _DHCP_CLIENT_MSGS:
        out.append((event["hostname"], "dhcp"))
    elif kind == "dhcp6" and event.get("fqdn"):
        out.append((event["fqdn"], "dhcp6"))
    elif (
        kind == "nbns"
        and event.get("name")
        and (event.get("response") or event.get("opcode") in _NBNS_REGISTRATION_OPCODES)
    ):
        out.append((event["name"], "nbns"))
    elif kind == "dns" and event.get("response") and event.get("proto_name") in ("mdns", "llmnr"):
        for ans in _records(event):
            if ans.get("type") in (_DNS_A, _DNS_AAAA) and ans.get("name"):
                out.append((ans["name"].rstrip("."), event["proto_name"]))
    return [(n, src) for n, src in out[:MAX_ANSWERS] if n and not n.startswith("*")]  # "*": NBSTAT wildcard
