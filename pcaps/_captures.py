"""The fixture captures as bytes, and truth.json (what each capture contains, device by device).

School morning and IPv6 traffic live in `_school` / `_ipv6`, hostile inputs in `_hostile`; this
module adds the VLAN capture, the link-type conversions (Linux cooked v1/v2, raw IP) and the
machine-readable truth that golden inventories and detection tests are checked against.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from pcaps import _hostile as H
from pcaps._devices import DEVICES, GATEWAY_IP, GATEWAY_MAC, SSH_SERVER_IP, SSH_SERVER_MAC, Device
from pcaps._ipv6 import ipv6_only as _ipv6_only
from pcaps._ipv6 import v6_truth
from pcaps._lan import Lan
from pcaps._school import ROLES, join, school_morning
from pcaps._wire import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Record,
    Trace,
    pcap_bytes,
    pcapng_bytes,
)

__all__ = ["ipv6_only", "malformed", "school_morning", "truth", "vlan"]

malformed = H.malformed
lan_attacks = H.lan_attacks
truncated_file = H.truncated_file
not_a_capture = H.not_a_capture


def ipv6_only() -> bytes:
    return pcap_bytes(_ipv6_only().records(), LINKTYPE_ETHERNET)


# --- VLANs ----------------------------------------------------------------------------------
# The /24 split in three /26 (one per VLAN), router-on-a-stick: one gateway MAC on every VLAN.
VLANS = {
    10: ("staff", "192.0.2.1", "192.0.2.63", ("macbook", "hp_printer", "yealink"), 20),
    20: ("pupils", "192.0.2.65", "192.0.2.127", ("chromebook", "ipad"), 80),
    30: ("guests", "192.0.2.129", "192.0.2.191", ("iphone", "switch", "pixel_random_a"), 140),
}
QINQ_OUTER = 100  # service VLAN (802.1ad S-tag) of the provider trunk carrying guest VLAN 30
QINQ_DEVICE = "pixel_random_a"


def vlan_devices() -> list[tuple[int, Device, bool]]:
    """(VLAN id, device with its VLAN address, carried in QinQ) in join order."""
    by_key = {d.key: d for d in DEVICES}
    out = []
    for vid, (_, _, _, keys, first) in VLANS.items():
        for i, key in enumerate(keys):
            out.append((vid, replace(by_key[key], ip=f"192.0.2.{first + i}"), key == QINQ_DEVICE))
    return out


def vlan_trace() -> Trace:
    trace = Trace(10)
    t = 0.5
    for vid, dev, qinq in vlan_devices():
        _, gw, bcast, _, _ = VLANS[vid]
        lan = Lan(trace.rng, gateway_ip=gw, resolver_ip=gw, netmask="255.255.255.192", broadcast=bcast)
        tags = ((0x88A8, QINQ_OUTER), (0x8100, vid)) if qinq else ((0x8100, vid),)
        cur = trace.cursor(t, tags)
        h = join(lan, cur, dev)
        ROLES[dev.role](lan, cur, dev, h)
        t += 7 + trace.rng.random() * 6
    return trace


def vlan() -> bytes:
    return pcap_bytes(vlan_trace().records(), LINKTYPE_ETHERNET)


# --- Link types -----------------------------------------------------------------------------
# The small link-type captures are what the Ubuntu admin laptop sees of its own join, DNS and
# HTTP when capturing on "any" (cooked) or on a raw IP tunnel interface.
CAPTURING_HOST = next(d for d in DEVICES if d.key == "ubuntu_admin")
SLL_IFINDEX = 2


def _small_trace() -> Trace:
    trace = Trace(5)
    lan = Lan(trace.rng)
    cur = trace.cursor(0.0)
    h = join(lan, cur, CAPTURING_HOST)
    lan.dns(cur, h, "connectivity-check.ubuntu.com")
    lan.http(cur, h, "connectivity-check.ubuntu.com", "/", "NetworkManager/1.46.0", b"", "204 No Content")
    return trace


def _pkttype(eth: bytes) -> int:
    """linux/if_packet.h PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OUTGOING 4."""
    if eth[6:12] == bytes.fromhex(CAPTURING_HOST.mac.replace(":", "")):
        return 4
    if eth[0:6] == b"\xff" * 6:
        return 1
    return 2 if eth[0] & 1 else 0


def _to_sll(r: Record) -> Record:
    eth = r.data
    hdr = struct.pack("!HHH8sH", _pkttype(eth), 1, 6, eth[6:12], struct.unpack_from("!H", eth, 12)[0])
    return Record(r.ts_us, hdr + eth[14:])


def _to_sll2(r: Record) -> Record:
    eth = r.data
    proto = struct.unpack_from("!H", eth, 12)[0]
    hdr = struct.pack("!HHIHBB8s", proto, 0, SLL_IFINDEX, 1, _pkttype(eth), 6, eth[6:12])
    return Record(r.ts_us, hdr + eth[14:])


def sll() -> bytes:
    return pcap_bytes([_to_sll(r) for r in _small_trace().records()], LINKTYPE_LINUX_SLL)


def sll2_pcap() -> bytes:
    return pcap_bytes([_to_sll2(r) for r in _small_trace().records()], LINKTYPE_LINUX_SLL2)


def sll2_pcapng() -> bytes:
    return pcapng_bytes([_to_sll2(r) for r in _small_trace().records()], LINKTYPE_LINUX_SLL2, comment="sll2")


def raw_ip() -> bytes:
    recs = [
        Record(r.ts_us, r.data[14:]) for r in _small_trace().records() if r.data[12:14] in (b"\x08\x00", b"\x86\xdd")
    ]
    return pcap_bytes(recs, LINKTYPE_RAW)


# --- Truth ----------------------------------------------------------------------------------
def _device_truth(d: Device, **extra: object) -> dict[str, object]:
    randomized = bool(int(d.mac[:2], 16) & 0x02)
    out: dict[str, object] = {
        "key": d.key,
        "device_type": d.device_type,
        "vendor": d.vendor or None,
        "os": d.os,
        "os_version": d.os_version or None,
        "hostname": d.hostname or None,
        "ip": d.ip,
        "randomized_mac": randomized,
        "dhcp_params": list(d.dhcp.params),
        "dhcp_vendor_class": d.dhcp.vendor_class or None,
        "dhcp_source": d.dhcp.source,
    }
    out.update(extra)
    return out


INFRA = {
    GATEWAY_MAC: {"key": "gateway", "device_type": "network equipment", "vendor": "Cisco Systems, Inc",
                  "os": None, "os_version": None, "hostname": None, "ip": GATEWAY_IP, "randomized_mac": False,
                  "role": "router, DHCP server, DNS resolver"},
}  # fmt: skip
SSH_SERVER = {"key": "file_server", "device_type": "server", "vendor": "Dell Inc.", "os": "Linux",
              "os_version": "Ubuntu 22.04", "hostname": None, "ip": SSH_SERVER_IP, "randomized_mac": False,
              "role": "SSH server (OpenSSH 8.9p1), static address"}  # fmt: skip


def truth() -> dict[str, object]:
    """Machine-readable truth for every capture (see pcaps/README.md)."""
    pixel_a = next(d for d in DEVICES if d.key == "pixel_random_a")
    morning: dict[str, object] = {}
    for d in DEVICES:
        extra: dict[str, object] = {}
        if d.key.startswith("pixel_random"):
            other = next(x for x in DEVICES if x.key.startswith("pixel_random") and x is not d)
            extra = {"same_device_as": other.mac, "link_basis": "DHCP client-id (opt 61) and hostname",
                     "dhcp_client_id": pixel_a.dhcp.client_id}  # fmt: skip
        morning[d.mac] = _device_truth(d, **extra)
    morning.update(INFRA)
    morning[SSH_SERVER_MAC] = SSH_SERVER
    vlan_devs: dict[str, object] = {
        dev.mac: _device_truth(dev, vlan=vid, qinq_outer=QINQ_OUTER if qinq else None)
        for vid, dev, qinq in vlan_devices()
    }
    vlan_devs[GATEWAY_MAC] = {**INFRA[GATEWAY_MAC], "ip": [v[1] for v in VLANS.values()]}
    mal_notes = H.malformed_records()[1]
    trunc_bytes, trunc_off, whole = H.truncated_file_and_offset()
    small = {CAPTURING_HOST.mac: _device_truth(CAPTURING_HOST), GATEWAY_MAC: INFRA[GATEWAY_MAC]}
    return {
        "start": "2026-09-07T07:30:00Z",
        "captures": {
            "school_morning.pcap": {"linktype": LINKTYPE_ETHERNET, "devices": morning},
            "school_morning.pcapng": {"linktype": LINKTYPE_ETHERNET, "same_packets_as": "school_morning.pcap"},
            "ipv6_only.pcap": {"linktype": LINKTYPE_ETHERNET, "devices": v6_truth()},
            "vlan.pcap": {
                "linktype": LINKTYPE_ETHERNET,
                "devices": vlan_devs,
                "vlans": {str(k): v[0] for k, v in VLANS.items()},
            },
            "sll.pcap": {"linktype": LINKTYPE_LINUX_SLL, "devices": small},
            "sll2.pcap": {"linktype": LINKTYPE_LINUX_SLL2, "devices": small},
            "sll2.pcapng": {"linktype": LINKTYPE_LINUX_SLL2, "devices": small},
            "raw_ip.pcap": {"linktype": LINKTYPE_RAW, "devices": small},
            "malformed.pcap": {"linktype": LINKTYPE_ETHERNET, "packets": mal_notes},
            "lan_attacks.pcap": {
                "linktype": LINKTYPE_ETHERNET,
                "detections": H.ATTACKS,
                "allowed_dhcp_servers": [GATEWAY_IP],
                "site_resolvers": [GATEWAY_IP],
                "gateway": {"ip": GATEWAY_IP, "mac": GATEWAY_MAC},
            },
            "truncated_file.pcap": {
                "error": "cut mid-record",
                "error_offset": trunc_off,
                "whole_records": whole,
                "file_size": len(trunc_bytes),
            },
            "not_a_capture.pcap": {"error": "not a capture (bad magic)", "error_offset": 0},
        },
    }
