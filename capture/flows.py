"""Bidirectional flow table: 5-tuple state, timeouts, bounded size, the first bytes of each direction.

Strategy: one dict from a canonical key to its `Flow`, plus one insertion-ordered dict per
timeout class kept in last-seen order (`move_to_end` per packet), so expiry only looks at the
front of each class. The replay clock is the packets' own timestamps: `expire(now)` is driven by
the caller. TCP payload is reassembled in sequence order per direction up to `stream_depth`
bytes (out-of-order segments are held, a few at most), for the application parsers and the
rule engine; past the depth nothing more is copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capture.community_id import community_id
from capture.packet import (
    ACK,
    FIN,
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_NAMES,
    PROTO_TCP,
    PROTO_UDP,
    RST,
    SYN,
    Packet,
    ip_text,
    mac_text,
    tcp_flags_text,
)


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Timeouts in seconds. Defaults follow Zeek (tcp_inactivity_timeout 5 min, udp and icmp 1 min)
    and NetFlow's 30-minute active timeout. A closed TCP connection lingers for Linux's TIME_WAIT
    (TCP_TIMEWAIT_LEN, 60 s) so late retransmissions and RSTs stay with it."""

    tcp_timeout: float = 300.0
    udp_timeout: float = 60.0
    other_timeout: float = 60.0
    closed_linger: float = 60.0
    active_timeout: float = 1800.0
    max_flows: int = 200_000
    stream_depth: int = 4096
    # Out-of-order segments held per direction while waiting for the gap to fill.
    max_pending_segments: int = 8


class Flow:
    """Mutable state of one flow; owned by `FlowTable`."""

    __slots__ = (
        "_cid",
        "active_start",
        "app",
        "bytes_fwd",
        "bytes_rev",
        "closing",
        "dport",
        "dst",
        "dst_mac",
        "end_reason",
        "established",
        "ext",
        "fin_fwd",
        "fin_rev",
        "first_ts",
        "flags_fwd",
        "flags_rev",
        "icmp_code",
        "icmp_type",
        "inspect",
        "key",
        "last_ts",
        "next_seq",
        "pending",
        "pkts_fwd",
        "pkts_rev",
        "proto",
        "quiet",
        "sport",
        "src",
        "src_mac",
        "state",
        "streams",
        "tclass",
        "vlan",
    )

    def __init__(self, key: tuple[Any, ...], pkt: Packet, tclass: int) -> None:
        self.key = key
        self.proto = pkt.proto
        self.src = pkt.src
        self.dst = pkt.dst
        self.sport = pkt.sport
        self.dport = pkt.dport
        self.src_mac = pkt.src_mac
        self.dst_mac = pkt.dst_mac
        self.vlan = pkt.vlans[0] if pkt.vlans else None
        self.icmp_type = pkt.icmp_type
        self.icmp_code = pkt.icmp_code
        self.first_ts = pkt.ts
        self.last_ts = pkt.ts
        self.active_start = pkt.ts
        self.pkts_fwd = 0
        self.pkts_rev = 0
        self.bytes_fwd = 0
        self.bytes_rev = 0
        self.flags_fwd = 0
        self.flags_rev = 0
        self.fin_fwd = False
        self.fin_rev = False
        self.established = False
        self.state = 0  # TCP: 1 SYN seen, 2 SYN-ACK seen, 3 established
        self.closing = ""  # "fin" or "rst" once the TCP connection has ended
        self.end_reason = ""
        self.app: str | None = None
        self.tclass = tclass
        # Reassembly, only for TCP: [to_server, to_client].
        self.streams: list[bytearray] | None = None
        self.next_seq: list[int] = [-1, -1]
        self.pending: list[dict[int, bytes]] | None = None
        self.inspect = [True, True]  # directions whose bytes are still wanted
        self.quiet = False  # set by the observers once nothing more is parsed from this flow
        self.ext: dict[str, Any] = {}
        self._cid = ""

    @property
    def community_id(self) -> str:
        if not self._cid:
            if self.proto in (PROTO_ICMP, PROTO_ICMP6):
                self._cid = community_id(self.src, self.dst, self.proto, self.icmp_type, self.icmp_code)
            else:
                self._cid = community_id(self.src, self.dst, self.proto, self.sport, self.dport)
        return self._cid

    def to_event(self) -> dict[str, Any]:
        """The `flow` event of the replay contract."""
        icmp = self.proto in (PROTO_ICMP, PROTO_ICMP6)
        return {
            "type": "flow",
            "ts_start": self.first_ts,
            "ts_end": self.last_ts,
            "proto": PROTO_NAMES.get(self.proto, self.proto),
            "src": ip_text(self.src),
            "sport": self.icmp_type if icmp else self.sport,
            "dst": ip_text(self.dst),
            "dport": self.icmp_code if icmp else self.dport,
            "src_mac": mac_text(self.src_mac) or None,
            "dst_mac": mac_text(self.dst_mac) or None,
            "pkts_fwd": self.pkts_fwd,
            "pkts_rev": self.pkts_rev,
            "bytes_fwd": self.bytes_fwd,
            "bytes_rev": self.bytes_rev,
            "tcp_flags": tcp_flags_text(self.flags_fwd | self.flags_rev),
            "end_reason": self.end_reason,
            "community_id": self.community_id,
            "app": self.app,
            "vlan": self.vlan,
        }


# Timeout classes, each with its own last-seen-ordered dict.
_TCP, _UDP, _OTHER, _CLOSED = 0, 1, 2, 3


class FlowTable:
    """Flows keyed by canonical 5-tuple (+ outer VLAN). Pure: the caller passes time in packets."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self.flows: dict[tuple[Any, ...], Flow] = {}
        self._classes: list[dict[tuple[Any, ...], Flow]] = [{}, {}, {}, {}]
        c = self.config
        self._timeouts = (c.tcp_timeout, c.udp_timeout, c.other_timeout, c.closed_linger)
        self.created = 0
        self.evicted = 0
        self._next_active_check = 0.0
        self.ended: list[Flow] = []  # flows ended by the last calls; the caller drains it
        # Quiet, established TCP flows over untagged IPv4 keyed by the wire bytes of their addresses and
        # ports (one key per direction): `capture.fastpath` accounts their packets without decoding them.
        self.fast: dict[bytes, tuple[Flow, int, bool]] = {}

    def __len__(self) -> int:
        return len(self.flows)

    @property
    def classes(self) -> list[dict[tuple[Any, ...], Flow]]:
        """The per-timeout-class tables in last-seen order (for the bypass walk)."""
        return self._classes

    def update(self, pkt: Packet) -> tuple[Flow, int]:
        """Account `pkt` to its flow; returns the flow and the direction (0 from the initiator)."""
        proto = pkt.proto
        src = pkt.src
        dst = pkt.dst
        if proto == PROTO_TCP or proto == PROTO_UDP:
            sp = pkt.sport
            dp = pkt.dport
        else:
            sp = dp = 0
        vlan = pkt.vlans[0] if pkt.vlans else 0
        if (src, sp) <= (dst, dp):
            key = (proto, src, sp, dst, dp, vlan)
        else:
            key = (proto, dst, dp, src, sp, vlan)
        flow = self.flows.get(key)
        flags = pkt.tcp_flags
        if flow is not None and flow.closing and proto == PROTO_TCP and flags & (SYN | ACK) == SYN:
            # A new connection reusing the 5-tuple of one that ended.
            self._end(flow, flow.closing)
            flow = None
        if flow is None:
            tclass = _TCP if proto == PROTO_TCP else _UDP if proto == PROTO_UDP else _OTHER
            if proto == PROTO_TCP and flags & (SYN | ACK) == SYN | ACK:
                # First packet seen is the SYN-ACK: the initiator is the other side.
                flow = Flow(key, pkt, tclass)
                flow.src, flow.dst, flow.sport, flow.dport = pkt.dst, pkt.src, pkt.dport, pkt.sport
                flow.src_mac, flow.dst_mac = pkt.dst_mac, pkt.src_mac
            else:
                flow = Flow(key, pkt, tclass)
            self.flows[key] = flow
            self._classes[tclass][key] = flow
            self.created += 1
            if len(self.flows) > self.config.max_flows:
                self._evict_one()
        else:
            cls = self._classes[flow.tclass]
            del cls[key]
            cls[key] = flow
        d = 0 if (src == flow.src and sp == flow.sport) else 1
        flow.last_ts = pkt.ts
        if d == 0:
            flow.pkts_fwd += 1
            flow.bytes_fwd += pkt.ip_len
            flow.flags_fwd |= flags
        else:
            flow.pkts_rev += 1
            flow.bytes_rev += pkt.ip_len
            flow.flags_rev |= flags
        if proto == PROTO_TCP:
            self._tcp_state(flow, pkt, d, flags)
        elif not flow.established and flow.pkts_fwd and flow.pkts_rev:
            flow.established = True
        return flow, d

    def _tcp_state(self, flow: Flow, pkt: Packet, d: int, flags: int) -> None:
        st = flow.state
        if st < 3:
            if flags & SYN:
                if flags & ACK:
                    if d == 1 and st >= 1:
                        flow.state = 2
                    flow.next_seq[d] = (pkt.tcp_seq + 1) & 0xFFFFFFFF
                else:
                    if d == 0:
                        flow.state = 1
                    flow.next_seq[d] = (pkt.tcp_seq + 1) & 0xFFFFFFFF
            elif flags & ACK and d == 0 and st == 2:
                flow.state = 3
                flow.established = True
        self._end_flags(flow, d, flags)
        if pkt.payload_len and flow.inspect[d]:
            self._reassemble(flow, pkt, d)

    def _closing(self, flow: Flow, reason: str) -> None:
        if flow.closing:
            return
        modes = flow.ext.get("fast")
        if modes is not None:
            self._drop_fast(flow)
        flow.closing = reason
        del self._classes[flow.tclass][flow.key]
        flow.tclass = _CLOSED
        self._classes[_CLOSED][flow.key] = flow
        if modes is not None:
            # Late ACKs of a closed connection only count; anything else takes the full path.
            self.make_fast(flow, (1 if modes[0] else 0, 1 if modes[1] else 0))

    def segment_state(self, flow: Flow, d: int, flags: int) -> None:
        """The state change of a bypassed segment (no SYN): the handshake's last ACK, a FIN."""
        if flow.state == 2 and d == 0 and flags & ACK:
            flow.state = 3
            flow.established = True
        self._end_flags(flow, d, flags)

    def _end_flags(self, flow: Flow, d: int, flags: int) -> None:
        if flags & RST:
            self._closing(flow, "rst")
        elif flags & FIN:
            if d == 0:
                flow.fin_fwd = True
            else:
                flow.fin_rev = True
            if flow.fin_fwd and flow.fin_rev:
                self._closing(flow, "fin")

    def _reassemble(self, flow: Flow, pkt: Packet, d: int) -> None:
        depth = self.config.stream_depth
        streams = flow.streams
        if streams is None:
            streams = flow.streams = [bytearray(), bytearray()]
            flow.pending = [{}, {}]
        buf = streams[d]
        seq = pkt.tcp_seq
        if pkt.tcp_flags & SYN:
            seq = (seq + 1) & 0xFFFFFFFF  # data in a SYN (TCP Fast Open, RFC 7413) starts after it
        nxt = flow.next_seq[d]
        if nxt < 0:
            nxt = seq  # mid-stream pickup: start where we joined
        rel = (seq - nxt) & 0xFFFFFFFF
        data = pkt.data
        start = pkt.payload_off
        plen = pkt.payload_len
        if rel >= 0x80000000:  # retransmission or overlap: keep only the new tail
            back = 0x100000000 - rel
            if back >= plen:
                return
            start += back
            plen -= back
            rel = 0
        if rel == 0:
            room = depth - len(buf)
            take = plen if plen < room else room
            buf += data[start : start + take]
            nxt = (nxt + plen) & 0xFFFFFFFF
            pending = flow.pending[d] if flow.pending else None
            while pending:
                seg = pending.pop(nxt, None)
                if seg is None:
                    break
                room = depth - len(buf)
                buf += seg[:room]
                nxt = (nxt + len(seg)) & 0xFFFFFFFF
            flow.next_seq[d] = nxt
            if len(buf) >= depth:
                flow.inspect[d] = False
        else:
            if flow.next_seq[d] < 0:
                flow.next_seq[d] = nxt
            pending = flow.pending[d] if flow.pending else None
            if pending is not None and len(pending) < self.config.max_pending_segments:
                pending[seq] = data[start : start + plen]

    def make_fast(self, flow: Flow, modes: tuple[int, int] = (2, 2)) -> None:
        """Let later packets of an established, untagged IPv4 TCP flow bypass decoding (`capture.fastpath`).

        `modes[d]` says which packets of direction d may skip decoding: 0 none, 1 those without
        payload, 2 all (its reassembly then stops and its buffer is freed: nobody reads it).
        Packets with SYN or RST always take the full path; `segment_state` makes a bypassed
        segment's state change. A closing flow only lets payload-less packets by.
        """
        if (
            flow.proto != PROTO_TCP
            or flow.state == 1
            or (flow.closing and (modes[0] > 1 or modes[1] > 1))
            or flow.vlan is not None
            or len(flow.src) != 4
        ):
            return
        ports = flow.sport.to_bytes(2, "big") + flow.dport.to_bytes(2, "big")
        rports = flow.dport.to_bytes(2, "big") + flow.sport.to_bytes(2, "big")
        keys = (flow.src + flow.dst + ports, flow.dst + flow.src + rports)
        for d in (0, 1):
            m = modes[d]
            if m:
                self.fast[keys[d]] = (flow, d, m == 2)
                if m == 2 and flow.inspect[d]:
                    flow.inspect[d] = False
                    if flow.streams is not None:
                        flow.streams[d] = bytearray()
            else:
                self.fast.pop(keys[d], None)
        flow.ext["fast"] = modes

    def reset_fast(self) -> None:
        """Forget every bypass decision (new rules may need packets the old ones did not)."""
        for flow, _d, _full in list(self.fast.values()):
            flow.ext.pop("fast", None)
        self.fast.clear()

    def _drop_fast(self, flow: Flow) -> None:
        ports = flow.sport.to_bytes(2, "big") + flow.dport.to_bytes(2, "big")
        rports = flow.dport.to_bytes(2, "big") + flow.sport.to_bytes(2, "big")
        self.fast.pop(flow.src + flow.dst + ports, None)
        self.fast.pop(flow.dst + flow.src + rports, None)
        flow.ext.pop("fast", None)

    def _end(self, flow: Flow, reason: str) -> None:
        if "fast" in flow.ext:
            self._drop_fast(flow)
        flow.end_reason = reason
        del self.flows[flow.key]
        del self._classes[flow.tclass][flow.key]
        self.ended.append(flow)

    def _evict_one(self) -> None:
        oldest: Flow | None = None
        for cls in self._classes:
            if cls:
                f = next(iter(cls.values()))
                if oldest is None or f.last_ts < oldest.last_ts:
                    oldest = f
        if oldest is not None:
            self.evicted += 1
            self._end(oldest, "evict")

    def expire(self, now: float) -> None:
        """End flows idle past their class timeout, closed past the linger, or active too long."""
        for tclass, cls in enumerate(self._classes):
            limit = now - self._timeouts[tclass]
            while cls:
                f = next(iter(cls.values()))
                if f.last_ts > limit:
                    break
                self._end(f, (f.closing or "idle") if tclass == _CLOSED else "idle")
        if now >= self._next_active_check:
            at = self.config.active_timeout
            self._next_active_check = now + min(at / 10, 60.0)
            cut = now - at
            for f in [f for f in self.flows.values() if f.active_start <= cut]:
                # Long flows report every interval, as IPFIX does: emit a record, keep the state.
                rec = _snapshot(f)
                rec.end_reason = "active"
                self.ended.append(rec)
                f.active_start = now
                f.first_ts = now
                f.pkts_fwd = f.pkts_rev = f.bytes_fwd = f.bytes_rev = 0
                f.flags_fwd = f.flags_rev = 0

    def flush(self, reason: str = "eof") -> None:
        """End every flow (end of a replay)."""
        for f in list(self.flows.values()):
            self._end(f, f.closing or reason)

    def drain(self) -> list[Flow]:
        out = self.ended
        self.ended = []
        return out


def _snapshot(f: Flow) -> Flow:
    """A copy of the counters and endpoints of `f`, for an active-timeout record."""
    p = Packet(f.first_ts, 0, b"")
    p.proto, p.src, p.dst, p.sport, p.dport = f.proto, f.src, f.dst, f.sport, f.dport
    p.src_mac, p.dst_mac = f.src_mac, f.dst_mac
    p.icmp_type, p.icmp_code = f.icmp_type, f.icmp_code
    c = Flow(f.key, p, f.tclass)
    c.vlan = f.vlan
    c.last_ts = f.last_ts
    c.pkts_fwd, c.pkts_rev, c.bytes_fwd, c.bytes_rev = f.pkts_fwd, f.pkts_rev, f.bytes_fwd, f.bytes_rev
    c.flags_fwd, c.flags_rev = f.flags_fwd, f.flags_rev
    c.established, c.state, c.app = f.established, f.state, f.app
    c.inspect = [False, False]
    return c
