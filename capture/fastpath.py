"""The bypass walk: account the pcap records of bypassed flows without making a frame of them.

`scan_pcap` walks complete classic-pcap records in a buffer and, for each Ethernet/IPv4 TCP frame
that `FlowTable.fast_update` would accept, does the same accounting in place (state changes by
`FlowTable.fast_state`); it stops at the
first record that needs the full path (or that reaches the caller's expiry time), so records are
still handled in file order. This module is plain Python and is run as such; the optional
accelerator compiles the same file with Cython (`fastpath.pxd` adds the C types), which turns the
loop into C while the flow objects and tables stay the shared Python ones.
"""

from __future__ import annotations

from typing import Any


class ScanState:
    """What the last scan accounted: packets, their bytes, the last one's timestamp in seconds."""

    def __init__(self) -> None:
        self.packets = 0
        self.nbytes = 0
        self.last_ts = 0.0


def scan_pcap(
    st: ScanState,
    buf: bytes,
    pos: int,
    blen: int,
    big_endian: bool,
    scale: int,
    table: Any,
    stop_ts: float,
) -> int:
    """Account fast records from `pos`; returns the offset of the first record not accounted.

    That record is incomplete in `buf`, needs the full path, or is not before `stop_ts` (seconds).
    `scale` turns the fractional timestamp field into nanoseconds (1000 for µs files, 1 for ns).
    """
    data = buf  # the accelerator reads it through a typed memoryview
    fast = table.fast
    classes = table.classes
    packets = 0
    nbytes = 0
    last_ts = 0.0
    while pos + 16 <= blen:
        if big_endian:
            sec = (data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
            frac = (data[pos + 4] << 24) | (data[pos + 5] << 16) | (data[pos + 6] << 8) | data[pos + 7]
            caplen = (data[pos + 8] << 24) | (data[pos + 9] << 16) | (data[pos + 10] << 8) | data[pos + 11]
        else:
            sec = (data[pos + 3] << 24) | (data[pos + 2] << 16) | (data[pos + 1] << 8) | data[pos]
            frac = (data[pos + 7] << 24) | (data[pos + 6] << 16) | (data[pos + 5] << 8) | data[pos + 4]
            caplen = (data[pos + 11] << 24) | (data[pos + 10] << 16) | (data[pos + 9] << 8) | data[pos + 8]
        f = pos + 16
        end = f + caplen
        if end > blen or caplen < 54:
            break
        ts = (sec * 1_000_000_000 + frac * scale) / 1e9
        if ts >= stop_ts:
            break
        # Ethernet II, IPv4 without options, TCP, not a fragment; no SYN or RST.
        if (
            data[f + 12] != 8
            or data[f + 13] != 0
            or data[f + 14] != 0x45
            or data[f + 23] != 6
            or data[f + 20] & 0x3F
            or data[f + 21]
            or data[f + 47] & 0x06
        ):
            break
        ent = fast.get(buf[f + 26 : f + 38])
        if ent is None:
            break
        flow = ent[0]
        ip_len = (data[f + 16] << 8) | data[f + 17]
        if ip_len == 0 or ip_len > caplen - 14:
            ip_len = caplen - 14
        if not ent[2] and ip_len > 20 + ((data[f + 46] >> 4) << 2):
            break  # payload in a direction whose payload is still wanted
        flags = data[f + 47]
        flow.last_ts = ts
        if ent[1] == 0:
            flow.pkts_fwd += 1
            flow.bytes_fwd += ip_len
            flow.flags_fwd |= flags
        else:
            flow.pkts_rev += 1
            flow.bytes_rev += ip_len
            flow.flags_rev |= flags
        cls = classes[flow.tclass]
        key = flow.key
        del cls[key]
        cls[key] = flow
        if flags & 0x01 or flow.state == 2:
            table.fast_state(flow, ent[1], flags)  # a FIN, or the handshake's last ACK
        packets += 1
        nbytes += caplen
        last_ts = ts
        pos = end
    st.packets = packets
    st.nbytes = nbytes
    st.last_ts = last_ts
    return pos
