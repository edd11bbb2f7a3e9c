"""Capture file readers: classic pcap (µs and ns, both byte orders) and pcapng.

Strategy: read the file in large chunks and walk records with `struct.unpack_from` on offsets,
copying only each frame's bytes. A file that is not a capture, or that ends inside a record,
raises `CaptureFileError` naming the file and the byte offset, after every complete frame before
it has been yielded, so nothing already read is lost.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from capture.errors import CaptureFileError
from capture.frame import Frame

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

# pcapng block types (draft-ietf-opsawg-pcapng).
_IDB = 0x00000001
_OPB = 0x00000002
_SPB = 0x00000003
_EPB = 0x00000006

# Largest record we accept. pcapng draft: readers may reject blocks over 16 MiB; libpcap's
# MAXIMUM_SNAPLEN is 262144 for packets. A larger length means a corrupt file, not a jumbo frame.
MAX_RECORD = 16 * 1024 * 1024
_CHUNK = 1 << 20


class _Buffer:
    """A sliding window over a binary file; `need(n)` guarantees n bytes at `pos` or returns False."""

    __slots__ = ("base", "buf", "eof", "f", "pos")

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]
        self.eof = False

    def need(self, n: int) -> bool:
        if self.pos + n <= len(self.buf):
            return True
        if self.eof:
            return False
        rest = self.buf[self.pos :]
        self.base += self.pos
        self.pos = 0
        chunks = [rest]
        have = len(rest)
        while have < n:
            c = self.f.read(max(_CHUNK, n - have))
            if not c:
                self.eof = True
                break
            chunks.append(c)
            have += len(c)
        self.buf = b"".join(chunks)
        return have >= n

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def at_end(self) -> bool:
        return not self.need(1)


# skip(buf, pos, end, big_endian, scale) -> the offset of the first record it did not consume.
Skipper = Callable[[bytes, int, int, bool, int], int]


def read_frames(path: str | Path, skip: Skipper | None = None) -> Iterator[Frame]:
    """Yield every frame of a pcap or pcapng file, in file order.

    `skip`, for classic pcap files of Ethernet frames, may consume records before each frame is
    made (the pipeline's bypass walk); the frames it consumes are not yielded.
    """
    p = str(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed in finally; generator owns it
    except OSError as e:
        raise CaptureFileError(p, 0, f"cannot open: {e.strerror}") from None
    try:
        b = _Buffer(f)
        if not b.need(4):
            raise CaptureFileError(p, 0, "not a capture file (shorter than any capture header)")
        magic_le = struct.unpack_from("<I", b.buf, 0)[0]
        if magic_le == PCAPNG_SHB:
            yield from _read_pcapng(p, b)
        elif magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or struct.unpack_from(">I", b.buf, 0)[0] in (
            PCAP_MAGIC_US,
            PCAP_MAGIC_NS,
        ):
            yield from _read_pcap(p, b, skip)
        else:
            raise CaptureFileError(p, 0, f"not a capture file (magic {b.buf[:4].hex()})")
    finally:
        f.close()


def _read_pcap(p: str, b: _Buffer, skip: Skipper | None = None) -> Iterator[Frame]:
    if not b.need(24):
        raise CaptureFileError(p, 0, "truncated pcap file header (24 bytes expected)")
    magic = struct.unpack_from("<I", b.buf, 0)[0]
    endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    magic = struct.unpack_from(endian + "I", b.buf, 0)[0]
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    linktype = struct.unpack_from(endian + "I", b.buf, 20)[0] & 0x0FFFFFFF  # upper bits: FCS flags
    if linktype != 1:
        skip = None
    big = endian == ">"
    b.pos = 24
    rec = struct.Struct(endian + "IIII")
    unpack = rec.unpack_from
    need = b.need
    buf = b.buf
    pos = b.pos
    blen = len(buf)
    while True:
        if pos + 16 > blen:
            b.pos = pos
            if not need(16):
                if b.pos < len(b.buf):
                    raise CaptureFileError(p, b.offset, f"truncated record header ({len(b.buf) - b.pos} of 16 bytes)")
                return
            buf, pos, blen = b.buf, b.pos, len(b.buf)
        if skip is not None:
            pos = skip(buf, pos, blen, big, scale)
            if pos + 16 > blen:
                continue
        sec, frac, caplen, _origlen = unpack(buf, pos)
        end = pos + 16 + caplen
        if end > blen:
            b.pos = pos
            if caplen > MAX_RECORD:
                raise CaptureFileError(p, b.offset, f"record length {caplen} exceeds {MAX_RECORD}")
            if not need(16 + caplen):
                have = len(b.buf) - b.pos - 16
                raise CaptureFileError(p, b.offset, f"truncated record (header says {caplen} bytes, {have} left)")
            buf, pos, blen = b.buf, b.pos, len(b.buf)
            end = pos + 16 + caplen
        yield Frame(sec * 1_000_000_000 + frac * scale, linktype, buf[pos + 16 : end])
        pos = end


def _tsresol_ns(opt: int) -> tuple[int, int]:
    """(multiplier, divisor) turning pcapng ticks into nanoseconds for an if_tsresol value."""
    if opt & 0x80:
        return 1_000_000_000, 1 << (opt & 0x7F)
    exp = opt & 0x7F
    if exp <= 9:
        return 10 ** (9 - exp), 1
    return 1, 10 ** (exp - 9)


def _read_pcapng(p: str, b: _Buffer) -> Iterator[Frame]:
    endian = "<"
    ifaces: list[tuple[int, int, int]] = []  # (linktype, mul, div)
    need = b.need
    while True:
        if not need(12):
            if b.pos < len(b.buf):
                raise CaptureFileError(p, b.offset, "truncated block header")
            return
        btype = struct.unpack_from(endian + "I", b.buf, b.pos)[0]
        if btype == PCAPNG_SHB:
            bom = b.buf[b.pos + 8 : b.pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureFileError(p, b.offset + 8, f"bad pcapng byte-order magic {bom.hex()}")
            ifaces = []
        blen = struct.unpack_from(endian + "I", b.buf, b.pos + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            raise CaptureFileError(p, b.offset, f"bad pcapng block length {blen}")
        if not need(blen):
            have = len(b.buf) - b.pos
            raise CaptureFileError(p, b.offset, f"truncated block (length {blen}, {have} bytes left)")
        buf = b.buf
        s = b.pos
        body = s + 8
        end = s + blen - 4
        if btype == _EPB or btype == _OPB:
            if btype == _EPB:
                ifid, ts_hi, ts_lo, caplen = struct.unpack_from(endian + "IIII", buf, body)
                dstart = body + 20
            else:
                ifid, _drops, ts_hi, ts_lo, caplen = struct.unpack_from(endian + "HHIII", buf, body)
                dstart = body + 20
            if ifid >= len(ifaces):
                raise CaptureFileError(p, b.offset, f"packet block for undeclared interface {ifid}")
            if dstart + caplen > end:
                raise CaptureFileError(p, b.offset, f"captured length {caplen} exceeds its block")
            lt, mul, div = ifaces[ifid]
            ticks = (ts_hi << 32) | ts_lo
            yield Frame(ticks * mul // div, lt, buf[dstart : dstart + caplen])
        elif btype == _SPB:
            if not ifaces:
                raise CaptureFileError(p, b.offset, "simple packet block before any interface")
            caplen = min(struct.unpack_from(endian + "I", buf, body)[0], end - body - 4)
            lt = ifaces[0][0]
            yield Frame(0, lt, buf[body + 4 : body + 4 + caplen])
        elif btype == _IDB:
            lt = struct.unpack_from(endian + "H", buf, body)[0]
            mul, div = 1000, 1  # default resolution: microseconds
            o = body + 8
            while o + 4 <= end:
                code, olen = struct.unpack_from(endian + "HH", buf, o)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    mul, div = _tsresol_ns(buf[o + 4])
                o += 4 + ((olen + 3) & ~3)
            ifaces.append((lt, mul, div))
        b.pos = s + blen
