"""LAN hygiene detections: stateful checks over the event stream of one site.

`LanDetector.observe(event)` takes every observation, flow and arp/ndp event (dicts of the replay
contract) and returns `Alert`s. Each detection has its own sid range, a classtype of the
project's table, and alerts once per offender until its re-alert interval has passed:
- 9000001..: rogue DHCP server (offer/ack from a server outside the allowed list);
- 9000010..: ARP/NDP: gateway MAC change (9000010), an address claimed by a new MAC (9000011)
  unless a legitimate DHCP server just leased that address to that MAC (MAC randomisation);
- 9000020..: new device in a closed segment;
- 9000030..: port scans, horizontal (one port, many hosts: 9000030) and vertical (one host,
  many ports: 9000031), counted over a sliding window of event time. As in Zeek's scan.zeek,
  only failed attempts count (flows never answered, or TCP flows reset without a FIN), so a
  busy client opening many ordinary connections is not a scanner;
- 9000040..: a device using a DNS resolver that is not one of the site's.
Time is the events' own `ts`; every table is bounded by `max_tracked` (oldest dropped).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from signatures.alert import Alert
from signatures.rules.classification import default_classification

SID_ROGUE_DHCP = 9000001
SID_GATEWAY_MAC = 9000010
SID_ARP_NEW_MAC = 9000011
SID_CLOSED_SEGMENT = 9000020
SID_SCAN_HORIZONTAL = 9000030
SID_SCAN_VERTICAL = 9000031
SID_ROGUE_RESOLVER = 9000040

# RFC 2131 message types sent by servers.
_DHCP_SERVER_MSGS = frozenset({"offer", "ack", "nak"})
_DNS_PORT = 53  # RFC 1035
_ZERO_MACS = frozenset({"", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Keys of a [detections] table (the agent config's DetectionsSection names, and their older aliases).
_LAN_KEYS = frozenset({
    "gateways", "closed_segments", "known_macs", "allowed_dhcp_servers", "dhcp_servers", "site_resolvers",
    "resolvers", "scan_port_threshold", "scan_host_threshold", "scan_window", "learn_seconds",
    "realert_seconds", "max_tracked",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class LanConfig:
    """Site knowledge for the detections; empty lists turn the matching detection off."""

    dhcp_servers: tuple[str, ...] = ()  # server IPs or MACs allowed to answer DHCP
    gateways: tuple[tuple[str, str | None], ...] = ()  # (ip, pinned mac or None)
    resolvers: tuple[str, ...] = ()
    closed_segments: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (cidr, known MACs)
    # Zeek's scan.zeek defaults: 15 ports on one host or 25 hosts on one port within 5 minutes.
    scan_port_threshold: int = 15
    scan_host_threshold: int = 25
    scan_window: float = 300.0
    # Devices seen in a closed segment during this many seconds after the first event are known.
    learn_seconds: float = 0.0
    # An offender alerts again only after this long (one hour: one alert per shift, not per packet).
    realert_seconds: float = 3600.0
    # Bound on every table (bindings, devices, scan sources, alert memory).
    max_tracked: int = 65536

    @classmethod
    def from_any(cls, cfg: Any) -> LanConfig:
        """Build from a mapping (the TOML [detections] table) or an object with those attributes."""
        if isinstance(cfg, LanConfig):
            return cfg
        if isinstance(cfg, Mapping):
            unknown = sorted(set(cfg) - _LAN_KEYS)
            if unknown:
                raise ValueError(f"detections.{unknown[0]}: unknown key (known: {', '.join(sorted(_LAN_KEYS))})")
        get = cfg.get if isinstance(cfg, Mapping) else (lambda k, d=None: getattr(cfg, k, d))

        def num(key: str, kind: type[int] | type[float], default: float) -> Any:
            value = get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"detections.{key}: expected a number, got {value!r}")
            return kind(value)

        gateways: list[tuple[str, str | None]] = []
        for g in get("gateways", ()) or ():
            ip, _, mac = str(g).partition("=")
            gateways.append((ip.strip(), mac.strip().lower() or None))
        closed_raw = get("closed_segments", ()) or ()
        closed: list[tuple[str, tuple[str, ...]]] = []
        if isinstance(closed_raw, Mapping):
            for cidr, macs in closed_raw.items():
                closed.append((str(cidr), tuple(m.lower() for m in (macs if isinstance(macs, list | tuple) else ()))))
        else:
            closed = [(str(c), tuple(m.lower() for m in get("known_macs", ()) or ())) for c in closed_raw]
        servers = get("allowed_dhcp_servers", None) or get("dhcp_servers", ()) or ()
        resolvers = get("site_resolvers", None) or get("resolvers", ()) or ()
        d = cls()
        return cls(
            dhcp_servers=tuple(str(s).lower() for s in servers),
            gateways=tuple(gateways),
            resolvers=tuple(str(r) for r in resolvers),
            closed_segments=tuple(closed),
            scan_port_threshold=num("scan_port_threshold", int, d.scan_port_threshold),
            scan_host_threshold=num("scan_host_threshold", int, d.scan_host_threshold),
            scan_window=num("scan_window", float, d.scan_window),
            learn_seconds=num("learn_seconds", float, d.learn_seconds),
            realert_seconds=num("realert_seconds", float, d.realert_seconds),
            max_tracked=num("max_tracked", int, d.max_tracked),
        )


def _is_probe(ev: Mapping[str, Any]) -> bool:
    """A flow that looks like a failed connection attempt (unanswered, or reset without FIN)."""
    if not ev.get("pkts_rev"):
        return True
    flags = str(ev.get("tcp_flags") or "")
    return ev.get("proto") == "tcp" and "R" in flags and "F" not in flags and int(ev.get("pkts_fwd") or 0) <= 3


class _Bounded(OrderedDict[Any, Any]):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)


@dataclass(slots=True)
class _ScanState:
    # (ts, dst, dport) of recent attempts by one source
    events: deque[tuple[float, str, int]] = field(default_factory=deque)


class LanDetector:
    """Stateful LAN hygiene checks over replay/live events."""

    def __init__(self, config: Any) -> None:
        self.config = c = LanConfig.from_any(config)
        self._classes = default_classification()
        self._gateways = {ip: mac for ip, mac in c.gateways}
        self._resolvers = frozenset(c.resolvers)
        self._dhcp_allowed = frozenset(c.dhcp_servers)
        self._closed: list[tuple[Network, frozenset[str]]] = [
            (ipaddress.ip_network(cidr, strict=False), frozenset(macs)) for cidr, macs in c.closed_segments
        ]
        self._bindings = _Bounded(c.max_tracked)  # ip -> mac
        self._leases = _Bounded(c.max_tracked)  # ip -> mac the (allowed) DHCP server acknowledged
        self._seen = _Bounded(c.max_tracked)  # (segment, mac) -> first ts
        self._scans = _Bounded(c.max_tracked)  # src -> _ScanState
        self._alerted = _Bounded(c.max_tracked)  # (sid, key) -> last alert ts
        self._first_ts: float | None = None

    def observe(self, event: Mapping[str, Any]) -> list[Alert]:
        """Alerts raised by one event (observation, flow, arp or ndp)."""
        ts = float(event.get("ts") or event.get("ts_start") or 0.0)
        if self._first_ts is None:
            self._first_ts = ts
        kind = event.get("type")
        out: list[Alert] = []
        if kind == "dhcp":
            self._dhcp(event, ts, out)
        elif kind in ("arp", "ndp"):
            self._binding(event, ts, out)
        elif kind == "dns":
            self._resolver(event, ts, out)
        if kind == "flow" and _is_probe(event):
            self._scan(event, ts, out)
        if self._closed:
            self._closed_segment(event, ts, out)
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _alert(self, out: list[Alert], sid: int, key: Any, ts: float, msg: str, classtype: str,
               event: Mapping[str, Any], **extra: Any) -> None:  # fmt: skip
        last = self._alerted.get((sid, key))
        if last is not None and ts - last < self.config.realert_seconds:
            return
        self._alerted.put((sid, key), ts)
        ct = self._classes.get(classtype)
        out.append(
            Alert(
                ts=ts,
                sid=sid,
                gid=1,
                rev=1,
                msg=msg,
                classtype=classtype,
                severity=ct.priority if ct else 2,
                src=extra.pop("src", event.get("src")),
                sport=event.get("sport"),
                dst=extra.pop("dst", event.get("dst")),
                dport=event.get("dport"),
                proto=event.get("proto"),
                community_id=event.get("community_id"),
                app=extra,
                rule_file=None,
                src_mac=extra.pop("src_mac", None) or event.get("src_mac") or event.get("sender_mac"),
            )
        )

    # -- detections ----------------------------------------------------------------------------

    def _dhcp(self, ev: Mapping[str, Any], ts: float, out: list[Alert]) -> None:
        if ev.get("msg_type_name") not in _DHCP_SERVER_MSGS:
            return
        server_ip = str(ev.get("server_id") or ev.get("src") or "")
        server_mac = str(ev.get("src_mac") or "").lower()
        allowed = self._dhcp_allowed
        if not allowed or server_ip in allowed or (ev.get("src") or "") in allowed or server_mac in allowed:
            # A lease from a legitimate server: a device that changes its (randomised) MAC and gets
            # its address again is not spoofing it.
            ip, mac = ev.get("yiaddr"), str(ev.get("client_mac") or "").lower()
            if ev.get("msg_type_name") == "ack" and ip and ip != "0.0.0.0" and mac not in _ZERO_MACS:
                self._leases.put(str(ip), mac)
            return
        self._alert(out, SID_ROGUE_DHCP, (server_ip, server_mac), ts,
                    f"Rogue DHCP server {server_ip} ({server_mac}) sent a {ev.get('msg_type_name')}",
                    "rogue-dhcp", ev, server_id=server_ip, server_mac=server_mac)  # fmt: skip

    def _binding(self, ev: Mapping[str, Any], ts: float, out: list[Alert]) -> None:
        if ev.get("type") == "arp":
            ip, mac = ev.get("sender_ip"), str(ev.get("sender_mac") or "").lower()
        else:
            if ev.get("ndp_type") != "na":
                return
            ip, mac = ev.get("target"), str(ev.get("lladdr") or ev.get("src_mac") or "").lower()
        if not ip or ip in ("0.0.0.0", "::") or mac in _ZERO_MACS:
            return
        ip = str(ip)
        pinned = self._gateways.get(ip)
        previous = self._bindings.get(ip)
        self._bindings.put(ip, mac)
        if ip in self._gateways and ((pinned is not None and mac != pinned) or
                                     (pinned is None and previous is not None and previous != mac)):  # fmt: skip
            expected = pinned or previous
            self._alert(out, SID_GATEWAY_MAC, (ip, mac), ts,
                        f"Gateway {ip} announced by {mac}, expected {expected}", "arp-spoofing", ev,
                        src=ip, src_mac=mac, ip=ip, mac=mac, previous_mac=expected)  # fmt: skip
        elif previous is not None and previous != mac and ip not in self._gateways and self._leases.get(ip) != mac:
            self._alert(out, SID_ARP_NEW_MAC, (ip, mac), ts,
                        f"Address {ip} moved from {previous} to {mac} (possible ARP spoofing)", "arp-spoofing",
                        ev, src=ip, src_mac=mac, ip=ip, mac=mac, previous_mac=previous)  # fmt: skip

    def _closed_segment(self, ev: Mapping[str, Any], ts: float, out: list[Alert]) -> None:
        if ev.get("type") == "arp":
            ip, mac = ev.get("sender_ip"), ev.get("sender_mac")
        elif ev.get("type") == "flow":
            return
        else:
            ip, mac = ev.get("src"), ev.get("src_mac")
        if not ip or not mac:
            return
        mac = str(mac).lower()
        if mac in _ZERO_MACS:
            return
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return
        for net, known in self._closed:
            if addr.version != net.version or addr not in net or mac in known:
                continue
            key = (str(net), mac)
            if key in self._seen:
                continue
            self._seen.put(key, ts)
            learning = self._first_ts is not None and ts - self._first_ts < self.config.learn_seconds
            if not learning:
                self._alert(out, SID_CLOSED_SEGMENT, key, ts, f"New device {mac} ({ip}) in closed segment {net}",
                            "unknown-device", ev, segment=str(net), mac=mac)  # fmt: skip

    def _scan(self, ev: Mapping[str, Any], ts: float, out: list[Alert]) -> None:
        if ev.get("proto") not in ("tcp", "udp") or ev.get("dport") is None:
            return
        src, dst, dport = str(ev.get("src")), str(ev.get("dst")), int(ev["dport"])
        c = self.config
        st = self._scans.get(src)
        if st is None:
            st = _ScanState()
        self._scans.put(src, st)
        q = st.events
        q.append((ts, dst, dport))
        while q and ts - q[0][0] > c.scan_window:
            q.popleft()
        # Keep the window bounded: far more than any threshold needs.
        while len(q) > 4 * max(c.scan_host_threshold, c.scan_port_threshold) + 64:
            q.popleft()
        hosts = {d for _, d, p in q if p == dport}
        if len(hosts) >= c.scan_host_threshold:
            self._alert(out, SID_SCAN_HORIZONTAL, (src, dport), ts,
                        f"Horizontal port scan from {src}: port {dport} on {len(hosts)} hosts", "network-scan",
                        ev, dst=None, hosts=len(hosts), port=dport)  # fmt: skip
        ports = {p for _, d, p in q if d == dst}
        if len(ports) >= c.scan_port_threshold:
            self._alert(out, SID_SCAN_VERTICAL, (src, dst), ts,
                        f"Vertical port scan from {src}: {len(ports)} ports on {dst}", "network-scan", ev,
                        ports=len(ports))  # fmt: skip

    def _resolver(self, ev: Mapping[str, Any], ts: float, out: list[Alert]) -> None:
        if not self._resolvers or ev.get("response") or ev.get("proto_name", "dns") != "dns":
            return
        if ev.get("dport") != _DNS_PORT:
            return
        src, dst = ev.get("src"), ev.get("dst")
        if dst in self._resolvers or src in self._resolvers:
            return
        self._alert(out, SID_ROGUE_RESOLVER, (src, dst), ts, f"{src} queries DNS resolver {dst}, not the site's",
                    "rogue-resolver", ev, query=ev.get("query"))  # fmt: skip
