"""IOC lists: IPs/CIDRs, domains (subdomains match), JA3/JA3S and JA4 fingerprints.

Plain text files, one indicator per line, `#` or `;` comments; each file is a list named after
the file's stem. The kind of each entry is recognised from its shape: an address or network,
a 32-hex MD5 (JA3/JA3S), a JA4 (`t13d1516h2_8daaf6152771_e5627efa2ab1`), else a domain. CSV
lines (abuse.ch SSLBL: `ja3_md5,firstseen,lastseen,reason` or `firstseen,ip,port`) use the
first field that is an indicator, and a trailing text field as the reason; hosts-file lines
(`0.0.0.0 bad.example`) give their name. Domains match the DNS query, the TLS SNI and the HTTP
Host, and any subdomain of them (by walking the name's label suffixes: O(labels)).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture.errors import VeilleError
from capture.packet import PROTO_NAMES, PROTO_TCP, PROTO_UDP, Packet, ip_text, mac_text
from signatures.alert import Alert
from signatures.rules.classification import default_classification

SID_IOC_IP = 9200001
SID_IOC_DOMAIN = 9200002
SID_IOC_JA3 = 9200003
SID_IOC_JA4 = 9200004
CLASSTYPE = "ioc-match"
# RFC 1035 §2.3.4: names are at most 255 octets; longer "domains" are not names.
MAX_NAME = 255
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_JA4 = re.compile(r"[tqd][0-9a-z]{2}[di][0-9]{2}[0-9]{2}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")
_DOMAIN = re.compile(
    r"(?=.{1,255}$)(?:\*\.)?(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+[A-Za-z][A-Za-z0-9-]*\.?"
)
_HOSTS_SINKS = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1"})


class IocFileError(VeilleError, ValueError):
    """An IOC file that cannot be read, or a line that is no indicator (file and line named)."""


@dataclass(frozen=True, slots=True)
class Indicator:
    kind: str  # ip, domain, ja3, ja4
    value: str
    list_name: str
    reason: str = ""


def classify(token: str) -> str | None:
    """The kind of one indicator string, or None."""
    t = token.strip()
    if _MD5.fullmatch(t):
        return "ja3"
    if _JA4.fullmatch(t):
        return "ja4"
    try:
        ipaddress.ip_network(t, strict=False)
        return "ip"
    except ValueError:
        pass
    if len(t) <= MAX_NAME and _DOMAIN.fullmatch(t) and not t.replace(".", "").isdigit():
        return "domain"
    return None


def parse_line(line: str, list_name: str, where: str) -> Indicator | None:
    """One indicator from one line, None for blanks and comments; IocFileError names `where`."""
    text = line.strip()
    if not text or text[0] in "#;":
        return None
    if "," in text:
        fields = [f.strip().strip('"') for f in text.split(",")]
        for i, f in enumerate(fields):
            kind = classify(f)
            if kind is not None and kind != "domain":
                rest = [x for x in fields[i + 1 :] if x and classify(x) is None and not x[:1].isdigit()]
                return Indicator(kind, _norm(kind, f), list_name, rest[-1] if rest else "")
        raise IocFileError(f"{where}: no IP, JA3 or JA4 in CSV line {text[:60]!r}")
    parts = text.split()
    if len(parts) >= 2 and parts[0] in _HOSTS_SINKS:
        token, reason = parts[1], ""
    else:
        token, reason = parts[0], " ".join(parts[1:]).lstrip("#; ")
    kind = classify(token)
    if kind is None:
        raise IocFileError(f"{where}: not an IP, network, domain, JA3 or JA4: {token[:60]!r}")
    return Indicator(kind, _norm(kind, token), list_name, reason)


def _norm(kind: str, v: str) -> str:
    if kind == "domain":
        return v.lower().rstrip(".").removeprefix("*.")
    if kind == "ip":
        net = ipaddress.ip_network(v, strict=False)
        return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
    return v.lower()


@dataclass
class IocSet:
    """Indicators from one or more lists, indexed for per-event lookups."""

    indicators: list[Indicator] = field(default_factory=list)
    _domains: dict[str, Indicator] = field(default_factory=dict)
    _hashes: dict[str, Indicator] = field(default_factory=dict)
    _nets: dict[int, tuple[list[int], list[tuple[int, int, Indicator]]]] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> IocSet:
        """Read IOC files; the list name of each is its file name without extension."""
        out: list[Indicator] = []
        for p in paths:
            path = Path(p)
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise IocFileError(f"{path}: {exc.strerror or exc}") from None
            name = path.stem
            for no, line in enumerate(text.splitlines(), 1):
                ind = parse_line(line, name, f"{path}:{no}")
                if ind is not None:
                    out.append(ind)
        return cls.from_indicators(out)

    @classmethod
    def from_indicators(cls, items: Iterable[Indicator]) -> IocSet:
        s = cls()
        spans: dict[int, list[tuple[int, int, Indicator]]] = {4: [], 6: []}
        for ind in items:
            s.indicators.append(ind)
            if ind.kind == "domain":
                s._domains.setdefault(ind.value, ind)
            elif ind.kind in ("ja3", "ja4"):
                s._hashes.setdefault(ind.value, ind)
            else:
                net = ipaddress.ip_network(ind.value)
                spans[net.version].append((int(net.network_address), int(net.broadcast_address), ind))
        for v, lst in spans.items():
            flat = _flatten(lst)
            s._nets[v] = ([lo for lo, _, _ in flat], flat)
        return s

    def __len__(self) -> int:
        return len(self.indicators)

    def lookup_ip(self, addr: bytes) -> Indicator | None:
        """The list entry covering a raw 4/16-byte address (most specific wins for nested ones)."""
        table = self._nets.get(4 if len(addr) == 4 else 6)
        if not table or not table[1]:
            return None
        starts, spans = table
        v = int.from_bytes(addr, "big")
        i = bisect_right(starts, v) - 1
        if i >= 0 and v <= spans[i][1]:
            return spans[i][2]
        return None

    def lookup_domain(self, name: str) -> Indicator | None:
        """The entry for `name` or the closest listed parent domain."""
        n = name.lower().rstrip(".")
        if not n or len(n) > MAX_NAME:
            return None
        doms = self._domains
        while True:
            hit = doms.get(n)
            if hit is not None:
                return hit
            dot = n.find(".")
            if dot < 0:
                return None
            n = n[dot + 1 :]

    def match_packet(self, pkt: Packet, flow: Any = None) -> list[Alert]:
        """Alerts for a packet whose source or destination is listed."""
        if not self._nets or not pkt.ip_version:
            return []
        out: list[Alert] = []
        for addr in (pkt.src, pkt.dst):
            ind = self.lookup_ip(addr)
            if ind is not None:
                out.append(_alert(ind, SID_IOC_IP, pkt, flow, {"ip": ip_text(addr)}))
        return out

    def match_observation(self, obs: Any) -> list[Alert]:
        """Alerts for an observation whose DNS query, SNI, HTTP host or JA3/JA4 is listed."""
        f = obs.fields
        t = obs.type
        out: list[Alert] = []
        if self._domains:
            name_field = {"dns": "query", "tls_client": "sni", "http": "host"}.get(t)
            if name_field is not None and not (t == "dns" and f.get("response")):
                name = f.get(name_field)
                if name:
                    host = str(name)
                    if t == "http" and host.count(":") == 1:
                        host = host.split(":", 1)[0]
                    ind = self.lookup_domain(host)
                    if ind is not None:
                        out.append(_alert(ind, SID_IOC_DOMAIN, obs.pkt, obs.flow, {name_field: name}))
        if self._hashes and t in ("tls_client", "tls_server"):
            for key in ("ja3", "ja4") if t == "tls_client" else ("ja3s",):
                v = f.get(key)
                ind = self._hashes.get(str(v).lower()) if v else None
                if ind is not None:
                    sid = SID_IOC_JA4 if ind.kind == "ja4" else SID_IOC_JA3
                    out.append(_alert(ind, sid, obs.pkt, obs.flow, {key: v}))
        return out


def _flatten(spans: list[tuple[int, int, Indicator]]) -> list[tuple[int, int, Indicator]]:
    """Disjoint segments, each owned by the most specific network covering it (CIDRs nest or are disjoint)."""
    out: list[tuple[int, int, Indicator]] = []
    stack: list[tuple[int, int, Indicator]] = []
    pos = 0

    def emit(lo: int, hi: int, ind: Indicator) -> None:
        if lo <= hi:
            out.append((lo, hi, ind))

    for lo, hi, ind in sorted(spans, key=lambda x: (x[0], -x[1])):
        while stack and stack[-1][1] < lo:
            top = stack.pop()
            emit(pos, top[1], top[2])
            pos = top[1] + 1
        if stack:
            emit(pos, lo - 1, stack[-1][2])
        stack.append((lo, hi, ind))
        pos = lo
    while stack:
        top = stack.pop()
        emit(pos, top[1], top[2])
        pos = top[1] + 1
    return out


def _alert(ind: Indicator, sid: int, pkt: Packet, flow: Any, app: dict[str, Any]) -> Alert:
    ct = default_classification().get(CLASSTYPE)
    ported = pkt.proto in (PROTO_TCP, PROTO_UDP)
    reason = f" ({ind.reason})" if ind.reason else ""
    return Alert(
        ts=pkt.ts,
        sid=sid,
        gid=1,
        rev=1,
        msg=f"IOC list {ind.list_name}: {ind.kind} {ind.value}{reason}",
        classtype=CLASSTYPE,
        severity=ct.priority if ct else 1,
        src=ip_text(pkt.src) or None,
        sport=pkt.sport if ported else None,
        dst=ip_text(pkt.dst) or None,
        dport=pkt.dport if ported else None,
        proto=PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
        community_id=flow.community_id if flow is not None else None,
        app={**app, "list": ind.list_name, "indicator": ind.value},
        rule_file=ind.list_name,
        src_mac=mac_text(pkt.src_mac) or None,
    )
