"""An IPv6-only site: SLAAC and NDP, MLDv2 with a hop-by-hop Router Alert, stateful DHCPv6, and
DNS/mDNS/HTTP/TLS over IPv6 (some TCP data with a destination-options header).

DHCPv6 client shapes: Windows sends DUID-LLT, IA_NA, FQDN (39), vendor class enterprise 311
"MSFT 5.0" (RFC 8415 21.16; Microsoft's IANA enterprise number) and ORO 17,23,24,39; macOS sends
DUID-LLT with ORO 23,24; NetworkManager on Linux sends DUID-LL with ORO 23,24,39,82.
"""

from __future__ import annotations

from dataclasses import dataclass

from scapy.layers.dhcp6 import (
    DUID_LL,
    DUID_LLT,
    VENDOR_CLASS_DATA,
    DHCP6_Advertise,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptClientFQDN,
    DHCP6OptClientId,
    DHCP6OptDNSServers,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
    DHCP6OptServerId,
    DHCP6OptVendorClass,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.packet import Packet

from pcaps import _apps as A
from pcaps import _tls as T
from pcaps._devices import DEVICES, GATEWAY_MAC, UA_CHROME_WIN, UA_FIREFOX_LINUX, UA_SAFARI_MAC, Device
from pcaps._wire import SERVER_V6, Cursor, Host, TcpConversation, Trace, udp

SEED = 6
PREFIX = "2001:db8:1::"
ROUTER_LL = "fe80::21b:54ff:fe0a:1"
ROUTER_GUA = "2001:db8:1::1"
ALL_NODES, ALL_NODES_MAC = "ff02::1", "33:33:00:00:00:01"
ALL_ROUTERS, ALL_ROUTERS_MAC = "ff02::2", "33:33:00:00:00:02"
DHCP6_AGENTS, DHCP6_AGENTS_MAC = "ff02::1:2", "33:33:00:01:00:02"
MLDV2, MLDV2_MAC = "ff02::16", "33:33:00:00:00:16"
MDNS6, MDNS6_MAC = "ff02::fb", "33:33:00:00:00:fb"
SERVERS6 = {
    "www.msftconnecttest.com": "2001:db8:100::10",
    "www.apple.com": "2001:db8:100::21",
    "fr.wikipedia.org": "2001:db8:203::20",
    "classroom.google.com": "2001:db8:203::12",
}


def eui64(mac: str) -> str:
    b = bytearray(A.mac_bytes(mac))
    b[0] ^= 0x02
    iid = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return ":".join(f"{iid[i]:02x}{iid[i + 1]:02x}" for i in range(0, 8, 2))


def solicited_node(addr_tail: str) -> tuple[str, str]:
    """Solicited-node multicast address and MAC for an address whose last 24 bits are in `addr_tail`."""
    tail = bytes.fromhex(addr_tail)
    return (f"ff02::1:ff{tail[0]:02x}:{tail[1]:02x}{tail[2]:02x}",
            f"33:33:ff:{tail[0]:02x}:{tail[1]:02x}:{tail[2]:02x}")  # fmt: skip


@dataclass(frozen=True, slots=True)
class V6Client:
    dev: Device
    iid: str  # interface identifier (EUI-64 for Windows/Linux here, random-looking for macOS)
    duid: Packet
    oro: tuple[int, ...]
    extra: tuple[Packet, ...]

    @property
    def ll(self) -> str:
        return f"fe80::{self.iid}"

    @property
    def gua(self) -> str:
        return f"{PREFIX}{self.iid}"

    @property
    def iaid(self) -> int:
        return int(self.iid.replace(":", "")[-6:], 16)

    @property
    def dhcp6_addr(self) -> str:
        """The address the DHCPv6 server leases (IA_NA), besides the SLAAC one."""
        return f"{PREFIX}{100 + (self.iaid % 100):x}"


def _clients() -> list[V6Client]:
    by_key = {d.key: d for d in DEVICES}
    win, mac, lin = by_key["win11_laptop"], by_key["macbook"], by_key["ubuntu_admin"]
    return [
        V6Client(win, eui64(win.mac), DUID_LLT(lladdr=win.mac, timeval=0x2FAF0800), (17, 23, 24, 39),
                 (DHCP6OptClientFQDN(fqdn=f"{win.hostname}.ecole.example"),
                  DHCP6OptVendorClass(enterprisenum=311, vcdata=[VENDOR_CLASS_DATA(data=b"MSFT 5.0")]))),
        V6Client(mac, "1c8e:7a42:93d0:5b17", DUID_LLT(lladdr=mac.mac, timeval=0x2C1D3E4F), (23, 24), ()),
        V6Client(lin, eui64(lin.mac), DUID_LL(lladdr=lin.mac), (23, 24, 39, 82),
                 (DHCP6OptClientFQDN(fqdn=f"{lin.hostname}.ecole.example"),)),
    ]  # fmt: skip


def _icmp6(cur: Cursor, src_mac: str, dst_mac: str, l3: Packet, gap: float = 0.01) -> None:
    cur.emit(src_mac, dst_mac, l3, gap)


def _router_advert(cur: Cursor, dst: str = ALL_NODES, dst_mac: str = ALL_NODES_MAC) -> None:
    ra = (
        IPv6(src=ROUTER_LL, dst=dst, hlim=255)
        / ICMPv6ND_RA(chlim=64, M=1, O=1, routerlifetime=1800)
        / ICMPv6NDOptSrcLLAddr(lladdr=GATEWAY_MAC)
        / ICMPv6NDOptMTU(mtu=1500)
        / ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=2592000, preferredlifetime=604800, prefix=PREFIX)
        / ICMPv6NDOptRDNSS(lifetime=1800, dns=[ROUTER_GUA])
    )
    _icmp6(cur, GATEWAY_MAC, dst_mac, ra)


def _join(cur: Cursor, c: V6Client, rng_bits: int) -> None:
    mac = c.dev.mac
    tail = c.iid.replace(":", "")[-6:]
    sn, sn_mac = solicited_node(tail)
    # MLDv2 report (hop-by-hop Router Alert, RFC 3810 5.2.14), DAD for the link-local, RS, RA.
    mld = (
        IPv6(src="::", dst=MLDV2, hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst=sn)])
    )
    _icmp6(cur, mac, MLDV2_MAC, mld)
    _icmp6(cur, mac, sn_mac, IPv6(src="::", dst=sn, hlim=255) / ICMPv6ND_NS(tgt=c.ll), 0.3)
    rs = IPv6(src=c.ll, dst=ALL_ROUTERS, hlim=255) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    _icmp6(cur, mac, ALL_ROUTERS_MAC, rs, 1.0)
    _router_advert(cur)
    _icmp6(cur, mac, sn_mac, IPv6(src="::", dst=sn, hlim=255) / ICMPv6ND_NS(tgt=c.gua), 0.05)
    # Stateful DHCPv6 (RA M flag): SOLICIT, ADVERTISE, REQUEST, REPLY.
    trid = rng_bits & 0xFFFFFF
    iaid = c.iaid
    server_duid = DUID_LLT(lladdr=GATEWAY_MAC, timeval=0x2A000000)
    addr = c.dhcp6_addr

    def client_msg(msg: Packet, with_server: bool) -> None:
        opts: Packet = msg / DHCP6OptElapsedTime(elapsedtime=0) / DHCP6OptClientId(duid=c.duid)
        if with_server:
            opts = opts / DHCP6OptServerId(duid=server_duid)
        opts = opts / DHCP6OptIA_NA(iaid=iaid, T1=0, T2=0)
        for e in c.extra:
            opts = opts / e.copy()
        opts = opts / DHCP6OptOptReq(reqopts=list(c.oro))
        pkt = IPv6(src=c.ll, dst=DHCP6_AGENTS, hlim=1) / UDP(sport=546, dport=547) / opts
        _icmp6(cur, mac, DHCP6_AGENTS_MAC, pkt, 0.02)

    def server_msg(msg: Packet) -> None:
        body = (
            msg
            / DHCP6OptServerId(duid=server_duid)
            / DHCP6OptClientId(duid=c.duid)
            / DHCP6OptIA_NA(
                iaid=iaid, T1=43200, T2=69120, ianaopts=[DHCP6OptIAAddress(addr=addr, preflft=86400, validlft=172800)]
            )
            / DHCP6OptDNSServers(dnsservers=[ROUTER_GUA])
        )
        pkt = IPv6(src=ROUTER_LL, dst=c.ll, hlim=64) / UDP(sport=547, dport=546) / body
        _icmp6(cur, GATEWAY_MAC, mac, pkt, 0.004)

    client_msg(DHCP6_Solicit(trid=trid), False)
    server_msg(DHCP6_Advertise(trid=trid))
    client_msg(DHCP6_Request(trid=(trid + 1) & 0xFFFFFF), True)
    server_msg(DHCP6_Reply(trid=(trid + 1) & 0xFFFFFF))
    # Neighbour resolution of the router's global address.
    rsn, rsn_mac = solicited_node("000001")
    ns = IPv6(src=c.gua, dst=rsn, hlim=255) / ICMPv6ND_NS(tgt=ROUTER_GUA) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    _icmp6(cur, mac, rsn_mac, ns)
    na = (
        IPv6(src=ROUTER_GUA, dst=c.gua, hlim=255)
        / ICMPv6ND_NA(tgt=ROUTER_GUA, R=1, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=GATEWAY_MAC)
    )
    _icmp6(cur, GATEWAY_MAC, mac, na, 0.0004)


def ipv6_only() -> Trace:
    """The IPv6-only capture (Ethernet)."""
    trace = Trace(SEED)
    rng = trace.rng
    router = Host(GATEWAY_MAC, ROUTER_GUA, SERVER_V6)
    cur = trace.cursor(0.2)
    _router_advert(cur)  # periodic unsolicited RA
    for i, c in enumerate(_clients()):
        cur = trace.cursor(1.0 + 20 * i)
        _join(cur, c, rng.getrandbits(24))
        h = Host(c.dev.mac, c.gua, c.dev.stack)
        qid = rng.getrandbits(16)
        site = ("www.msftconnecttest.com", "www.apple.com", "fr.wikipedia.org")[i]
        udp(cur, h, GATEWAY_MAC, ROUTER_GUA, 50000 + i, 53, A.dns_query(qid, site, "AAAA"), 0.05)
        ans = A.dns_answer(qid, site, "AAAA", [(site, "AAAA", 300, SERVERS6[site])])
        udp(cur, router, c.dev.mac, c.gua, 53, 50000 + i, ans, 0.01)
        mdns = A.mdns_service(c.dev.hostname, "_workstation._tcp", c.dev.hostname, 9, [], ipv6=c.gua)
        udp(cur, h, MDNS6_MAC, MDNS6, 5353, 5353, mdns, 0.1, ttl=255)
        srv = Host(GATEWAY_MAC, SERVERS6[site], SERVER_V6, ttl=52)
        ua = (UA_CHROME_WIN, UA_SAFARI_MAC, UA_FIREFOX_LINUX)[i]
        conv = TcpConversation(cur, h, srv, 50100 + i, 80, rtt_s=0.02, dest_opts=i == 0)
        conv.open()
        conv.send(True, A.http_get(site, "/", ua))
        conv.send(False, A.http_response("200 OK", b"ok"))
        conv.close(client_first=False)
        hello = (T.chrome_hello, T.safari_hello, T.firefox_hello)[i](rng, site)
        conv = TcpConversation(cur, h, srv, 50200 + i, 443, rtt_s=0.02, dest_opts=i == 2)
        conv.open()
        conv.send(True, hello, ack=False)
        conv.send(False, T.server_hello_flight(rng, hello), ack=False)
        conv.send(True, T.client_finished() + T.app_data(rng, 80))
        conv.send(False, T.app_data(rng, 200))
        conv.close()
    udp(trace.cursor(70.0), router, MDNS6_MAC, MDNS6, 5353, 5353,
        A.mdns_query([("_ipp._tcp.local", "PTR")]), 0.0, ttl=255)  # fmt: skip
    return trace


def v6_truth() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for c in _clients():
        d = c.dev
        out[d.mac] = {
            "device_type": d.device_type, "vendor": d.vendor, "os": d.os, "os_version": d.os_version,
            "hostname": d.hostname, "ips": [c.ll, c.gua, c.dhcp6_addr], "dhcp6_oro": list(c.oro),
            "randomized_mac": False,
        }  # fmt: skip
    out[GATEWAY_MAC] = {"device_type": "network equipment", "vendor": "Cisco Systems, Inc", "os": None,
                        "os_version": None, "hostname": None, "ips": [ROUTER_LL, ROUTER_GUA],
                        "randomized_mac": False}  # fmt: skip
    return out
