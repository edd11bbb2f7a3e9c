"""What the kernel knows about the site's links: interfaces, addresses, neighbours, link events.

Reads go through pyroute2's IPRoute (rtnetlink dumps). The link watcher is a plain
rtnetlink socket subscribed to RTMGRP_LINK, so the capture thread can poll it beside
its packet sockets; pyroute2's marshal decodes the messages. Values are frozen
dataclasses; nothing here keeps state between calls except the watcher's socket.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

# <linux/if.h>
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100
# <linux/rtnetlink.h>
RTM_NEWLINK = 16
RTM_DELLINK = 17
# <linux/neighbour.h> NUD_* bits, in the order `ip neigh` prints them.
NUD_STATES = (
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
)
# One netlink datagram is at most a page plus headers; 64 KiB covers any kernel's batching.
NETLINK_RECV_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Interface:
    """One network interface and its addresses (text form, without prefix length)."""

    index: int
    name: str
    mac: str | None
    mtu: int
    up: bool
    running: bool
    operstate: str
    promiscuity: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One ARP (IPv4) or NDP (IPv6) cache entry: IP-to-MAC evidence from the kernel."""

    ip: str
    mac: str
    state: str
    ifindex: int


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link appeared, changed or went away."""

    ifindex: int
    name: str
    up: bool
    running: bool
    deleted: bool


def nud_state_name(state: int) -> str:
    """`ip neigh`-style state name for a NUD_* bit mask ("NONE" for 0)."""
    names = [name for bit, name in NUD_STATES if state & bit]
    return "|".join(names) if names else "NONE"


def list_interfaces() -> list[Interface]:
    """Every interface of this network namespace with its IPv4 and IPv6 addresses."""
    with IPRoute() as ipr:
        links = ipr.get_links()
        addrs = ipr.get_addr()
    by_index: dict[int, list[str]] = {}
    for addr in addrs:
        ip = addr.get_attr("IFA_ADDRESS")
        if ip is not None:
            by_index.setdefault(int(addr["index"]), []).append(str(ip))
    return [_interface(link, tuple(by_index.get(int(link["index"]), ()))) for link in links]


def _interface(link: Any, addresses: tuple[str, ...]) -> Interface:
    flags = int(link["flags"])
    mac = link.get_attr("IFLA_ADDRESS")
    return Interface(
        index=int(link["index"]),
        name=str(link.get_attr("IFLA_IFNAME")),
        mac=str(mac) if mac is not None else None,
        mtu=int(link.get_attr("IFLA_MTU") or 0),
        up=bool(flags & IFF_UP),
        running=bool(flags & IFF_RUNNING),
        operstate=str(link.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
        promiscuity=int(link.get_attr("IFLA_PROMISCUITY") or 0),
        addresses=addresses,
    )


def neighbours() -> list[Neighbour]:
    """The kernel neighbour table (ARP and NDP) with a link-layer address, as (ip, mac, state).

    Multicast entries (the kernel keeps some for MLD, with 33:33:... MACs) are left out: they
    say nothing about a device.
    """
    with IPRoute() as ipr:
        entries = ipr.get_neighbours()
    out: list[Neighbour] = []
    for entry in entries:
        ip = entry.get_attr("NDA_DST")
        mac = entry.get_attr("NDA_LLADDR")
        if ip is None or mac is None or ipaddress.ip_address(ip).is_multicast:
            continue
        out.append(Neighbour(str(ip), str(mac), nud_state_name(int(entry["state"])), int(entry["ifindex"])))
    return out


class LinkWatcher:
    """Non-blocking reader of rtnetlink link events; poll `fileno()`, then call `read_events()`."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
        self._sock.bind((0, RTMGRP_LINK))
        self._marshal = MarshalRtnl()

    def fileno(self) -> int:
        """The netlink socket's descriptor."""
        return self._sock.fileno()

    def read_events(self) -> list[LinkEvent]:
        """All link events queued on the socket, oldest first; [] when none."""
        events: list[LinkEvent] = []
        while True:
            try:
                data = self._sock.recv(NETLINK_RECV_SIZE)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                # The kernel dropped events (socket buffer overrun): report every link's current state.
                events.extend(LinkEvent(i.index, i.name, i.up, i.running, deleted=False) for i in list_interfaces())
                continue
            for msg in self._marshal.parse(data):
                kind = msg["header"]["type"]
                if kind not in (RTM_NEWLINK, RTM_DELLINK):
                    continue
                flags = int(msg["flags"])
                events.append(
                    LinkEvent(
                        ifindex=int(msg["index"]),
                        name=str(msg.get_attr("IFLA_IFNAME")),
                        up=bool(flags & IFF_UP),
                        running=bool(flags & IFF_RUNNING),
                        deleted=kind == RTM_DELLINK,
                    )
                )

    def close(self) -> None:
        """Close the netlink socket."""
        self._sock.close()
