"""Generated traffic: one "round" per agent at a time, with a known count of flows, devices and hits.

A round is every device of a site doing a DHCP request, a DNS query and answer, and a TLS connection
(handshake, ClientHello, ServerHello flight, FIN both ways), plus `markers` UDP datagrams that the
soak rule (`SOAK_RULE`) matches. Source ports are unique per round so every flow of the run has its own
5-tuple; the expected events of a round are what the replay pipeline itself yields for the round's
capture (`truth_of`), cross-checked against the counts the design implies. Addresses are documentation
ranges only (RFC 5737): devices 192.0.2.0/24, the site's gateway 192.0.2.1, servers 203.0.113.0/24 and
198.51.100.0/24. scapy builds the frames: it never sees a packet on the measured path.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pcaps._tls import chrome_hello, server_hello_flight

SOAK_SID: Final = 9900001
MARKER: Final = b"VEILLE-SOAK-MARKER"
MARKER_PORT: Final = 9999
SOAK_RULE: Final = (
    f'alert udp any any -> any {MARKER_PORT} (msg:"VEILLE SOAK marker"; content:"{MARKER.decode()}"; '
    f"classtype:misc-activity; sid:{SOAK_SID}; rev:1;)\n"
)
GATEWAY_IP: Final = "192.0.2.1"
SERVER_IP: Final = "203.0.113.10"
MARKER_DST: Final = "198.51.100.50"
# Observation kinds the agents ship besides flows, devices and alerts (`--ship-observations`).
SHIPPED_OBS: Final = ("dhcp", "dns", "tls_client")
# Ephemeral ports (RFC 6335 8.1.2: 49152-65535); each round takes 3 per device + markers.
_EPHEMERAL: Final = 49152


def gateway_mac(site_index: int) -> str:
    """The site gateway's MAC (locally administered)."""
    return f"02:5a:00:{site_index:02x}:00:01"


def device_mac(site_index: int, device: int) -> str:
    """Device `device` of site `site_index` (locally administered)."""
    return f"02:5a:01:{site_index:02x}:00:{device + 2:02x}"


@dataclass(frozen=True, slots=True)
class RoundTruth:
    """What one round must yield: events per kind, and the identities of alerts and observations."""

    counts: dict[str, int]
    devices: frozenset[str]
    flow_keys: frozenset[tuple[str, int, str, int]] = field(default_factory=frozenset)


def _ports(round_no: int, devices: int, markers: int) -> int:
    span = 3 * devices + markers
    return _EPHEMERAL + (round_no * span) % (65535 - _EPHEMERAL - span)


def build_round(site_index: int, round_no: int, devices: int, markers: int, seed: int) -> list[Any]:
    """The frames (scapy packets) of one round of site `site_index`."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    rng = random.Random(seed * 1_000_003 + site_index * 10_007 + round_no)
    gw = gateway_mac(site_index)
    port = _ports(round_no, devices, markers)
    frames: list[Any] = []
    for d in range(devices):
        mac, ip = device_mac(site_index, d), f"192.0.2.{10 + d}"
        host = f"soak-{site_index}-{d}"
        dhcp_sport = 68
        frames.append(
            Ether(src=mac, dst=gw)
            / IP(src=ip, dst=GATEWAY_IP)
            / UDP(sport=dhcp_sport, dport=67)
            / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), ciaddr=ip, xid=rng.getrandbits(32))
            / DHCP(options=[("message-type", "request"), ("hostname", host), ("param_req_list", [1, 3, 6, 15]), "end"])
        )
        dns_port, tls_port = port, port + 1
        port += 3
        qname = f"www{d}.example.org"
        qid = rng.getrandbits(16)
        frames.append(
            Ether(src=mac, dst=gw)
            / IP(src=ip, dst=GATEWAY_IP)
            / UDP(sport=dns_port, dport=53)
            / DNS(id=qid, rd=1, qd=DNSQR(qname=qname))
        )
        frames.append(
            Ether(src=gw, dst=mac)
            / IP(src=GATEWAY_IP, dst=ip)
            / UDP(sport=53, dport=dns_port)
            / DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname), an=DNSRR(rrname=qname, rdata=SERVER_IP))
        )
        hello = chrome_hello(rng, qname)
        flight = server_hello_flight(rng, hello)
        cseq, sseq = rng.getrandbits(31), rng.getrandbits(31)
        c = Ether(src=mac, dst=gw) / IP(src=ip, dst=SERVER_IP)
        s = Ether(src=gw, dst=mac) / IP(src=SERVER_IP, dst=ip)
        frames += [
            c / TCP(sport=tls_port, dport=443, flags="S", seq=cseq, options=[("MSS", 1460), ("SAckOK", b"")]),
            s / TCP(sport=443, dport=tls_port, flags="SA", seq=sseq, ack=cseq + 1, options=[("MSS", 1460)]),
            c / TCP(sport=tls_port, dport=443, flags="A", seq=cseq + 1, ack=sseq + 1),
            c / TCP(sport=tls_port, dport=443, flags="PA", seq=cseq + 1, ack=sseq + 1) / Raw(hello),
            s / TCP(sport=443, dport=tls_port, flags="PA", seq=sseq + 1, ack=cseq + 1 + len(hello)) / Raw(flight),
            c / TCP(sport=tls_port, dport=443, flags="FA", seq=cseq + 1 + len(hello), ack=sseq + 1 + len(flight)),
            s / TCP(sport=443, dport=tls_port, flags="FA", seq=sseq + 1 + len(flight), ack=cseq + 2 + len(hello)),
            c / TCP(sport=tls_port, dport=443, flags="A", seq=cseq + 2 + len(hello), ack=sseq + 2 + len(flight)),
        ]
    for m in range(markers):
        d = m % devices
        mac, ip = device_mac(site_index, d), f"192.0.2.{10 + d}"
        frames.append(
            Ether(src=mac, dst=gw)
            / IP(src=ip, dst=MARKER_DST)
            / UDP(sport=port + m, dport=MARKER_PORT)
            / Raw(MARKER + f" site={site_index} round={round_no} n={m}".encode())
        )
    return frames


def write_pcap(frames: list[Any], path: Path) -> Path:
    """Write `frames` as a pcap (Ethernet) at `path`."""
    from scapy.utils import wrpcap

    wrpcap(str(path), frames)
    return path


def truth_of(pcap: Path, rules: Path) -> RoundTruth:
    """Events the replay pipeline yields for `pcap`: per shipped kind, device MACs, flow keys."""
    from agent.pipeline import PipelineConfig, replay_events

    cfg = PipelineConfig(rule_files=[str(rules)], variables={"HOME_NET": "[192.0.2.0/24]"})
    counts: Counter[str] = Counter()
    macs: set[str] = set()
    flows: set[tuple[str, int, str, int]] = set()
    for e in replay_events([str(pcap)], cfg):
        kind = e["type"]
        if kind == "flow":
            counts["flow"] += 1
            flows.add((e["src"], e["sport"], e["dst"], e["dport"]))
        elif kind == "alert":
            counts["alert"] += 1
        elif kind == "device":
            macs.add(e["mac"])
        elif kind in SHIPPED_OBS:
            counts[kind] += 1
    return RoundTruth(dict(counts), frozenset(macs), frozenset(flows))


def expected_counts(devices: int, markers: int) -> dict[str, int]:
    """What the round's design implies: DHCP, DNS and TLS flows per device plus one flow per marker."""
    return {
        "flow": 3 * devices + markers,
        "alert": markers,
        "dhcp": devices,
        "dns": 2 * devices,
        "tls_client": devices,
    }
