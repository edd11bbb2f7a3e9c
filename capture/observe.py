"""From decoded packets and their flows to `Observation`s: one per protocol message that
identifies a device (DHCP, DNS/mDNS/LLMNR, NBNS, SSDP, HTTP request, TLS hellos, SSH, TCP SYN,
ARP and neighbour discovery).

Strategy: application parsers run only on packets that can carry their protocol. UDP is
dispatched by port through a table built in `Observer.__init__`; TCP streams are recognised
from the first bytes of each direction (TLS record, `SSH-`, an HTTP method) and parsed from the
flow table's reassembled bytes, so hellos split across segments or records are handled. A
parser's `DecodeError` is counted by reason in `errors` and never stops the run.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

from capture.decode import ETH_ARP
from capture.errors import DecodeError
from capture.flows import Flow
from capture.packet import PROTO_ICMP6, PROTO_TCP, PROTO_UDP, SYN, Packet, ip_text, mac_text
from capture.protocols.dhcp import parse_dhcp
from capture.protocols.dhcp6 import parse_dhcp6
from capture.protocols.dns import parse_dns, parse_dns_tcp
from capture.protocols.http import looks_like_http_request, parse_http_request
from capture.protocols.nbns import parse_nbns
from capture.protocols.quic import QuicInitialReader, QuicServerInitialReader, looks_like_quic_initial
from capture.protocols.ssdp import parse_ssdp
from capture.protocols.ssh import parse_ssh_banner, parse_ssh_kexinit
from capture.protocols.tls import looks_like_tls, parse_client_hello, parse_server_hello
from capture.tcpopts import parse_tcp_options


class Observation:
    """One fact about one endpoint: the contract `fields` plus the parsed message behind them.

    A plain slotted class rather than a NamedTuple: one is built per event, and a NamedTuple's
    `__new__` runs as interpreted Python even in the compiled build."""

    __slots__ = ("direction", "fields", "flow", "msg", "pkt", "type")

    def __init__(
        self, type: str, fields: dict[str, Any], msg: Any, pkt: Packet, flow: Flow | None, direction: int
    ) -> None:
        self.type = type
        self.fields = fields
        self.msg = msg
        self.pkt = pkt
        self.flow = flow
        self.direction = direction

    def reversed(self) -> Observation:
        """The same observation seen from the other direction (a server-first UDP exchange)."""
        return Observation(self.type, self.fields, self.msg, self.pkt, self.flow, self.direction ^ 1)

    def __repr__(self) -> str:
        return f"Observation({self.type!r}, {self.fields!r}, direction={self.direction})"


# Per-direction TCP application state.
_UNDECIDED, _TLS, _HTTP, _SSH, _SSH_KEX, _TLS_AGAIN, _DONE = 0, 1, 2, 3, 4, 5, 6
# RFC 7230 sets no limit; h11's DEFAULT_MAX_INCOMPLETE_EVENT_SIZE (16 KiB) bounds a request head.
MAX_HTTP_HEAD = 16 * 1024
# Pipelined requests parsed from one segment; a handful is what clients pipeline in practice.
MAX_REQUESTS_PER_SEGMENT = 16
# QUIC: the client's Initial(s) come in the first datagrams; look no further than this.
QUIC_FIRST_DATAGRAMS = 4

_ARP = struct.Struct("!HHBBH")
_NDP_NAMES = {133: "rs", 134: "ra", 135: "ns", 136: "na"}

Handler = Callable[[Packet, Flow | None, int, bytes], "Observation | None"]


class Observer:
    """Sans-IO: `packet()` returns the observations a packet completes."""

    def __init__(self, keep_streams: bool = False) -> None:
        # keep_streams: the rule engine matches on reassembled streams, so keep them to the depth.
        self.keep_streams = keep_streams
        self.errors: Counter[str] = Counter()
        self.pkt_no = 0
        dns = self._dns("dns")
        self._udp: dict[int, Callable[[Packet, Flow | None, int, bytes], Observation | None]] = {
            67: self._dhcp,
            68: self._dhcp,
            546: self._dhcp6,
            547: self._dhcp6,
            53: dns,
            5353: self._dns("mdns"),
            5355: self._dns("llmnr"),
            137: self._nbns,
            1900: self._ssdp,
        }

    def packet(self, pkt: Packet, flow: Flow | None, d: int) -> list[Observation] | None:
        """Observations completed by `pkt` (None when there are none, the common case)."""
        proto = pkt.proto
        if proto == PROTO_TCP:
            out: list[Observation] | None = None
            if pkt.tcp_flags & SYN:
                o = self._syn(pkt, flow, d)
                if o is not None:
                    out = [o]
            if pkt.payload_len and flow is not None and not flow.quiet:
                more = self._tcp_payload(pkt, flow, d)
                if more:
                    out = more if out is None else out + more
            return out
        if proto == PROTO_UDP:
            if not pkt.payload_len or (pkt.frag and pkt.l4_off < 0):
                return None
            h = self._udp.get(pkt.dport) or self._udp.get(pkt.sport)
            if h is None:
                if flow is not None:
                    if d == 0 and flow.pkts_fwd <= QUIC_FIRST_DATAGRAMS:
                        return self._quic(pkt, flow)
                    if d == 1 and flow.pkts_rev <= QUIC_FIRST_DATAGRAMS and "quic" in flow.ext:
                        return self._quic_server(pkt, flow)
                return None
            o = h(pkt, flow, d, pkt.payload)
            return [o] if o is not None else None
        if pkt.ethertype == ETH_ARP:
            o = self._arp(pkt)
            return [o] if o is not None else None
        if proto == PROTO_ICMP6 and 133 <= pkt.icmp_type <= 136:
            o = self._ndp(pkt, flow)
            return [o] if o is not None else None
        return None

    # -- helpers -------------------------------------------------------------------------

    def _obs(self, kind: str, pkt: Packet, flow: Flow | None, d: int, msg: Any, extra: dict[str, Any]) -> Observation:
        fields: dict[str, Any] = {
            "type": kind,
            "ts": pkt.ts,
            "src_mac": mac_text(pkt.src_mac) or None,
            "dst_mac": mac_text(pkt.dst_mac) or None,
            "src": ip_text(pkt.src),
            "dst": ip_text(pkt.dst),
            "sport": pkt.sport,
            "dport": pkt.dport,
            "proto": "tcp" if pkt.proto == PROTO_TCP else "udp",
            "community_id": flow.community_id if flow is not None else None,
            "pkt": self.pkt_no,
        }
        fields.update(extra)
        return Observation(kind, fields, msg, pkt, flow, d)

    def _fail(self, e: DecodeError) -> None:
        self.errors[e.reason] += 1

    # -- UDP -----------------------------------------------------------------------------

    def _dhcp(self, pkt: Packet, flow: Flow | None, d: int, payload: bytes) -> Observation | None:
        try:
            m = parse_dhcp(payload)
        except DecodeError as e:
            self._fail(e)
            return None
        if flow is not None:
            flow.app = "dhcp"
        return self._obs("dhcp", pkt, flow, d, m, m.fields())

    def _dhcp6(self, pkt: Packet, flow: Flow | None, d: int, payload: bytes) -> Observation | None:
        try:
            m = parse_dhcp6(payload)
        except DecodeError as e:
            self._fail(e)
            return None
        if flow is not None:
            flow.app = "dhcp6"
        return self._obs("dhcp6", pkt, flow, d, m, m.fields())

    def _dns(self, name: str) -> Callable[[Packet, Flow | None, int, bytes], Observation | None]:
        def handle(pkt: Packet, flow: Flow | None, d: int, payload: bytes) -> Observation | None:
            try:
                m = parse_dns(payload, name)
            except DecodeError as e:
                self._fail(e)
                return None
            if flow is not None:
                flow.app = name
            return self._obs("dns", pkt, flow, d, m, m.fields())

        return handle

    def _nbns(self, pkt: Packet, flow: Flow | None, d: int, payload: bytes) -> Observation | None:
        try:
            m = parse_nbns(payload)
        except DecodeError as e:
            self._fail(e)
            return None
        if flow is not None:
            flow.app = "nbns"
        return self._obs("nbns", pkt, flow, d, m, m.fields())

    def _ssdp(self, pkt: Packet, flow: Flow | None, d: int, payload: bytes) -> Observation | None:
        try:
            m = parse_ssdp(payload)
        except DecodeError as e:
            self._fail(e)
            return None
        if flow is not None:
            flow.app = "ssdp"
        return self._obs("ssdp", pkt, flow, d, m, m.fields())

    def _quic(self, pkt: Packet, flow: Flow) -> list[Observation] | None:
        payload = pkt.payload
        reader = flow.ext.get("quic")
        if reader is None:
            if not looks_like_quic_initial(payload):
                return None
            reader = flow.ext["quic"] = QuicInitialReader()
        elif reader.done:
            return None
        try:
            hello = reader.feed(payload)
        except DecodeError as e:
            self._fail(e)
            flow.ext.pop("quic", None)
            return None
        flow.app = "quic"
        if hello is None:
            return None
        return [self._obs("tls_client", pkt, flow, 0, hello, hello.fields())]

    def _quic_server(self, pkt: Packet, flow: Flow) -> list[Observation] | None:
        reader = flow.ext.get("quic_server")
        if reader is None:
            dcid = flow.ext["quic"].client_dcid
            if dcid is None:
                return None
            reader = flow.ext["quic_server"] = QuicServerInitialReader(dcid)
        elif reader.done:
            return None
        try:
            hello = reader.feed(pkt.payload)
        except DecodeError as e:
            self._fail(e)
            return None
        if hello is None:
            return None
        return [self._obs("tls_server", pkt, flow, 1, hello, hello.fields())]

    # -- TCP -----------------------------------------------------------------------------

    def _syn(self, pkt: Packet, flow: Flow | None, d: int) -> Observation | None:
        try:
            opts = parse_tcp_options(pkt.data, pkt.tcp_opts_off, pkt.tcp_opts_len)
        except DecodeError as e:
            self._fail(e)
            return None
        return self._obs(
            "tcp_syn",
            pkt,
            flow,
            d,
            opts,
            {
                "ttl": pkt.ttl,
                "window": pkt.tcp_window,
                "mss": opts.mss,
                "wscale": opts.wscale,
                "options": opts.layout,
                "synack": bool(pkt.tcp_flags & 0x10),
            },
        )

    def fast_mode(self, flow: Flow, d: int) -> int:
        """Which later packets of a TCP flow direction the observers still need: 1 those with
        payload (a segment without payload tells them nothing), 2 none (this direction is done)."""
        if flow.quiet:
            return 2
        st = flow.ext.get("obs")
        return 2 if st is not None and st[d] == _DONE else 1

    def _tcp_payload(self, pkt: Packet, flow: Flow, d: int) -> list[Observation] | None:
        out = self._tcp_app(pkt, flow, d)
        st = flow.ext.get("obs")
        if st is not None and st[d] == _DONE:
            if flow.inspect[d] and not self.keep_streams:
                # Nothing more to learn from this direction: stop copying its bytes and free them.
                flow.inspect[d] = False
                if flow.streams is not None:
                    flow.streams[d] = bytearray()
            if st[1 - d] == _DONE:
                flow.quiet = True
        return out

    def _tcp_app(self, pkt: Packet, flow: Flow, d: int) -> list[Observation] | None:
        if flow.sport == 53 or flow.dport == 53:
            try:
                m = parse_dns_tcp(pkt.payload)
            except DecodeError as e:
                self._fail(e)
                return None
            flow.app = "dns"
            return [self._obs("dns", pkt, flow, d, m, m.fields())]
        st = flow.ext.get("obs")
        if st is None:
            st = flow.ext["obs"] = [_UNDECIDED, _UNDECIDED]
        s = st[d]
        if s == _DONE:
            return None
        if s == _HTTP:
            return self._http(pkt, flow, d, st)
        streams = flow.streams
        stream = bytes(streams[d]) if streams is not None else b""
        if s == _UNDECIDED:
            if not stream:
                return None
            if d == 0 and stream[:8] == b"CONNECT ":
                return self._connect(pkt, flow, stream, st)
            if looks_like_tls(stream[:16]):
                s = _TLS
            elif flow.state == 0 and len(stream) >= 3 and stream[0] == 23 and stream[1] == 3 and stream[2] <= 4:
                # Joined mid-stream at a TLS application_data record: TLS, past its hellos.
                flow.app = "tls"
                st[d] = _DONE
                return None
            elif d == 1 and stream[:5] == b"HTTP/" and flow.ext.get("connect"):
                s = _TLS  # the proxy's answer to CONNECT, then the ServerHello
            elif stream[:4] == b"SSH-" or (d == 1 and flow.dport == 22):
                s = _SSH
            elif d == 0 and looks_like_http_request(stream[:16]):
                st[d] = _HTTP
                flow.app = "http"
                return self._http(pkt, flow, d, st)
            else:
                st[d] = _DONE
                return None
            st[d] = s
        full = not flow.inspect[d]
        try:
            if s == _TLS:
                hello = parse_client_hello(stream) if d == 0 else parse_server_hello(stream)
                if hello is None:
                    if full:
                        st[d] = _DONE
                        self.errors["tls.hello_past_stream_depth"] += 1
                    return None
                flow.app = "tls"
                st[d] = _DONE
                if d == 0:
                    # After a HelloRetryRequest the client sends a second ClientHello (RFC 8446 §4.1.4).
                    end = _handshake_end(stream, 0)
                    if end > 0:
                        flow.ext["tls_next"] = end
                        st[d] = _TLS_AGAIN
                kind = "tls_client" if d == 0 else "tls_server"
                return [self._obs(kind, pkt, flow, d, hello, hello.fields())]
            if s == _TLS_AGAIN:
                return self._second_hello(pkt, flow, stream, st, full)
            if s == _SSH:
                got = parse_ssh_banner(stream, allow_preamble=d == 1)
                if got is None:
                    if full:
                        st[d] = _DONE
                    return None
                banner, end = got
                flow.app = "ssh"
                flow.ext[f"ssh_end{d}"] = end
                st[d] = _SSH_KEX
                out = [self._obs("ssh", pkt, flow, d, banner, {"banner": banner, "role": _role(d)})]
                if banner.startswith("SSH-1.") and not banner.startswith("SSH-1.99"):
                    st[d] = _DONE  # SSH-1 has no KEXINIT (RFC 4253 §5.1)
                    return out
                kex = self._kex(pkt, flow, d, stream, st, banner)
                if kex is not None:
                    out.append(kex)
                return out
            if s == _SSH_KEX:
                banner = flow.ext.get(f"ssh_banner{d}", "")
                kex = self._kex(pkt, flow, d, stream, st, banner)
                return [kex] if kex is not None else None
        except DecodeError as e:
            self._fail(e)
            st[d] = _DONE
        return None

    def _connect(self, pkt: Packet, flow: Flow, stream: bytes, st: list[int]) -> list[Observation] | None:
        """An explicit proxy's CONNECT head (an `http` event), then TLS inside the tunnel."""
        try:
            req = parse_http_request(stream)
        except DecodeError as e:
            self._fail(e)
            st[0] = _DONE
            return None
        if req is None:
            if not flow.inspect[0]:
                st[0] = _DONE
            return None
        flow.ext["connect"] = True
        st[0] = _TLS
        out = [self._obs("http", pkt, flow, 0, req, req.fields())]
        more = self._tcp_app(pkt, flow, 0)
        return out + more if more else out

    def _second_hello(
        self, pkt: Packet, flow: Flow, stream: bytes, st: list[int], full: bool
    ) -> list[Observation] | None:
        off = flow.ext["tls_next"]
        while off + 5 <= len(stream) and stream[off] == _TLS_CCS:
            off += 5 + ((stream[off + 3] << 8) | stream[off + 4])
        flow.ext["tls_next"] = off
        if off + 6 > len(stream):
            if full:
                st[0] = _DONE
            return None
        if stream[off] != _TLS_HANDSHAKE or stream[off + 5] != 1:
            st[0] = _DONE  # application data or a later handshake: no second hello
            return None
        hello = parse_client_hello(stream[off:])
        if hello is None:
            if full:
                st[0] = _DONE
            return None
        st[0] = _DONE
        return [self._obs("tls_client", pkt, flow, 0, hello, hello.fields())]

    def _kex(self, pkt: Packet, flow: Flow, d: int, stream: bytes, st: list[int], banner: str) -> Observation | None:
        flow.ext[f"ssh_banner{d}"] = banner
        kex = parse_ssh_kexinit(stream, flow.ext[f"ssh_end{d}"])
        if kex is None:
            if not flow.inspect[d]:
                st[d] = _DONE
            return None
        st[d] = _DONE
        fields: dict[str, Any] = {"banner": banner, "role": _role(d)}
        fields.update(kex.fields())
        return self._obs("ssh", pkt, flow, d, kex, fields)

    def _http(self, pkt: Packet, flow: Flow, d: int, st: list[int]) -> list[Observation] | None:
        if d != 0:
            return None
        seq = pkt.tcp_seq
        nxt = flow.ext.get("http_next")
        if nxt is not None and (seq - nxt) & 0xFFFFFFFF >= 0x80000000:
            return None  # a retransmission of bytes already parsed
        flow.ext["http_next"] = (seq + pkt.payload_len) & 0xFFFFFFFF
        payload = pkt.payload
        carry: bytes | None = flow.ext.get("http_carry")
        if carry:
            buf = carry + payload
        elif looks_like_http_request(payload[:16]):
            buf = payload
        else:
            return None  # body bytes, or a segment we joined mid-way
        out: list[Observation] = []
        # Several requests can share a segment (pipelining); each body is skipped by Content-Length.
        for _ in range(MAX_REQUESTS_PER_SEGMENT):
            try:
                req = parse_http_request(buf)
            except DecodeError as e:
                self._fail(e)
                flow.ext["http_carry"] = None
                break
            if req is None:
                flow.ext["http_carry"] = buf if len(buf) < MAX_HTTP_HEAD else None
                break
            flow.ext["http_carry"] = None
            out.append(self._obs("http", pkt, flow, d, req, req.fields()))
            length = req.header("content-length")
            body = int(length) if length is not None and length.strip().isdigit() else 0
            # RFC 9112 §2.2: empty lines before a request line are ignored.
            buf = buf[req.head_len + body :].lstrip(b"\r\n")
            if not looks_like_http_request(buf[:16]):
                break
        return out or None

    # -- L2 / ICMPv6 ---------------------------------------------------------------------

    def _arp(self, pkt: Packet) -> Observation | None:
        data = pkt.data
        o = pkt.ip_off
        if o < 0 or o + 28 > len(data):
            self.errors["arp.truncated"] += 1
            return None
        htype, ptype, hlen, plen, op = _ARP.unpack_from(data, o)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            return None
        fields = {
            "op": op,
            "sender_mac": mac_text(data[o + 8 : o + 14]),
            "sender_ip": ip_text(data[o + 14 : o + 18]),
            "target_mac": mac_text(data[o + 18 : o + 24]),
            "target_ip": ip_text(data[o + 24 : o + 28]),
        }
        ob = self._obs("arp", pkt, None, 0, None, fields)
        ob.fields["proto"] = "arp"
        ob.fields["src"] = fields["sender_ip"]
        ob.fields["dst"] = fields["target_ip"]
        return ob

    def _ndp(self, pkt: Packet, flow: Flow | None) -> Observation | None:
        data = pkt.data
        o = pkt.l4_off
        t = pkt.icmp_type
        end = pkt.ip_off + pkt.ip_len
        # RS/RA/NS/NA layouts: RFC 4861 §4.1-4.4.
        target = None
        opt = o + (8 if t == 133 else 16 if t == 134 else 24)
        if t in (135, 136):
            if o + 24 > end:
                self.errors["ndp.truncated"] += 1
                return None
            target = ip_text(data[o + 8 : o + 24])
        lladdr = None
        n = 0
        while opt + 2 <= end and n < 16:  # a handful of options at most in real NDP
            olen = data[opt + 1] * 8
            if olen == 0 or opt + olen > end:
                self.errors["ndp.bad_option"] += 1
                break
            if data[opt] in (1, 2) and olen >= 8:
                lladdr = mac_text(data[opt + 2 : opt + 8])
            opt += olen
            n += 1
        ob = self._obs("ndp", pkt, flow, 0, None, {"ndp_type": _NDP_NAMES[t], "target": target, "lladdr": lladdr})
        ob.fields["proto"] = "icmp6"
        return ob


_TLS_CCS = 0x14
_TLS_HANDSHAKE = 0x16


def _handshake_end(stream: bytes, off: int) -> int:
    """Offset just past the records holding the first handshake message at `off`, or -1."""
    need = -1
    got = 0
    n = len(stream)
    while off + 5 <= n and stream[off] == _TLS_HANDSHAKE:
        rlen = (stream[off + 3] << 8) | stream[off + 4]
        if need < 0:
            if off + 9 > n:
                return -1
            need = 4 + int.from_bytes(stream[off + 6 : off + 9], "big")
        got += rlen
        off += 5 + rlen
        if got >= need:
            return off if off <= n else -1
    return -1


def _role(d: int) -> str:
    return "client" if d == 0 else "server"
