"""Helpers shared by the application-protocol parsers: the error boundary, text and address
formatting, and the DNS name reader (DNS, mDNS, LLMNR and NBNS share RFC 1035 names).

Parsers index freely inside and let `boundary` turn low-level failures (IndexError,
struct.error, ...) into `DecodeError` with a `<proto>.truncated` / `<proto>.malformed` slug,
as python-zeroconf does with its DECODE_EXCEPTIONS.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from capture.errors import DECODE_EXCEPTIONS, DecodeError

P = ParamSpec("P")
R = TypeVar("R")

# RFC 1035 §2.3.4: a name is at most 255 octets on the wire, a label at most 63. Counted across
# all pointers followed, this also bounds a name to 127 labels (each costs at least 2 octets),
# one fewer than python-zeroconf's MAX_DNS_LABELS (128), so no separate label cap is needed.
MAX_NAME_OCTETS = 255

_inet_ntop = socket.inet_ntop
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


def boundary(proto: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a parser so that anything but a value becomes a `DecodeError` named after `proto`."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def parse(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except DecodeError:
                raise
            except DECODE_EXCEPTIONS as exc:
                # An index or unpack past the end means the message was cut short.
                cut = isinstance(exc, IndexError) or "requires a buffer" in str(exc)
                slug = "truncated" if cut else "malformed"
                raise DecodeError(f"{proto}.{slug}", str(exc)) from exc

        return parse

    return wrap


def mac_text(raw: bytes) -> str:
    """Colon-separated lower-case hex (`aa:bb:cc:dd:ee:ff`); works for any length."""
    return raw.hex(":")


def ipv4_text(raw: bytes) -> str:
    return _inet_ntop(_AF_INET, raw)


def ipv6_text(raw: bytes) -> str:
    return _inet_ntop(_AF_INET6, raw)


def read_name(
    buf: bytes,
    off: int,
    proto: str,
    cache: dict[int, tuple[tuple[str, ...], int]],
) -> tuple[tuple[str, ...], int]:
    """Read an RFC 1035 name at `off`; return its labels and the offset after it.

    Compression pointers may point anywhere inside the message but never to themselves nor to
    an offset already followed for this name (a loop); the wire length, summed across the
    pointers followed, is capped (which caps the number of labels too). `cache` maps an offset
    to the labels decoded there and their wire octets, shared by all names of one message.
    """
    first = buf[off]
    if first >= 0xC0:
        # Fast path: a pointer to a name already decoded (and checked) in this message.
        hit = cache.get(((first & 0x3F) << 8) | buf[off + 1])
        if hit is not None:
            return hit[0], off + 2
    labels: list[str] = []
    sizes: list[int] = []
    starts: list[int] = []
    seen: set[int] = set()
    end_off = -1
    octets = 1
    start = off
    size = len(buf)
    tail_octets = 0
    while True:
        length = buf[off]
        if length == 0:
            off += 1
            break
        if length < 0x40:
            label_end = off + 1 + length
            if label_end > size:
                raise DecodeError(f"{proto}.bad_label", f"label of {length} bytes runs past the end", off)
            octets += length + 1
            if octets > MAX_NAME_OCTETS:
                raise DecodeError(f"{proto}.name_too_long", f"name longer than {MAX_NAME_OCTETS}", start)
            starts.append(off)
            sizes.append(length + 1)
            labels.append(buf[off + 1 : label_end].decode("utf-8", "replace"))
            off = label_end
            continue
        if length < 0xC0:
            raise DecodeError(f"{proto}.bad_label", f"unknown label type 0x{length:02x}", off)
        link = ((length & 0x3F) << 8) | buf[off + 1]
        if end_off < 0:
            end_off = off + 2
        if link == off:
            raise DecodeError(f"{proto}.compression_loop", "pointer to itself", off)
        if link >= size:
            raise DecodeError(f"{proto}.bad_pointer", f"pointer to {link} past the end", off)
        if link in seen:
            raise DecodeError(f"{proto}.compression_loop", f"pointer to {link} followed twice", off)
        seen.add(link)
        cached = cache.get(link)
        if cached is not None:
            more, tail_octets = cached
            octets += tail_octets
            if octets > MAX_NAME_OCTETS:
                raise DecodeError(f"{proto}.name_too_long", f"name longer than {MAX_NAME_OCTETS}", start)
            labels.extend(more)
            break
        off = link
    result = tuple(labels)
    if starts:
        suffix = tail_octets
        for i in range(len(starts) - 1, -1, -1):
            suffix += sizes[i]
            cache.setdefault(starts[i], (result[i:], suffix))
    return result, (end_off if end_off >= 0 else off)
