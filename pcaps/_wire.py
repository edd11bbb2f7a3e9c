"""Byte-exact capture files and a small TCP conversation builder for the fixture generator.

Capture files are written with struct (pcap: tcpdump.org pcap format; pcapng: IETF
draft-ietf-opsawg-pcapng), never with the wall clock: every record carries the timestamp the
generator gave it. Conversations are built on independent `Cursor`s (one per device or flow)
and merged by time at the end, so interleaving is realistic yet fully deterministic.
Scapy builds the L2-L4 headers; application bytes come from `_apps` and `_tls`.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

# A school morning: Monday 2026-09-07 07:30:00 UTC, in microseconds since the epoch.
START_US = int(datetime(2026, 9, 7, 7, 30, 0, tzinfo=UTC).timestamp()) * 1_000_000

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

# Snap length written in file headers: tcpdump's default since 4.0 (MAXIMUM_SNAPLEN).
DEFAULT_SNAPLEN = 262144

ETH_BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame; `orig_len` > len(data) marks a snaplen cut."""

    ts_us: int
    data: bytes
    orig_len: int | None = None


def pcap_bytes(records: Iterable[Record], linktype: int, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """A classic little-endian microsecond pcap file."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for r in records:
        sec, usec = divmod(r.ts_us, 1_000_000)
        orig = r.orig_len if r.orig_len is not None else len(r.data)
        out.append(struct.pack("<IIII", sec, usec, len(r.data), orig))
        out.append(r.data)
    return b"".join(out)


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", block_type, total) + body + b"\x00" * pad + struct.pack("<I", total)


def _pcapng_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * ((-len(value)) % 4)


def pcapng_bytes(records: Iterable[Record], linktype: int, snaplen: int = DEFAULT_SNAPLEN, comment: str = "") -> bytes:
    """A little-endian pcapng file: SHB, one IDB (microsecond resolution), one EPB per record."""
    shb_opts = _pcapng_option(4, b"veille pcaps/generate.py")  # shb_userappl
    if comment:
        shb_opts += _pcapng_option(1, comment.encode())  # opt_comment
    shb_opts += _pcapng_option(0, b"")
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb_opts = _pcapng_option(2, b"eth0") + _pcapng_option(9, b"\x06") + _pcapng_option(0, b"")
    idb = _pcapng_block(1, struct.pack("<HHI", linktype, 0, snaplen) + idb_opts)
    out = [shb, idb]
    for r in records:
        orig = r.orig_len if r.orig_len is not None else len(r.data)
        body = struct.pack("<IIIII", 0, r.ts_us >> 32, r.ts_us & 0xFFFFFFFF, len(r.data), orig) + r.data
        out.append(_pcapng_block(6, body + b"\x00" * ((-len(r.data)) % 4)))
    return b"".join(out)


class Trace:
    """All frames of one capture, merged by timestamp (stable for equal times)."""

    def __init__(self, seed: int, start_us: int = START_US) -> None:
        self.rng = random.Random(seed)
        self.start_us = start_us
        self._frames: list[tuple[int, int, bytes, int | None]] = []

    def add(self, ts_us: int, data: bytes, orig_len: int | None = None) -> None:
        self._frames.append((ts_us, len(self._frames), data, orig_len))

    def cursor(self, offset_s: float, tags: Sequence[tuple[int, int]] = ()) -> Cursor:
        """A cursor starting `offset_s` seconds after the capture start."""
        return Cursor(self, self.start_us + round(offset_s * 1_000_000), tuple(tags))

    def records(self) -> list[Record]:
        return [Record(ts, data, orig) for ts, _, data, orig in sorted(self._frames)]

    def __len__(self) -> int:
        return len(self._frames)


@dataclass(slots=True)
class Cursor:
    """A point in time that advances as frames are emitted; `tags` are (TPID, VLAN id) outer-first."""

    trace: Trace
    t_us: int
    tags: tuple[tuple[int, int], ...] = ()

    def wait(self, seconds: float) -> None:
        self.t_us += round(seconds * 1_000_000)

    def emit(self, src_mac: str, dst_mac: str, l3: Packet, gap_s: float = 0.0) -> None:
        """Wrap an IP/ARP layer in Ethernet (and VLAN tags) and record it after `gap_s`."""
        self.wait(gap_s)
        self.trace.add(self.t_us, frame(src_mac, dst_mac, l3, self.tags))

    def emit_raw(self, data: bytes, gap_s: float = 0.0, orig_len: int | None = None) -> None:
        self.wait(gap_s)
        self.trace.add(self.t_us, data, orig_len)

    def fork(self, gap_s: float = 0.0) -> Cursor:
        c = Cursor(self.trace, self.t_us, self.tags)
        c.wait(gap_s)
        return c


def frame(src_mac: str, dst_mac: str, l3: Packet, tags: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet II bytes with optional 802.1Q / 802.1ad tags."""
    ethertype = _ethertype(l3)
    if not tags:
        return bytes(Ether(src=src_mac, dst=dst_mac, type=ethertype) / l3)
    pkt: Packet = Ether(src=src_mac, dst=dst_mac, type=tags[0][0])
    for i, (_, vid) in enumerate(tags):
        inner = tags[i + 1][0] if i + 1 < len(tags) else ethertype
        tag_layer = Dot1AD if tags[i][0] == 0x88A8 else Dot1Q
        pkt = pkt / tag_layer(vlan=vid, prio=0, type=inner)
    return bytes(pkt / l3)


def _ethertype(l3: Packet) -> int:
    if isinstance(l3, IP):
        return 0x0800
    if isinstance(l3, IPv6):
        return 0x86DD
    return 0x0806


@dataclass(frozen=True, slots=True)
class Stack:
    """How an OS's TCP stack opens connections (what p0f keys on)."""

    name: str
    ttl: int
    window: int
    mss: int
    wscale: int
    layout: tuple[str, ...]  # p0f olayout order, e.g. ("mss", "nop", "ws", "sok")
    data_window: int  # scaled window advertised after the handshake

    @property
    def timestamps(self) -> bool:
        return "ts" in self.layout

    def options(self, tsval: int, tsecr: int) -> list[tuple[str, object]]:
        opts: list[tuple[str, object]] = []
        for o in self.layout:
            if o == "mss":
                opts.append(("MSS", self.mss))
            elif o == "nop":
                opts.append(("NOP", None))
            elif o == "ws":
                opts.append(("WScale", self.wscale))
            elif o == "sok":
                opts.append(("SAckOK", b""))
            elif o == "ts":
                opts.append(("Timestamp", (tsval, tsecr)))
            elif o == "eol":
                opts.append(("EOL", None))
        return opts


# SYN shapes as p0f v3 and public captures show them (p0f.fp "s:win" / "s:unix" / "s:apple" rows).
WINDOWS = Stack("windows", 128, 64240, 1460, 8, ("mss", "nop", "ws", "nop", "nop", "sok"), 1026)
LINUX = Stack("linux", 64, 64240, 1460, 7, ("mss", "sok", "ts", "nop", "ws"), 502)
ANDROID = Stack("android", 64, 65535, 1460, 9, ("mss", "sok", "ts", "nop", "ws"), 344)
APPLE = Stack("apple", 64, 65535, 1460, 6, ("mss", "nop", "ws", "nop", "nop", "ts", "sok", "eol"), 2048)
EMBEDDED = Stack("embedded-linux", 64, 29200, 1460, 7, ("mss", "sok", "ts", "nop", "ws"), 229)
SERVER = Stack("server-linux", 64, 65160, 1460, 7, ("mss", "sok", "ts", "nop", "ws"), 509)
SERVER_V6 = Stack("server-linux-v6", 64, 64800, 1440, 7, ("mss", "sok", "ts", "nop", "ws"), 509)


@dataclass(slots=True)
class Host:
    """A network endpoint: MAC, IP (v4 or v6 text), TCP stack, and a running IP id / timestamp."""

    mac: str
    ip: str
    stack: Stack
    ttl: int = 0  # TTL as seen on the LAN; 0 = the stack's initial TTL
    ip_id: int = 1
    ts_clock: int = 1_000_000
    v6: bool = field(init=False)

    def __post_init__(self) -> None:
        self.v6 = ":" in self.ip
        if not self.ttl:
            self.ttl = self.stack.ttl

    def ip_layer(self, dst: str, proto_df: bool = True) -> Packet:
        if self.v6:
            return IPv6(src=self.ip, dst=dst, hlim=self.ttl, fl=0)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        return IP(src=self.ip, dst=dst, ttl=self.ttl, id=self.ip_id, flags="DF" if proto_df else 0)


def udp(
    cur: Cursor,
    src: Host,
    dst_mac: str,
    dst_ip: str,
    sport: int,
    dport: int,
    payload: bytes,
    gap_s: float = 0.0,
    ttl: int | None = None,
) -> None:
    """One UDP datagram from `src`."""
    ipl = src.ip_layer(dst_ip, proto_df=False)
    if ttl is not None:
        if src.v6:
            ipl.hlim = ttl
        else:
            ipl.ttl = ttl
    cur.emit(src.mac, dst_mac, ipl / UDP(sport=sport, dport=dport) / Raw(payload), gap_s)


class TcpConversation:
    """A TCP connection between a client and a server with real sequence numbers and options."""

    def __init__(
        self,
        cur: Cursor,
        client: Host,
        server: Host,
        sport: int,
        dport: int,
        rtt_s: float,
        client_mac_to: str = "",
        server_mac_from: str = "",
        dest_opts: bool = False,
    ) -> None:
        rng = cur.trace.rng
        self.cur = cur
        self.c, self.s = client, server
        self.sport, self.dport = sport, dport
        self.rtt = rtt_s
        # Outside servers sit behind the gateway: frames use the gateway's MAC.
        self.c_dst_mac = client_mac_to or server.mac
        self.s_src_mac = server_mac_from or server.mac
        self.seq_c = rng.getrandbits(32)
        self.seq_s = rng.getrandbits(32)
        self.ts = client.stack.timestamps
        self.dest_opts = dest_opts
        self._last_from_client = True

    def _seg(self, from_client: bool, flags: str, payload: bytes = b"", syn_opts: bool = False) -> None:
        h, peer = (self.c, self.s) if from_client else (self.s, self.c)
        seq = self.seq_c if from_client else self.seq_s
        ack = self.seq_s if from_client else self.seq_c
        h.ts_clock += 7
        peer_ts = peer.ts_clock if "A" in flags or not from_client else 0
        if syn_opts:
            win = h.stack.window
            opts = h.stack.options(h.ts_clock, 0 if from_client else peer.ts_clock)
            if not from_client and not self.ts:
                opts = [o for o in opts if o[0] != "Timestamp"]
        else:
            win = h.stack.data_window
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (h.ts_clock, peer_ts))] if self.ts else []
        tcp = TCP(
            sport=self.sport if from_client else self.dport,
            dport=self.dport if from_client else self.sport,
            seq=seq,
            ack=ack if "A" in flags else 0,
            flags=flags,
            window=win,
            options=opts,
            urgptr=0,
        )
        ipl = h.ip_layer(peer.ip)
        if self.dest_opts and from_client and payload and h.v6:
            ipl = ipl / IPv6ExtHdrDestOpt(nh=6)
        l4 = tcp / Raw(payload) if payload else tcp
        # Half an RTT when the turn changes sides, a few microseconds between back-to-back segments.
        gap = self.rtt / 2 if from_client != self._last_from_client else 0.000_04
        self._last_from_client = from_client
        src_mac = h.mac if from_client else self.s_src_mac
        dst_mac = self.c_dst_mac if from_client else self.c.mac
        self.cur.emit(src_mac, dst_mac, ipl / l4, gap)
        adv = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        if from_client:
            self.seq_c = (self.seq_c + adv) & 0xFFFFFFFF
        else:
            self.seq_s = (self.seq_s + adv) & 0xFFFFFFFF

    def open(self) -> None:
        self._seg(True, "S", syn_opts=True)
        self._seg(False, "SA", syn_opts=True)
        self._seg(True, "A")

    def syn_only(self, reply: str = "") -> None:
        """A SYN, answered by SYN+ACK ("SA"), RST ("RA") or nothing ("")."""
        self._seg(True, "S", syn_opts=True)
        if reply == "SA":
            self._seg(False, "SA", syn_opts=True)
            self._seg(True, "R")
        elif reply == "RA":
            self.seq_s = 0  # RFC 9293 3.10.7.1: a RST answering a SYN carries seq 0 and ACKs the SYN
            self._seg(False, "RA")

    def send(self, from_client: bool, data: bytes, ack: bool = True) -> None:
        """Send `data` in MSS-sized segments (PSH on the last) and let the peer ACK it."""
        mss = min(self.c.stack.mss, self.s.stack.mss) - (12 if self.ts else 0)
        chunks = [data[i : i + mss] for i in range(0, len(data), mss)] or [b""]
        for i, chunk in enumerate(chunks):
            self._seg(from_client, "PA" if i == len(chunks) - 1 else "A", chunk)
            if i % 2 == 1 and i != len(chunks) - 1:
                self._seg(not from_client, "A")
        if ack:
            self._seg(not from_client, "A")

    def close(self, client_first: bool = True) -> None:
        """Orderly FIN teardown."""
        self._seg(client_first, "FA")
        self._seg(not client_first, "FA")
        self._seg(client_first, "A")

    def reset(self, from_client: bool = True) -> None:
        self._seg(from_client, "RA")
