"""TCP options of a SYN: the values and the layout string p0f uses (`mss,nop,ws,sok,ts`).

RFC 9293 §3.1: kinds 0 (end) and 1 (no-op) are one byte; every other option carries a length
byte that counts itself and the kind, so a length below 2 or past the header is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass

from capture.errors import DecodeError

_NAMES = {2: "mss", 3: "ws", 4: "sok", 5: "sack", 8: "ts"}


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class TcpOptions:
    layout: str
    mss: int | None
    wscale: int | None
    ts: tuple[int, int] | None
    eol_pad: int


def parse_tcp_options(data: bytes, off: int, length: int) -> TcpOptions:
    """Parse options at data[off:off+length]; raises DecodeError("tcp.bad_option") when malformed."""
    end = off + length
    if end > len(data):
        raise DecodeError("tcp.bad_option", "options past the captured bytes", off)
    names: list[str] = []
    mss = wscale = None
    ts = None
    pad = 0
    o = off
    while o < end:
        kind = data[o]
        if kind == 0:
            pad = end - o - 1
            names.append(f"eol+{pad}")
            break
        if kind == 1:
            names.append("nop")
            o += 1
            continue
        if o + 1 >= end:
            raise DecodeError("tcp.bad_option", f"option {kind} without length", o)
        olen = data[o + 1]
        if olen < 2:
            raise DecodeError("tcp.zero_length_option", f"option {kind} length {olen}", o)
        if o + olen > end:
            raise DecodeError("tcp.bad_option", f"option {kind} length {olen} past header", o)
        if kind == 2 and olen == 4:
            mss = (data[o + 2] << 8) | data[o + 3]
        elif kind == 3 and olen == 3:
            wscale = data[o + 2]
        elif kind == 8 and olen == 10:
            ts = (int.from_bytes(data[o + 2 : o + 6], "big"), int.from_bytes(data[o + 6 : o + 10], "big"))
        names.append(_NAMES.get(kind, f"?{kind}"))
        o += olen
    return TcpOptions(",".join(names), mss, wscale, ts, pad)
