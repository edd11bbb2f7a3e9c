"""SSH identification lines and KEXINIT: golden bytes, streaming, caps, hostile input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.errors import DecodeError
from capture.protocols.ssh import MAX_BANNER_LEN, parse_ssh_banner, parse_ssh_kexinit
from tests.capture.protocols import ssh_golden as g


def test_client_banner_and_kexinit() -> None:
    stream = g.BANNER + g.kexinit()
    banner = parse_ssh_banner(stream, allow_preamble=False)
    assert banner == ("SSH-2.0-OpenSSH_9.6p1 Debian-4", len(g.BANNER))
    kex = parse_ssh_kexinit(stream, banner[1])
    assert kex is not None
    assert kex.kex == ("curve25519-sha256", "curve25519-sha256@libssh.org", "ext-info-c")
    assert kex.host_key == ("ssh-ed25519", "rsa-sha2-512")
    assert kex.ciphers_c2s == ("chacha20-poly1305@openssh.com", "aes128-ctr")
    assert kex.macs_s2c == ("hmac-sha2-512",)
    assert kex.compression_c2s == ("none", "zlib@openssh.com")
    assert kex.languages_c2s == () and kex.first_kex_follows is False
    assert kex.fields() == {"kex": list(kex.kex)}


def test_server_preamble_lines_and_lf_only() -> None:
    stream = b"Welcome\r\nto the server\n" + b"SSH-1.99-OpenSSH_3.9p1\n" + g.kexinit()
    banner = parse_ssh_banner(stream)
    assert banner is not None and banner[0] == "SSH-1.99-OpenSSH_3.9p1"
    assert parse_ssh_kexinit(stream, banner[1]) is not None
    with pytest.raises(DecodeError) as err:
        parse_ssh_banner(stream, allow_preamble=False)
    assert err.value.reason == "ssh.not_banner"


def test_incomplete_input_waits() -> None:
    stream = g.BANNER + g.kexinit()
    for end in range(len(g.BANNER)):
        assert parse_ssh_banner(stream[:end]) is None
    for end in range(len(g.BANNER), len(stream)):
        assert parse_ssh_kexinit(stream[:end], len(g.BANNER)) is None


def test_banner_over_255_bytes_is_refused() -> None:
    line = b"SSH-2.0-" + b"x" * (MAX_BANNER_LEN - 10) + b"\r\n"
    assert parse_ssh_banner(line) is not None  # exactly 255 with CR LF
    with pytest.raises(DecodeError) as err:
        parse_ssh_banner(b"SSH-2.0-" + b"x" * 300)
    assert err.value.reason == "ssh.banner_too_long"


def test_endless_preamble_is_refused() -> None:
    with pytest.raises(DecodeError) as err:
        parse_ssh_banner(b"hello\r\n" * 1100 + b"SSH-2.0-x\r\n")
    assert err.value.reason == "ssh.banner_too_long"


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (struct.pack("!IB", 100_000, 4) + bytes(10), "ssh.bad_packet_length"),  # > 35000 (RFC 4253 §6.1)
        (struct.pack("!IB", 20, 2) + bytes(20), "ssh.bad_packet_length"),  # padding < 4
        (struct.pack("!IB", 12, 4) + b"\x15" + bytes(10), "ssh.not_kexinit"),  # NEWKEYS
        (struct.pack("!IB", 30, 4) + b"\x14" + bytes(16) + b"\xff\xff\xff\xff" + bytes(8), "ssh.bad_name_list"),
        (struct.pack("!IB", 22, 4) + b"\x14" + bytes(16) + bytes(4), "ssh.bad_name_list"),  # no lists
        (struct.pack("!IB", 62, 4) + b"\x14" + bytes(16) + bytes(40) + bytes(4), "ssh.truncated"),  # no flag
    ],
)
def test_hostile_kexinit_raises_decode_error(packet: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        parse_ssh_kexinit(packet, 0)
    assert err.value.reason == reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 50))
def test_random_bytes_give_value_or_decode_error(data: bytes, offset: int) -> None:
    with contextlib.suppress(DecodeError):
        parse_ssh_banner(data)
    with contextlib.suppress(DecodeError):
        parse_ssh_kexinit(data, offset)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 600), st.integers(0, 255))
def test_mutated_kexinit_gives_value_or_decode_error(pos: int, byte: int) -> None:
    data = bytearray(g.BANNER + g.kexinit())
    data[pos % len(data)] = byte
    with contextlib.suppress(DecodeError):
        banner = parse_ssh_banner(bytes(data))
        if banner is not None:
            parse_ssh_kexinit(bytes(data), banner[1])
