"""Application-layer payload bytes for the fixtures: DHCP, DNS/mDNS/LLMNR, NBNS, SSDP, HTTP, SSH.

DHCP and NBNS are packed with struct so option order and name encoding are exactly what the
device profiles say (RFC 2131/2132, RFC 1002). DNS goes through scapy with name compression as
real resolvers and mDNS responders do (RFC 1035 4.1.4, RFC 6762). SSH KEXINIT follows RFC 4253 7.1.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRSRV, dns_compress
from scapy.layers.llmnr import LLMNRQuery, LLMNRResponse

DHCP_MAGIC = b"\x63\x82\x53\x63"
# RFC 1542 3.3 / RFC 2131: BOOTP messages are at least 300 bytes; clients pad to it.
BOOTP_MIN_LEN = 300

DhcpOption = tuple[int, bytes]


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ip_bytes(ip: str) -> bytes:
    return bytes(int(p) for p in ip.split("."))


def dhcp(
    op: int,
    xid: int,
    chaddr: str,
    options: Sequence[DhcpOption],
    ciaddr: str = "0.0.0.0",
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
    flags: int = 0,
    secs: int = 0,
    pad_to: int = BOOTP_MIN_LEN,
) -> bytes:
    """A BOOTP/DHCP message with options in exactly the given order, END, and zero padding."""
    fixed = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        op,
        1,
        6,
        0,
        xid,
        secs,
        flags,
        ip_bytes(ciaddr),
        ip_bytes(yiaddr),
        ip_bytes(siaddr),
        b"\x00" * 4,
        mac_bytes(chaddr),
        b"",
        b"",
    )
    opts = b"".join(bytes([code, len(val)]) + val for code, val in options) + b"\xff"
    msg = fixed + DHCP_MAGIC + opts
    return msg + b"\x00" * max(0, pad_to - len(msg))


def opt_u8(code: int, v: int) -> DhcpOption:
    return (code, bytes([v]))


def opt_u16(code: int, v: int) -> DhcpOption:
    return (code, struct.pack("!H", v))


def opt_u32(code: int, v: int) -> DhcpOption:
    return (code, struct.pack("!I", v))


def opt_ip(code: int, *ips: str) -> DhcpOption:
    return (code, b"".join(ip_bytes(i) for i in ips))


def opt_str(code: int, s: str) -> DhcpOption:
    return (code, s.encode())


def opt_list(code: int, values: Sequence[int]) -> DhcpOption:
    return (code, bytes(values))


def _compressed(pkt: DNS) -> bytes:
    return bytes(dns_compress(pkt))  # type: ignore[no-untyped-call]


def dns_query(qid: int, name: str, qtype: str = "A", rd: int = 1) -> bytes:
    return bytes(DNS(id=qid, rd=rd, qd=[DNSQR(qname=name, qtype=qtype)]))


def dns_answer(qid: int, name: str, qtype: str, answers: Sequence[tuple[str, str, int, str]], rcode: int = 0) -> bytes:
    """A recursive resolver's compressed answer; `answers` are (name, type, ttl, data)."""
    rrs = [DNSRR(rrname=n, type=t, ttl=ttl, rdata=d) for n, t, ttl, d in answers]
    pkt = DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=[DNSQR(qname=name, qtype=qtype)], an=rrs)
    return _compressed(pkt)


def mdns_query(names: Sequence[tuple[str, str]], qu: bool = False) -> bytes:
    """An mDNS query (id 0); `qu` sets the unicast-response bit (RFC 6762 5.4)."""
    qd = [DNSQR(qname=n, qtype=t, unicastresponse=1 if qu else 0) for n, t in names]
    return _compressed(DNS(id=0, rd=0, qd=qd))


def mdns_service(
    instance: str,
    service: str,
    host: str,
    port: int,
    txt: Sequence[str],
    ipv4: str | None = None,
    ipv6: str | None = None,
) -> bytes:
    """An mDNS announcement: PTR, SRV, TXT and A/AAAA, as Bonjour and Avahi send them."""
    full = f"{instance}.{service}.local"
    rrs: list[DNSRR | DNSRRSRV] = [
        DNSRR(rrname=f"{service}.local", type="PTR", ttl=4500, rdata=full),
        DNSRRSRV(rrname=full, cacheflush=1, ttl=120, priority=0, weight=0, port=port, target=f"{host}.local"),
        DNSRR(rrname=full, type="TXT", cacheflush=1, ttl=4500, rdata=[t.encode() for t in txt] or [b""]),
    ]
    if ipv4:
        rrs.append(DNSRR(rrname=f"{host}.local", type="A", cacheflush=1, ttl=120, rdata=ipv4))
    if ipv6:
        rrs.append(DNSRR(rrname=f"{host}.local", type="AAAA", cacheflush=1, ttl=120, rdata=ipv6))
    return _compressed(DNS(id=0, qr=1, aa=1, rd=0, qd=[], an=rrs))


def llmnr_query(qid: int, name: str, qtype: str = "A") -> bytes:
    return bytes(LLMNRQuery(id=qid, qd=[DNSQR(qname=name, qtype=qtype)]))


def llmnr_answer(qid: int, name: str, ip: str) -> bytes:
    return bytes(LLMNRResponse(id=qid, qd=[DNSQR(qname=name)], an=[DNSRR(rrname=name, type="A", ttl=30, rdata=ip)]))


def nb_encode(name: str, suffix: int) -> bytes:
    """RFC 1001 14.1 first-level encoding: 16 bytes (name padded with spaces + suffix) -> 32 letters."""
    raw = name.upper().encode().ljust(15, b" ")[:15] + bytes([suffix])
    return b"\x20" + _halves(raw) + b"\x00"


def _halves(raw: bytes) -> bytes:
    out = bytearray()
    for c in raw:
        out += bytes((ord("A") + (c >> 4), ord("A") + (c & 0x0F)))
    return bytes(out)


def nbns_registration(trn_id: int, name: str, suffix: int, ip: str, group: bool = False) -> bytes:
    """NBNS broadcast name registration (opcode 5, RD, B) with the NB resource in ADDITIONAL."""
    header = struct.pack("!HHHHHH", trn_id, 0x2910, 1, 0, 0, 1)
    question = nb_encode(name, suffix) + struct.pack("!HH", 0x20, 1)
    nb_flags = 0x8000 if group else 0x0000
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 0x20, 1, 300000, 6) + struct.pack("!H", nb_flags) + ip_bytes(ip)
    return header + question + rr


def nbns_query(trn_id: int, name: str, suffix: int) -> bytes:
    """NBNS broadcast name query (opcode 0, RD, B)."""
    return struct.pack("!HHHHHH", trn_id, 0x0110, 1, 0, 0, 0) + nb_encode(name, suffix) + b"\x00\x20\x00\x01"


def ssdp_msearch(st: str, user_agent: str = "", mx: int = 1) -> bytes:
    lines = [
        "M-SEARCH * HTTP/1.1",
        "HOST: 239.255.255.250:1900",
        'MAN: "ssdp:discover"',
        f"MX: {mx}",
        f"ST: {st}",
    ]
    if user_agent:
        lines.append(f"USER-AGENT: {user_agent}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ssdp_notify(nt: str, usn: str, server: str, location: str, max_age: int = 1800) -> bytes:
    lines = [
        "NOTIFY * HTTP/1.1",
        "HOST: 239.255.255.250:1900",
        f"CACHE-CONTROL: max-age={max_age}",
        f"LOCATION: {location}",
        f"NT: {nt}",
        "NTS: ssdp:alive",
        f"SERVER: {server}",
        f"USN: {usn}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ssdp_response(st: str, usn: str, server: str, location: str) -> bytes:
    lines = [
        "HTTP/1.1 200 OK",
        "CACHE-CONTROL: max-age=1800",
        "EXT:",
        f"LOCATION: {location}",
        f"SERVER: {server}",
        f"ST: {st}",
        f"USN: {usn}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_get(host: str, uri: str, user_agent: str | None, extra: Sequence[str] = ()) -> bytes:
    lines = [f"GET {uri} HTTP/1.1", f"Host: {host}"]
    if user_agent is not None:
        lines.append(f"User-Agent: {user_agent}")
    lines += ["Accept: */*", *extra, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_response(status: str, body: bytes, content_type: str = "text/plain") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nServer: nginx\r\nDate: Mon, 07 Sep 2026 07:30:00 GMT\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _name_list(names: Sequence[str]) -> bytes:
    b = ",".join(names).encode()
    return struct.pack("!I", len(b)) + b


def ssh_kexinit(
    rng: random.Random,
    kex: Sequence[str],
    hostkey: Sequence[str],
    ciphers: Sequence[str],
    macs: Sequence[str],
    compression: Sequence[str] = ("none", "zlib@openssh.com"),
) -> bytes:
    """An SSH binary packet carrying SSH_MSG_KEXINIT (RFC 4253 6 and 7.1), block size 8."""
    payload = (
        b"\x14"
        + rng.randbytes(16)
        + _name_list(kex)
        + _name_list(hostkey)
        + _name_list(ciphers)
        + _name_list(ciphers)
        + _name_list(macs)
        + _name_list(macs)
        + _name_list(compression)
        + _name_list(compression)
        + _name_list(())
        + _name_list(())
        + b"\x00"
        + b"\x00\x00\x00\x00"
    )
    pad = 8 - ((5 + len(payload)) % 8)
    if pad < 4:
        pad += 8
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + b"\x00" * pad


# OpenSSH 9.6 client defaults (ssh_config(5) KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms).
OPENSSH_KEX_CLIENT = (
    "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256", "ext-info-c",
    "kex-strict-c-v00@openssh.com",
)  # fmt: skip
OPENSSH_KEX_SERVER = (
    "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256", "kex-strict-s-v00@openssh.com",
)  # fmt: skip
OPENSSH_HOSTKEY_CLIENT = (
    "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com", "ssh-ed25519",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256",
)  # fmt: skip
OPENSSH_HOSTKEY_SERVER = ("rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519")
OPENSSH_CIPHERS = (
    "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
)  # fmt: skip
OPENSSH_MACS = (
    "umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
    "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1",
)  # fmt: skip
