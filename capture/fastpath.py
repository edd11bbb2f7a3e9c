"""The bypass walk: account the pcap records of bypassed flows without making a frame of them.

`scan_pcap` walks complete classic-pcap records in a buffer and accounts each Ethernet/IPv4 TCP
frame whose flow direction bypasses it (`FlowTable.make_fast`) in place, state changes by
`FlowTable.segment_state`; it stops at the first record that needs the full path (or that reaches
the caller's expiry time), so records are still handled in order. `scan_frames` does the same
over a block of live frames, `bypass_frame` for one frame. This module is plain Python and is run as such; the optional
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


def _bypass(data: bytes, buf: bytes, f: int, caplen: int, ts: float, fast: dict[bytes, Any], table: Any) -> bool:
    """Account the Ethernet frame at `f` (`caplen` bytes) to its flow if the flow bypasses it.

    `data` and `buf` are the same bytes (the accelerator reads `data` as a typed memoryview).
    """
    # Ethernet II, IPv4 without options, TCP, not a fragment; no SYN or RST.
    if (
        caplen < 54
        or data[f + 12] != 8
        or data[f + 13] != 0
        or data[f + 14] != 0x45
        or data[f + 23] != 6
        or data[f + 20] & 0x3F
        or data[f + 21]
        or data[f + 47] & 0x06
    ):
        return False
    ent = fast.get(buf[f + 26 : f + 38])
    if ent is None:
        return False
    flow = ent[0]
    ip_len = (data[f + 16] << 8) | data[f + 17]
    if ip_len == 0 or ip_len > caplen - 14:
        ip_len = caplen - 14
    if not ent[2] and ip_len > 20 + ((data[f + 46] >> 4) << 2):
        return False  # payload in a direction whose payload is still wanted
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
    cls = table.classes[flow.tclass]
    key = flow.key
    del cls[key]
    cls[key] = flow
    if flags & 0x01 or flow.state == 2:
        table.segment_state(flow, ent[1], flags)  # a FIN, or the handshake's last ACK
    return True


def bypass_frame(buf: bytes, ts: float, table: Any) -> bool:
    """Account one Ethernet frame if its flow bypasses it; False when it needs the full path."""
    return _bypass(buf, buf, 0, len(buf), ts, table.fast, table)


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
        end = pos + 16 + caplen
        if end > blen:
            break
        ts = (sec * 1_000_000_000 + frac * scale) / 1e9
        if ts >= stop_ts or not _bypass(data, buf, pos + 16, caplen, ts, fast, table):
            break
        packets += 1
        nbytes += caplen
        last_ts = ts
        pos = end
    st.packets = packets
    st.nbytes = nbytes
    st.last_ts = last_ts
    return pos


def scan_frames(st: ScanState, frames: list[Any], i: int, table: Any, stop_ts: float) -> int:
    """The live capture's walk: account `frames[i:]` (Frame tuples: ts_ns, linktype, data) while
    their flows bypass them; returns the index of the first frame not accounted."""
    fast = table.fast
    n = len(frames)
    packets = 0
    nbytes = 0
    last_ts = 0.0
    while i < n:
        fr = frames[i]
        if fr[1] != 1:
            break
        ts = fr[0] / 1e9
        buf = fr[2]
        caplen = len(buf)
        if ts >= stop_ts or not _bypass(buf, buf, 0, caplen, ts, fast, table):
            break
        packets += 1
        nbytes += caplen
        last_ts = ts
        i += 1
    st.packets = packets
    st.nbytes = nbytes
    st.last_ts = last_ts
    return i
