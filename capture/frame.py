"""Frames as sources deliver them, and the link types we decode."""

from __future__ import annotations

from typing import NamedTuple

# Link types from the tcpdump.org LINKTYPE registry.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW has platform-specific values 12 and 14 in old pcap files.
LINKTYPE_RAW_ALIASES = (12, 14)


class Frame(NamedTuple):
    """One captured frame: nanosecond timestamp, link type, bytes from the link header on."""

    ts_ns: int
    linktype: int
    data: bytes
