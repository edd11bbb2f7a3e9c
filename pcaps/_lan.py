"""Traffic building blocks of a LAN morning: DHCP joins, ARP, DNS, mDNS, SSDP, NBNS, HTTP, TLS, SSH.

Every block writes frames on a `Cursor`; the device scripts in `_school` compose them. Outside
servers are reached through the gateway (their frames carry the gateway's MAC and a TTL lowered by
the hops on the way). All randomness comes from the trace's seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP
from scapy.packet import Raw

from pcaps import _apps as A
from pcaps import _tls as T
from pcaps._devices import DOMAIN, GATEWAY_IP, GATEWAY_MAC, SERVERS, Device
from pcaps._wire import ETH_BROADCAST, SERVER, Cursor, Host, TcpConversation, udp

MDNS_MAC = "01:00:5e:00:00:fb"
MDNS_IP = "224.0.0.251"
SSDP_MAC = "01:00:5e:7f:ff:fa"
SSDP_IP = "239.255.255.250"
LLMNR_MAC = "01:00:5e:00:00:fc"
LLMNR_IP = "224.0.0.252"

HelloFn = Callable[[random.Random, str], bytes]


class Lan:
    """The site: gateway (DHCP + DNS), a resolver table, and helpers bound to one trace's RNG."""

    def __init__(
        self,
        rng: random.Random,
        gateway_ip: str = GATEWAY_IP,
        gateway_mac: str = GATEWAY_MAC,
        resolver_ip: str = GATEWAY_IP,
        netmask: str = "255.255.255.0",
        broadcast: str = "192.0.2.255",
    ) -> None:
        self.rng = rng
        self.gw = Host(gateway_mac, gateway_ip, SERVER)
        self.resolver_ip = resolver_ip
        self.netmask = netmask
        self.broadcast = broadcast
        self.last_xid = 0
        self._dns_id = 0x1F00

    def host(self, dev: Device) -> Host:
        # TCP timestamp clocks start at an arbitrary value per host (RFC 7323 5.4).
        return Host(dev.mac, dev.ip, dev.stack, ts_clock=self.rng.getrandbits(31))

    def server(self, name_or_ip: str) -> Host:
        ip = SERVERS.get(name_or_ip, name_or_ip)
        # Outside servers start at TTL 64 and cross 10 to 14 routers before the gateway.
        return Host(self.gw.mac, ip, SERVER, ttl=64 - self.rng.randrange(10, 15))

    def next_dns_id(self) -> int:
        self._dns_id = (self._dns_id * 75 + 74) % 65537 & 0xFFFF
        return self._dns_id

    # --- DHCP -----------------------------------------------------------------------------
    def client_options(self, dev: Device, msg_type: int, server_id: str = "") -> list[A.DhcpOption]:
        p = dev.dhcp
        opts: list[A.DhcpOption] = []
        for code in p.order:
            if code == 53:
                opts.append(A.opt_u8(53, msg_type))
            elif code == 61 and p.client_id:
                cid = b"\x01" + A.mac_bytes(dev.mac) if p.client_id == "mac" else bytes.fromhex(p.client_id)
                opts.append((61, cid))
            elif code == 50:
                opts.append(A.opt_ip(50, dev.ip))
                if msg_type == 3 and server_id:
                    opts.append(A.opt_ip(54, server_id))
            elif code == 12 and dev.hostname:
                opts.append(A.opt_str(12, dev.hostname))
                if msg_type == 3 and p.vendor_class == "MSFT 5.0":
                    # Windows adds its FQDN (RFC 4702: flags S=0, rcodes 0, ASCII name).
                    opts.append((81, b"\x00\x00\x00" + dev.hostname.encode()))
            elif code == 60 and p.vendor_class:
                opts.append(A.opt_str(60, p.vendor_class))
            elif code == 55:
                opts.append(A.opt_list(55, p.params))
            elif code == 57 and p.max_size:
                opts.append(A.opt_u16(57, p.max_size))
            elif code == 51 and p.lease:
                opts.append(A.opt_u32(51, p.lease))
        return opts

    def server_options(self, msg_type: int, server_ip: str) -> list[A.DhcpOption]:
        return [
            A.opt_u8(53, msg_type),
            A.opt_ip(54, server_ip),
            A.opt_u32(51, 86400),
            A.opt_u32(58, 43200),
            A.opt_u32(59, 75600),
            A.opt_ip(1, self.netmask),
            A.opt_ip(28, self.broadcast),
            A.opt_ip(3, self.gw.ip),
            A.opt_ip(6, self.resolver_ip),
            A.opt_str(15, DOMAIN),
        ]

    def dhcp_join(
        self,
        cur: Cursor,
        dev: Device,
        server: Host | None = None,
        offer_ip: str = "",
        with_request: bool = True,
        answer_xid: int | None = None,
    ) -> None:
        """DISCOVER, OFFER, REQUEST, ACK for `dev` (server defaults to the site's gateway).

        With `answer_xid`, only the server's OFFER to an earlier DISCOVER with that xid is sent.
        """
        srv = server or self.gw
        if answer_xid is None:
            self.last_xid = self.rng.getrandbits(32)
        xid = self.last_xid if answer_xid is None else answer_xid
        flags = 0x8000 if dev.dhcp.broadcast else 0
        yiaddr = offer_ip or dev.ip
        bcast_ttl = 128 if dev.stack.name == "windows" else 64

        def client(msg_type: int, secs: int, server_id: str = "") -> None:
            # A REQUEST asks for the offered address (option 50), a DISCOVER for the previous lease.
            asking = replace(dev, ip=yiaddr) if msg_type == 3 else dev
            opts = self.client_options(asking, msg_type, server_id)
            body = A.dhcp(1, xid, dev.mac, opts, flags=flags, secs=secs)
            pkt = IP(src="0.0.0.0", dst="255.255.255.255", ttl=bcast_ttl, id=0) / UDP(sport=68, dport=67)
            cur.emit(dev.mac, ETH_BROADCAST, pkt / Raw(body), 0.0)

        def reply(msg_type: int) -> None:
            body = A.dhcp(2, xid, dev.mac, self.server_options(msg_type, srv.ip), yiaddr=yiaddr, flags=flags)
            dst_ip, dst_mac = ("255.255.255.255", ETH_BROADCAST) if flags else (yiaddr, dev.mac)
            pkt = IP(src=srv.ip, dst=dst_ip, ttl=255, id=0) / UDP(sport=67, dport=68)
            cur.emit(srv.mac, dst_mac, pkt / Raw(body), 0.002 + self.rng.random() * 0.004)

        if answer_xid is None:
            client(1, 0)
        reply(2)
        if with_request:
            cur.wait(0.05 + self.rng.random() * 0.3)
            client(3, 1, srv.ip)
            reply(5)

    # --- ARP ------------------------------------------------------------------------------
    def arp_announce(self, cur: Cursor, mac: str, ip: str) -> None:
        """RFC 5227 probe then announcement for a newly configured address."""
        cur.emit(mac, ETH_BROADCAST, ARP(op=1, hwsrc=mac, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=ip), 0.01)
        cur.emit(mac, ETH_BROADCAST, ARP(op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=ip), 0.2)

    def arp_resolve(self, cur: Cursor, mac: str, ip: str, target_mac: str, target_ip: str) -> None:
        cur.emit(mac, ETH_BROADCAST, ARP(op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=target_ip), 0.01)
        cur.emit(target_mac, mac, ARP(op=2, hwsrc=target_mac, psrc=target_ip, hwdst=mac, pdst=ip), 0.0004)

    # --- DNS family -----------------------------------------------------------------------
    def dns(self, cur: Cursor, h: Host, name: str, qtype: str = "A", resolver_mac: str = "") -> str:
        """A query to the site resolver and its answer; returns the address answered."""
        qid = self.next_dns_id()
        sport = 49152 + self.rng.randrange(16000)
        ip = SERVERS.get(name, "203.0.113.99")
        rmac = resolver_mac or self.gw.mac
        udp(cur, h, rmac, self.resolver_ip, sport, 53, A.dns_query(qid, name, qtype), 0.01)
        if qtype == "AAAA":
            answers: list[tuple[str, str, int, str]] = []
        else:
            answers = [(name, "A", 300, ip)]
        resp = A.dns_answer(qid, name, qtype, answers)
        res = Host(rmac, self.resolver_ip, SERVER)
        udp(cur, res, h.mac, h.ip, 53, sport, resp, 0.003 + self.rng.random() * 0.02)
        return ip

    def mdns(self, cur: Cursor, h: Host, payload: bytes, gap_s: float = 0.05) -> None:
        udp(cur, h, MDNS_MAC, MDNS_IP, 5353, 5353, payload, gap_s, ttl=255)

    def ssdp(self, cur: Cursor, h: Host, payload: bytes, sport: int = 1900, gap_s: float = 0.05) -> None:
        udp(cur, h, SSDP_MAC, SSDP_IP, sport, 1900, payload, gap_s, ttl=4 if h.stack.name == "windows" else 1)

    def nbns(self, cur: Cursor, h: Host, payload: bytes, gap_s: float = 0.05) -> None:
        udp(cur, h, ETH_BROADCAST, self.broadcast, 137, 137, payload, gap_s)

    def llmnr(self, cur: Cursor, h: Host, name: str) -> None:
        udp(cur, h, LLMNR_MAC, LLMNR_IP, 49152 + self.rng.randrange(16000), 5355,
            A.llmnr_query(self.rng.getrandbits(16), name), 0.02, ttl=1)  # fmt: skip

    # --- TCP applications -----------------------------------------------------------------
    def _port(self) -> int:
        return 49152 + self.rng.randrange(16000)

    def http(
        self,
        cur: Cursor,
        h: Host,
        server: str,
        uri: str,
        user_agent: str | None,
        body: bytes = b"ok",
        status: str = "200 OK",
        rst: bool = False,
    ) -> None:
        srv = self.server(server)
        conv = TcpConversation(cur, h, srv, self._port(), 80, rtt_s=0.01 + self.rng.random() * 0.02)
        conv.open()
        conv.send(True, A.http_get(server, uri, user_agent))
        conv.send(False, A.http_response(status, body))
        if rst:
            conv.reset(True)
        else:
            conv.close(client_first=False)

    def tls(
        self,
        cur: Cursor,
        h: Host,
        sni: str,
        hello: bytes,
        rounds: int = 2,
        server: Host | None = None,
        port: int = 443,
        rst: bool = False,
    ) -> None:
        """A TLS 1.3 session: ClientHello, server flight, Finished, `rounds` request/response pairs."""
        srv = server or self.server(sni)
        rng = self.rng
        conv = TcpConversation(cur, h, srv, self._port(), port, rtt_s=0.008 + rng.random() * 0.03)
        conv.open()
        conv.send(True, hello, ack=False)
        conv.send(False, T.server_hello_flight(rng, hello, cipher=rng.choice((0x1301, 0x1302))), ack=False)
        conv.send(True, T.client_finished() + T.app_data(rng, rng.randrange(40, 120)))
        for _ in range(rounds):
            cur.wait(rng.random() * 0.5)
            conv.send(False, T.app_data(rng, rng.randrange(24, 72)))
            conv.send(True, T.app_data(rng, rng.randrange(24, 60)), ack=rng.random() < 0.5)
        if rst:
            conv.reset(True)
        else:
            conv.close(client_first=rng.random() < 0.7)

    def ssh(self, cur: Cursor, h: Host, server: Host) -> None:
        rng = self.rng
        conv = TcpConversation(cur, h, server, self._port(), 22, rtt_s=0.0006)
        conv.open()
        conv.send(False, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n")
        conv.send(True, b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n")
        conv.send(True, A.ssh_kexinit(rng, A.OPENSSH_KEX_CLIENT, A.OPENSSH_HOSTKEY_CLIENT,
                                      A.OPENSSH_CIPHERS, A.OPENSSH_MACS), ack=False)  # fmt: skip
        conv.send(False, A.ssh_kexinit(rng, A.OPENSSH_KEX_SERVER, A.OPENSSH_HOSTKEY_SERVER,
                                       A.OPENSSH_CIPHERS, A.OPENSSH_MACS))  # fmt: skip
        for size in (1224, 44, 1100, 52, 36):  # sntrup761x25519 KEX, NEWKEYS, then encrypted packets
            conv.send(size % 2 == 0, rng.randbytes(size), ack=size > 1000)
        conv.close()

    def quic(self, cur: Cursor, h: Host, sni: str) -> None:
        srv = self.server(sni)
        sport = self._port()
        udp(cur, h, self.gw.mac, srv.ip, sport, 443, T.quic_initial(self.rng, sni), 0.01)
        # Server's Initial+Handshake coalesced datagram (opaque protected bytes).
        body = self.rng.randbytes(1100)
        reply = (
            b"\xc1\x00\x00\x00\x01\x00\x08"
            + self.rng.randbytes(8)
            + b"\x00"
            + (0x4000 | len(body)).to_bytes(2, "big")
            + body
        )
        udp(cur, srv, h.mac, h.ip, 443, sport, reply, 0.02)
        for _ in range(6):
            udp(cur, h, self.gw.mac, srv.ip, sport, 443, b"\x40" + self.rng.randbytes(40), 0.01)
            udp(cur, srv, h.mac, h.ip, 443, sport, b"\x40" + self.rng.randbytes(90), 0.015)
