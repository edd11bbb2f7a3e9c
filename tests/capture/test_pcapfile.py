"""Capture file readers: formats, link types, and clear errors on bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.errors import CaptureFileError
from capture.pcapfile import read_frames


def _pcap(records: list[tuple[int, bytes]], linktype: int = 1, magic: int = 0xA1B2C3D4, endian: str = "<") -> bytes:
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for ts_us, data in records:
        out.append(struct.pack(endian + "IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _pcapng(frames: list[tuple[int, bytes]], tsresol: int | None = None) -> bytes:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535) + opts)
    out = [shb, idb]
    for ticks, data in frames:
        out.append(_block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data))
    return b"".join(out)


def test_pcap_microseconds_both_byte_orders(tmp_path: Path) -> None:
    for endian in "<>":
        p = tmp_path / f"a{endian == '<'}.pcap"
        p.write_bytes(_pcap([(1_000_000_123, b"x" * 60), (1_000_000_124, b"y" * 61)], endian=endian))
        frames = list(read_frames(p))
        assert [f.ts_ns for f in frames] == [1_000_000_123_000, 1_000_000_124_000]
        assert [len(f.data) for f in frames] == [60, 61]
        assert frames[0].linktype == 1


def test_pcap_nanoseconds(tmp_path: Path) -> None:
    p = tmp_path / "ns.pcap"
    data = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101) + struct.pack("<IIII", 5, 7, 1, 1) + b"E"
    p.write_bytes(data)
    (f,) = read_frames(p)
    assert f.ts_ns == 5_000_000_007 and f.linktype == 101


def test_pcapng_default_and_custom_resolution(tmp_path: Path) -> None:
    p = tmp_path / "a.pcapng"
    p.write_bytes(_pcapng([(1_500_000, b"a" * 42)]))
    (f,) = read_frames(p)
    assert f.ts_ns == 1_500_000_000  # microsecond ticks by default
    p.write_bytes(_pcapng([(1_500_000_000, b"a" * 42)], tsresol=9))
    (f,) = read_frames(p)
    assert f.ts_ns == 1_500_000_000


def test_truncated_record_keeps_frames_before_and_names_offset(tmp_path: Path) -> None:
    good = _pcap([(0, b"a" * 50), (1, b"b" * 50)])
    p = tmp_path / "cut.pcap"
    p.write_bytes(good[:-10])
    got = []
    with pytest.raises(CaptureFileError) as ei:
        for f in read_frames(p):
            got.append(f)
    assert len(got) == 1
    assert ei.value.offset == 24 + 16 + 50
    assert "cut.pcap" in str(ei.value) and "offset 90" in str(ei.value)


def test_not_a_capture(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not a capture\n")
    with pytest.raises(CaptureFileError, match="not a capture file"):
        list(read_frames(p))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError, match="cannot open"):
        list(read_frames(tmp_path / "nope.pcap"))


def test_pcapng_bad_block_length(tmp_path: Path) -> None:
    data = bytearray(_pcapng([(1, b"a" * 40)]))
    epb = len(data) - (12 + 20 + 40)
    struct.pack_into("<I", data, epb + 4, 7)  # block length below the 12-byte minimum
    p = tmp_path / "bad.pcapng"
    p.write_bytes(bytes(data))
    with pytest.raises(CaptureFileError, match=f"offset {epb}: bad pcapng block length 7"):
        list(read_frames(p))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=400))
def test_random_files_yield_frames_or_a_capture_error(tmp_path: Path, junk: bytes, cut: int) -> None:
    for base in (_pcap([(0, b"a" * 60), (5, b"b" * 70)]), _pcapng([(0, b"a" * 60)])):
        data = base[:cut] + junk if cut < len(base) else base + junk
        p = tmp_path / "fuzz.cap"
        p.write_bytes(data)
        try:
            for f in read_frames(p):
                assert isinstance(f.data, bytes)
        except CaptureFileError as e:
            assert e.offset >= 0
