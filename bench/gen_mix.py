"""Generate a large mixed capture for benchmarks (not committed: made on demand, deterministic).

A school LAN mix: many short TLS and HTTP connections with real hellos, DNS-heavy lookups,
mDNS/SSDP chatter, DHCP, and a few long video-like flows. Packets are built once from scapy
templates and then stamped with new addresses, ports and sequence numbers by byte patching,
so a million packets take seconds, not minutes. Checksums are left as the templates had them
(no tool in the benchmark validates them by default).

    python -m bench.gen_mix OUT.pcap --packets 1000000 [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

_REC = struct.Struct("<IIII")


def _client_hello() -> bytes:
    """A Chrome-like TLS ClientHello record (SNI www.example.com), lengths computed from the parts."""
    suites = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035")
    sni = b"www.example.com"
    exts = (
        bytes.fromhex("0000")
        + (len(sni) + 5).to_bytes(2, "big")
        + (len(sni) + 3).to_bytes(2, "big")
        + b"\x00"
        + len(sni).to_bytes(2, "big")
        + sni
        + bytes.fromhex("000a000a0008001d001700180019")
        + bytes.fromhex("000b00020100")
        + bytes.fromhex("000d0012001004030804040105030805050108060601")
        + bytes.fromhex("0010000e000c02683208687474702f312e31")
        + bytes.fromhex("002b0005040304030300330000")
    )
    body = (
        bytes.fromhex("0303")
        + b"\x11" * 32
        + b"\x20"
        + b"\x22" * 32
        + len(suites).to_bytes(2, "big")
        + suites
        + bytes.fromhex("0100")
        + len(exts).to_bytes(2, "big")
        + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return bytes.fromhex("160301") + len(hs).to_bytes(2, "big") + hs


_HELLO = _client_hello()
# A TLS 1.2 ServerHello (ECDHE-RSA-AES128-GCM-SHA256, extended master secret, renegotiation info).
_SERVER_HELLO = bytes.fromhex("160303003b020000370303" + "33" * 32 + "00c02f00000fff0100010000170000000b00020100")
_HTTP = (
    b"GET /index.html HTTP/1.1\r\nHost: www.example.org\r\n"
    b"User-Agent: Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36\r\n"
    b"Accept: */*\r\n\r\n"
)
CLIENT_MAC = "00:00:5e:00:53:01"
GW_MAC = "00:00:5e:00:53:fe"


def _tpl(pkt: object) -> bytearray:
    return bytearray(bytes(pkt))  # type: ignore[call-overload]


class _Writer:
    def __init__(self, path: Path) -> None:
        self.f = path.open("wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.n = 0
        self.ts = 1_757_230_200.0

    def write(self, data: bytes | bytearray, dt: float = 0.0002) -> None:
        self.ts += dt
        sec = int(self.ts)
        self.f.write(_REC.pack(sec, int((self.ts - sec) * 1e6), len(data), len(data)))
        self.f.write(data)
        self.n += 1

    def close(self) -> None:
        self.f.close()


def _stamp(
    t: bytearray, src: bytes, dst: bytes, sport: int, dport: int, seq: int = 0, ack: int = 0, mac: bytes = b""
) -> bytearray:
    b = bytearray(t)
    if mac:
        if src[0] == 192:
            b[6:12] = mac
        else:
            b[0:6] = mac
    b[26:30] = src
    b[30:34] = dst
    struct.pack_into("!HH", b, 34, sport, dport)
    if b[23] == 6:
        struct.pack_into("!II", b, 38, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF)
    return b


def generate(path: Path, packets: int, seed: int = 7, devices: int = 1, long_flows: int = 8) -> int:
    """Write the mix; `devices` distinct client MACs, `long_flows` concurrent long flows."""
    rnd = random.Random(seed)
    w = _Writer(path)
    c2s = Ether(src=CLIENT_MAC, dst=GW_MAC) / IP(src="192.0.2.1", dst="203.0.113.1", ttl=64)
    s2c = Ether(src=GW_MAC, dst=CLIENT_MAC) / IP(src="203.0.113.1", dst="192.0.2.1", ttl=57)
    syn = _tpl(
        c2s
        / TCP(
            flags="S",
            window=64240,
            options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)],
        )
    )
    synack = _tpl(s2c / TCP(flags="SA", window=65535, options=[("MSS", 1460), ("NOP", None), ("WScale", 8)]))
    ack = _tpl(c2s / TCP(flags="A"))
    ack_r = _tpl(s2c / TCP(flags="A"))
    hello = _tpl(c2s / TCP(flags="PA") / _HELLO)
    http = _tpl(c2s / TCP(flags="PA") / _HTTP)
    data_r = _tpl(s2c / TCP(flags="PA") / (b"\x17\x03\x03\x05\x00" + b"v" * 1300))
    shello = _tpl(s2c / TCP(flags="PA") / _SERVER_HELLO)
    fin = _tpl(c2s / TCP(flags="FA"))
    fin_r = _tpl(s2c / TCP(flags="FA"))
    names = [f"host{i}.example.{tld}".encode() for i in range(500) for tld in ("com", "org", "net")]
    dns_q = {n: _tpl(c2s / UDP() / DNS(id=1, rd=1, qd=DNSQR(qname=n))) for n in names[:300]}
    mdns = _tpl(
        Ether(src=CLIENT_MAC, dst="01:00:5e:00:00:fb")
        / IP(src="192.0.2.1", dst="224.0.0.251", ttl=255)
        / UDP(sport=5353, dport=5353)
        / DNS(qd=DNSQR(qname="_googlecast._tcp.local", qtype="PTR"))
    )
    qnames = list(dns_q)
    hosts = [bytes([192, 0, 2, h]) for h in range(2, 250)]
    servers = [bytes([203, 0, 113, h]) for h in range(1, 250)] + [bytes([198, 51, 100, h]) for h in range(1, 250)]
    macs = [bytes([2, 0, 0x5E, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF]) for i in range(max(devices, 1))]
    longs = [(rnd.choice(hosts), rnd.choice(servers), 20000 + i % 40000) for i in range(long_flows)]
    lseq = [0] * len(longs)
    while w.n < packets:
        r = rnd.random()
        h = rnd.choice(hosts)
        m = rnd.choice(macs) if devices > 1 else b""
        s = rnd.choice(servers)
        sp = rnd.randrange(32768, 61000)
        if r < 0.45:  # a short TLS or HTTP connection: 3WHS, request, a few responses, FIN
            dp, req = (443, hello) if rnd.random() < 0.8 else (80, http)
            isn, risn = rnd.getrandbits(32), rnd.getrandbits(32)
            w.write(_stamp(syn, h, s, sp, dp, isn, mac=m))
            w.write(_stamp(synack, s, h, dp, sp, risn, isn + 1))
            w.write(_stamp(ack, h, s, sp, dp, isn + 1, risn + 1))
            w.write(_stamp(req, h, s, sp, dp, isn + 1, risn + 1))
            off = 0
            if dp == 443:
                w.write(_stamp(shello, s, h, dp, sp, risn + 1, isn + 200))
                off = len(_SERVER_HELLO)
            for _ in range(rnd.randrange(2, 8)):
                w.write(_stamp(data_r, s, h, dp, sp, risn + 1 + off, isn + 200))
                off += 1305
            w.write(_stamp(fin, h, s, sp, dp, isn + 200, risn + 1 + off))
            w.write(_stamp(fin_r, s, h, dp, sp, risn + 1 + off, isn + 201))
            w.write(_stamp(ack, h, s, sp, dp, isn + 201, risn + 2 + off))
        elif r < 0.80:  # DNS-heavy: query and a response-sized reply
            q = dns_q[rnd.choice(qnames)]
            w.write(_stamp(q, h, bytes([192, 0, 2, 1]), sp, 53, mac=m))
        elif r < 0.85:
            w.write(_stamp(mdns, h, bytes([224, 0, 0, 251]), 5353, 5353))
        else:  # long video-like flows
            i = rnd.randrange(len(longs))
            lh, ls, lp = longs[i]
            for _ in range(10):
                w.write(_stamp(data_r, ls, lh, 443, lp, lseq[i]), 0.00005)
                lseq[i] += 1305
            w.write(_stamp(ack_r, lh, ls, lp, 443, 1, lseq[i]))
    w.close()
    return w.n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--devices", type=int, default=1, help="distinct client MACs")
    ap.add_argument("--long-flows", type=int, default=8, help="concurrent long flows")
    a = ap.parse_args()
    n = generate(Path(a.out), a.packets, a.seed, a.devices, a.long_flows)
    print(f"wrote {n} packets to {a.out}")


if __name__ == "__main__":
    main()
