"""Hostile inputs: malformed packets (each with the reason it must be counted under), LAN attacks
(each with the detection it must raise), and broken capture files.

`MALFORMED` lists, in packet order, a frame builder, the expected `stats.errors` reason slug (None
for the good packets placed between the bad ones) and a note; pcaps/README.md and truth.json are
written from the same list so they cannot drift from the capture.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from pcaps import _apps as A
from pcaps import _tls as T
from pcaps._devices import DEVICES, GATEWAY_IP, GATEWAY_MAC, SSH_SERVER_IP, SSH_SERVER_MAC, UA_CHROME_WIN
from pcaps._lan import Lan
from pcaps._school import join
from pcaps._wire import (
    ETH_BROADCAST,
    LINKTYPE_ETHERNET,
    SERVER,
    WINDOWS,
    Host,
    Record,
    TcpConversation,
    Trace,
    pcap_bytes,
)

CLIENT_MAC, CLIENT_IP = "d8:9e:f3:4a:21:07", "192.0.2.101"


def _eth(l3: Packet, src: str = CLIENT_MAC, dst: str = GATEWAY_MAC) -> bytes:
    return bytes(Ether(src=src, dst=dst) / l3)


def _ip(dst: str = GATEWAY_IP, **kw: Any) -> Packet:
    return IP(src=CLIENT_IP, dst=dst, ttl=128, id=0x4D2, **kw)


def _good_dns_query() -> bytes:
    return _eth(_ip() / UDP(sport=53001, dport=53) / Raw(A.dns_query(0x1111, "www.wikipedia.org")))


def _good_dns_answer() -> bytes:
    body = A.dns_answer(0x1111, "www.wikipedia.org", "A", [("www.wikipedia.org", "A", 300, "203.0.113.20")])
    pkt = IP(src=GATEWAY_IP, dst=CLIENT_IP, ttl=64, id=7) / UDP(sport=53, dport=53001) / Raw(body)
    return _eth(pkt, GATEWAY_MAC, CLIENT_MAC)


def _cut_ipv4() -> bytes:
    return _good_dns_query()[: 14 + 12]


def _cut_tcp() -> bytes:
    tcp = bytes(TCP(sport=50000, dport=443, flags="S", seq=1, window=64240))
    # The IPv4 total length (30) agrees with what is present: only 10 bytes of TCP header.
    return _eth(_ip("198.51.100.11", flags="DF", proto=6, len=30) / Raw(tcp[:10]))


def _syn(opts: bytes, dport: int = 443) -> bytes:
    doff = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", 50001, dport, 0x01020304, 0, doff << 4, 0x02, 64240, 0, 0) + opts
    ip = _ip("198.51.100.11", flags="DF", proto=6)
    return _eth(ip / Raw(tcp))


def _good_syn() -> bytes:
    return _syn(b"\x02\x04\x05\xb4\x01\x03\x03\x08\x01\x01\x04\x02")


def _client_hello_frame() -> bytes:
    hello = T.schannel_hello(random.Random(0x5A), "www.wikipedia.org")
    tcp = TCP(sport=50002, dport=443, flags="PA", seq=100, ack=200, window=1026)
    return _eth(_ip("203.0.113.20", flags="DF") / tcp / Raw(hello))


def _bad_ihl() -> bytes:
    b = bytearray(_good_dns_query())
    b[14] = 0x43  # version 4, IHL 3 words = 12 bytes < 20
    return bytes(b)


def _total_length_beyond() -> bytes:
    b = bytearray(_good_syn())
    struct.pack_into("!H", b, 16, 1500)  # says 1500, the frame holds 52 bytes of IP
    return bytes(b)


def _dns_loop() -> bytes:
    # Question name: label "a" then a pointer back to offset 12 (the label itself): a -> a -> a ...
    msg = struct.pack("!HHHHHH", 0x2222, 0x8180, 1, 0, 0, 0) + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"
    pkt = IP(src=GATEWAY_IP, dst=CLIENT_IP, ttl=64, id=8) / UDP(sport=53, dport=53002) / Raw(msg)
    return _eth(pkt, GATEWAY_MAC, CLIENT_MAC)


def _dns_self_pointer() -> bytes:
    msg = struct.pack("!HHHHHH", 0x3333, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    pkt = IP(src=GATEWAY_IP, dst=CLIENT_IP, ttl=64, id=9) / UDP(sport=53, dport=53003) / Raw(msg)
    return _eth(pkt, GATEWAY_MAC, CLIENT_MAC)


def _dhcp_overflow() -> bytes:
    body = A.dhcp(1, 0xDEADBEEF, CLIENT_MAC, [A.opt_u8(53, 1)], pad_to=0)[:-1]  # drop END
    body += b"\x0c\xc8" + b"STAFF-LT-0"  # hostname says 200 bytes, 10 follow, then the packet ends
    pkt = IP(src="0.0.0.0", dst="255.255.255.255", ttl=128, id=0) / UDP(sport=68, dport=67) / Raw(body)
    return _eth(pkt, CLIENT_MAC, ETH_BROADCAST)


def _ipv6_deep_chain() -> bytes:
    l3: Packet = IPv6(src="2001:db8:1::101", dst="2001:db8:1::1", hlim=64)
    for _ in range(20):
        l3 = l3 / IPv6ExtHdrDestOpt()
    return _eth(l3 / UDP(sport=53004, dport=53) / Raw(A.dns_query(0x4444, "www.wikipedia.org", "AAAA")))


def _ipv6_good_chain() -> bytes:
    l3 = (
        IPv6(src="2001:db8:1::101", dst="2001:db8:1::1", hlim=64)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(type=0, segleft=0, addresses=[])
        / IPv6ExtHdrDestOpt()
    )
    return _eth(l3 / UDP(sport=53005, dport=53) / Raw(A.dns_query(0x5555, "www.wikipedia.org", "AAAA")))


def _fragments() -> tuple[bytes, bytes]:
    payload = bytes(UDP(sport=53, dport=53006) / Raw(b"\x00" * 1600))
    first = IP(src=GATEWAY_IP, dst=CLIENT_IP, ttl=64, id=0x7777, flags="MF", frag=0, proto=17) / Raw(payload[:1480])
    later = IP(src=GATEWAY_IP, dst=CLIENT_IP, ttl=64, id=0x7777, flags=0, frag=185, proto=17) / Raw(payload[1480:])
    return _eth(first, GATEWAY_MAC, CLIENT_MAC), _eth(later, GATEWAY_MAC, CLIENT_MAC)


def _nbns_bad_name() -> bytes:
    msg = struct.pack("!HHHHHH", 0x6666, 0x0110, 1, 0, 0, 0) + b"\x20" + b"ZQ" * 16 + b"\x00\x00\x20\x00\x01"
    pkt = IP(src=CLIENT_IP, dst="192.0.2.255", ttl=128, id=11) / UDP(sport=137, dport=137) / Raw(msg)
    return _eth(pkt, CLIENT_MAC, ETH_BROADCAST)


def _tls_record_past_buffer() -> bytes:
    hello = bytearray(T.schannel_hello(random.Random(0x5A), "www.wikipedia.org")[:120])
    struct.pack_into("!H", hello, 3, 0x3FFF)  # record length 16383, 115 bytes follow
    hello[6:9] = (0x3FFB).to_bytes(3, "big")
    tcp = TCP(sport=50003, dport=443, flags="PA", seq=100, ack=200, window=1026)
    return _eth(_ip("203.0.113.20", flags="DF") / tcp / Raw(bytes(hello)))


def _arp() -> bytes:
    return _eth(ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT_IP, pdst=GATEWAY_IP), CLIENT_MAC, ETH_BROADCAST)


def _huge_http_segments() -> list[bytes]:
    head = (
        f"GET /index.html HTTP/1.1\r\nHost: ent.ecole.example\r\nUser-Agent: {UA_CHROME_WIN}\r\n"
        f"X-Filler: {'A' * 9000}\r\n\r\n"
    ).encode()
    out, seq = [], 1000
    for i in range(0, len(head), 1460):
        chunk = head[i : i + 1460]
        tcp = TCP(sport=50004, dport=80, flags="PA" if i + 1460 >= len(head) else "A", seq=seq, ack=1, window=1026)
        out.append(_eth(_ip("198.51.100.50", flags="DF") / tcp / Raw(chunk)))
        seq += len(chunk)
    return out


Case = tuple[Callable[[], bytes], str | None, str]

MALFORMED: list[Case] = [
    (_good_dns_query, None, "good DNS query (A www.wikipedia.org)"),
    (_cut_ipv4, "ipv4.truncated", "Ethernet + 12 bytes of IPv4 header"),
    (_good_dns_answer, None, "good DNS answer"),
    (_cut_tcp, "tcp.truncated", "IPv4 total length 30: only 10 bytes of TCP header"),
    (_bad_ihl, "ipv4.bad_ihl", "IPv4 IHL 3 (12 bytes, minimum is 20)"),
    (_good_syn, None, "good Windows SYN (mss,nop,ws,nop,nop,sok)"),
    (_total_length_beyond, None,
     "IPv4 total length 1500 in a 66-byte frame (caplen == len, so not a snaplen cut): decoded up to the "
     "buffer end; a decoder that tells it from a snaplen cut may count ipv4.bad_total_length"),
    (lambda: _syn(b"\x02\x04\x05\xb4\x08\x00\x00\x00"), "tcp.zero_length_option",
     "SYN whose second option (kind 8) has length 0"),
    (lambda: _syn(b"\x02\x04\x05\xb4\x03\x09\x07\x00"), "tcp.bad_option",
     "SYN whose window-scale option claims 9 bytes, past the 8-byte option area"),
    (_arp, None, "good ARP request"),
    (_dns_loop, "dns.compression_loop", "DNS answer whose question name points back into itself (a -> a)"),
    (_dns_self_pointer, "dns.compression_loop", "DNS answer whose question name is a pointer to itself"),
    (_dhcp_overflow, "dhcp.option_overflow", "DHCP DISCOVER whose option 12 claims 200 bytes, 10 follow"),
    (_ipv6_good_chain, None, "good IPv6 hop-by-hop + routing + destination options + UDP DNS"),
    (_ipv6_deep_chain, "ipv6.too_many_ext_headers", "IPv6 with 20 destination-options headers"),
    (lambda: _fragments()[0], None, "IPv4 first fragment (MF, offset 0): counted in stats.fragments"),
    (lambda: _fragments()[1], None, "IPv4 later fragment (offset 1480): counted in stats.fragments"),
    (_nbns_bad_name, "nbns.bad_name", "NBNS query whose encoded name uses letters outside A..P"),
    (_tls_record_past_buffer, "tls.truncated",
     "TLS record length 16383 with 115 bytes present (ClientHello length past the buffer); a "
     "reassembling parser may instead wait for the rest and count nothing"),
    (_good_dns_query, None, "good DNS query again (the run goes on)"),
]  # fmt: skip

# Where two correct decoders may legitimately differ, the other acceptable outcome.
ALSO_ACCEPTABLE: dict[Callable[[], bytes], list[str | None]] = {
    _total_length_beyond: ["ipv4.bad_total_length"],
    # A stream parser that reassembles ClientHellos waits for the missing bytes and sees none.
    _tls_record_past_buffer: [None],
}

SNAPLEN_CUT = 96  # bytes kept of the snaplen-cut frame (a tcpdump -s 96 style capture)


def malformed_records() -> tuple[list[Record], list[dict[str, object]]]:
    """The malformed capture's records and, per packet, its expected reason and note."""
    trace = Trace(2)
    cur = trace.cursor(0.0)
    notes: list[dict[str, object]] = []
    for fn, reason, note in MALFORMED:
        cur.emit_raw(fn(), 0.01)
        entry: dict[str, object] = {"n": len(notes) + 1, "reason": reason, "note": note}
        if fn in ALSO_ACCEPTABLE:
            entry["also_acceptable"] = ALSO_ACCEPTABLE[fn]
        notes.append(entry)
        if fn is _good_syn:
            full = _client_hello_frame()
            cur.emit_raw(full[:SNAPLEN_CUT], 0.01, orig_len=len(full))
            note = (
                f"snaplen cut: TLS ClientHello frame of {len(full)} bytes, {SNAPLEN_CUT} captured; "
                "L2-L4 decode, the hello is incomplete (tls.truncated if parsed)"
            )
            notes.append({"n": len(notes) + 1, "reason": None, "note": note})
    segs = _huge_http_segments()
    for s in segs:
        cur.emit_raw(s, 0.001)
    notes.append({"n": len(notes) + 1, "reason": "http.line_too_long",
                  "note": f"packets {len(notes) + 1}-{len(notes) + len(segs)}: HTTP request with a 9,010-byte "
                          "header line (> 8190) over several segments; per packet the head never ends"})  # fmt: skip
    return trace.records(), notes


def malformed() -> bytes:
    return pcap_bytes(malformed_records()[0], LINKTYPE_ETHERNET)


# --- LAN attacks ---------------------------------------------------------------------------
ROGUE_DHCP_IP, ROGUE_DHCP_MAC = "192.0.2.250", "98:de:d0:11:22:33"  # TP-Link home router plugged in
SPOOFER_MAC = "2c:f0:5d:6e:7f:80"  # Micro-Star (MSI) gaming PC of a pupil
SPOOFER_IP = "192.0.2.66"
OUTSIDE_RESOLVER = "203.0.113.53"
BAD_UA = "sqlmap/1.7.2#stable (https://sqlmap.org)"
EVIL_DOMAIN = "evil.example.com"
MALWARE_SNI = "malware.example.net"
MALWARE_IP = "203.0.113.66"
SCAN_TARGETS = [f"192.0.2.{i}" for i in range(130, 190)]
VERTICAL_TARGET = SSH_SERVER_IP
VERTICAL_OPEN = (22, 80, 443, 445)


def lan_attacks_trace() -> Trace:
    trace = Trace(4)
    lan = Lan(trace.rng)
    rng = trace.rng
    by_key = {d.key: d for d in DEVICES}
    win, chromebook, android = by_key["win11_laptop"], by_key["chromebook"], by_key["android_phone"]
    # 1. Normal join of the Windows laptop (learns the real gateway MAC).
    cur = trace.cursor(1.0)
    h = join(lan, cur, win)
    # 2. Rogue DHCP: the Chromebook's DISCOVER is answered by the rogue server too.
    cur = trace.cursor(10.0)
    rogue = Host(ROGUE_DHCP_MAC, ROGUE_DHCP_IP, SERVER)
    lan.dhcp_join(cur, chromebook, server=rogue, offer_ip="192.0.2.200")
    # The real server's OFFER to the same DISCOVER arrives later (the rogue answered first).
    lan.dhcp_join(trace.cursor(10.012), chromebook, with_request=False, answer_xid=lan.last_xid)
    # 3. ARP spoofing: a second MAC claims the gateway's address (gratuitous replies every 2 s).
    cur = trace.cursor(20.0)
    for victim in (win, android):
        lan.arp_resolve(cur, victim.mac, victim.ip, GATEWAY_MAC, GATEWAY_IP)
    for i in range(5):
        for victim in (win, android):
            arp = ARP(op=2, hwsrc=SPOOFER_MAC, psrc=GATEWAY_IP, hwdst=victim.mac, pdst=victim.ip)
            cur.emit(SPOOFER_MAC, victim.mac, arp, 2.0 if i else 0.5)
    # 4. Horizontal scan: SYN to 445 on 60 hosts within 3 s; 4 answer SYN+ACK, 20 RST, the rest nothing.
    attacker = Host(SPOOFER_MAC, SPOOFER_IP, WINDOWS)
    cur = trace.cursor(40.0)
    for i, ip in enumerate(SCAN_TARGETS):
        target = Host(f"dc:a6:32:00:00:{i:02x}", ip, SERVER)
        conv = TcpConversation(cur, attacker, target, 61000 + i, 445, rtt_s=0.0008)
        conv.syn_only("SA" if i % 15 == 3 else "RA" if i % 3 == 0 else "")
        cur.wait(0.05)
    # 5. Vertical scan: 200 ports on the file server within 4 s.
    cur = trace.cursor(60.0)
    srv = Host(SSH_SERVER_MAC, VERTICAL_TARGET, SERVER)
    closed_fixed = (21, 25, 53, 3389)
    pool = [p for p in range(1, 10000) if p not in closed_fixed and p not in VERTICAL_OPEN]
    ports = sorted([*rng.sample(pool, 200 - 8), *closed_fixed]) + list(VERTICAL_OPEN)
    for port in ports:
        conv = TcpConversation(cur, attacker, srv, 62000, port, rtt_s=0.0004)
        conv.syn_only("SA" if port in VERTICAL_OPEN else "RA")
        cur.wait(0.02)
    # 6. Android phone uses an outside resolver instead of the site's.
    cur = trace.cursor(80.0)
    ah = lan.host(android)
    outside = Lan(rng, resolver_ip=OUTSIDE_RESOLVER)
    for name in ("www.google.com", "www.youtube.com", "connectivitycheck.gstatic.com"):
        outside.dns(cur, ah, name)
    # 7. HTTP with a known-bad User-Agent and a WordPress login probe against the file server.
    cur = trace.cursor(90.0)
    for uri, ua in (("/index.php?id=1%27%20AND%201=1--", BAD_UA), ("/wp-login.php", "Mozilla/5.0 (compatible)")):
        conv = TcpConversation(cur, attacker, srv, 63000 + len(uri), 80, rtt_s=0.0005)
        conv.open()
        conv.send(True, A.http_get(VERTICAL_TARGET, uri, ua))
        conv.send(False, A.http_response("404 Not Found", b"not found"))
        conv.close()
    # 8. DNS query for a known-bad domain, then TLS to a known-bad SNI.
    cur = trace.cursor(100.0)
    lan.dns(cur, h, EVIL_DOMAIN)
    lan.dns(cur, h, MALWARE_SNI)
    mal = Host(GATEWAY_MAC, MALWARE_IP, SERVER, ttl=51)
    lan.tls(cur, h, MALWARE_SNI, T.chrome_hello(rng, MALWARE_SNI), rounds=1, server=mal)
    return trace


def lan_attacks() -> bytes:
    return pcap_bytes(lan_attacks_trace().records(), LINKTYPE_ETHERNET)


ATTACKS: list[dict[str, object]] = [
    {"detection": "rogue_dhcp", "server": ROGUE_DHCP_IP, "server_mac": ROGUE_DHCP_MAC,
     "allowed": [GATEWAY_IP], "what": "OFFER and ACK from 192.0.2.250 to the Chromebook (d0:c6:37:1d:8e:44)"},
    {"detection": "arp_spoof", "ip": GATEWAY_IP, "real_mac": GATEWAY_MAC, "spoofed_mac": SPOOFER_MAC,
     "what": "10 unsolicited ARP replies claiming 192.0.2.1 is-at 2c:f0:5d:6e:7f:80"},
    {"detection": "horizontal_scan", "src": SPOOFER_IP, "dport": 445, "targets": len(SCAN_TARGETS),
     "what": "SYN to port 445 on 192.0.2.130-189 within 3.1 s"},
    {"detection": "vertical_scan", "src": SPOOFER_IP, "dst": VERTICAL_TARGET, "ports": 200,
     "what": "SYN to 200 distinct ports of 192.0.2.10 within 4.1 s; 22, 80, 443, 445 answer SYN+ACK"},
    {"detection": "foreign_dns_resolver", "src": "192.0.2.106", "resolver": OUTSIDE_RESOLVER,
     "site_resolver": GATEWAY_IP, "what": "3 DNS queries to 203.0.113.53 from the Android phone"},
    {"detection": "rule:http.user_agent", "content": "sqlmap", "src": SPOOFER_IP,
     "what": "GET /index.php?id=... with User-Agent sqlmap/1.7.2"},
    {"detection": "rule:http.uri", "content": "/wp-login.php", "src": SPOOFER_IP, "what": "GET /wp-login.php"},
    {"detection": "rule:dns.query / ioc:domain", "content": EVIL_DOMAIN, "src": "192.0.2.101",
     "what": "A query for evil.example.com (and its answer)"},
    {"detection": "rule:tls.sni / ioc:domain", "content": MALWARE_SNI, "src": "192.0.2.101",
     "dst": MALWARE_IP, "what": "TLS ClientHello with SNI malware.example.net"},
]  # fmt: skip


# --- Broken files -------------------------------------------------------------------------
def truncated_file_and_offset() -> tuple[bytes, int, int]:
    """A pcap cut in the middle of its 8th record: (bytes, offset of the cut record, whole records)."""
    trace = Trace(7)
    lan = Lan(trace.rng)
    cur = trace.cursor(0.0)
    d = DEVICES[0]
    h = join(lan, cur, d)
    lan.dns(cur, h, "www.msftconnecttest.com")
    records = trace.records()
    whole = 7
    full = pcap_bytes(records, LINKTYPE_ETHERNET)
    offset = 24 + sum(16 + len(r.data) for r in records[:whole])
    cut = offset + 16 + len(records[whole].data) // 2
    return full[:cut], offset, whole


def truncated_file() -> bytes:
    return truncated_file_and_offset()[0]


NOT_A_CAPTURE = (
    b"This is not a capture file.\n"
    b"It is a text note someone saved with a .pcap name: Veille must report the file and offset 0.\n"
)


def not_a_capture() -> bytes:
    return NOT_A_CAPTURE
