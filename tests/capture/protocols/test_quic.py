"""QUIC Initial decryption: RFC 9001 / RFC 9369 vectors, reassembly, hostile input, properties."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.errors import DecodeError
from capture.protocols.quic import (
    VERSIONS,
    InitialKeys,
    QuicInitialReader,
    QuicServerInitialReader,
    looks_like_quic_initial,
)
from capture.protocols.tls import parse_client_hello_handshake
from tests.capture.protocols import quic_vectors as rfc

CLIENT_HELLO = rfc.CLIENT_CRYPTO_FRAME[4:]  # frame type 06, offset 00, length 40f1


@pytest.mark.parametrize(
    ("version", "server", "expected"),
    [
        (0x00000001, False, rfc.V1_CLIENT_KEYS),
        (0x00000001, True, rfc.V1_SERVER_KEYS),
        (0x6B3343CF, False, rfc.V2_CLIENT_KEYS),
        (0x6B3343CF, True, rfc.V2_SERVER_KEYS),
    ],
)
def test_initial_keys_are_the_rfc_ones(version: int, server: bool, expected: tuple[str, str, str]) -> None:
    keys = InitialKeys.derive(rfc.DCID, VERSIONS[version], server=server)
    assert (keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == expected


@pytest.mark.parametrize("packet", [rfc.V1_CLIENT_INITIAL, rfc.V2_CLIENT_INITIAL], ids=["v1", "v2"])
def test_rfc_client_initial_decrypts_to_its_client_hello(packet: bytes) -> None:
    assert looks_like_quic_initial(packet)
    reader = QuicInitialReader()
    hello = reader.feed(packet)
    assert hello == parse_client_hello_handshake(CLIENT_HELLO, quic=True)
    assert hello is not None and hello.quic and hello.sni == "example.com" and hello.alpn == ("alpn",)
    assert reader.client_dcid == rfc.DCID and reader.done
    assert reader.feed(packet) is None  # done: later datagrams are ignored


@pytest.mark.parametrize("packet", [rfc.V1_SERVER_INITIAL, rfc.V2_SERVER_INITIAL], ids=["v1", "v2"])
def test_rfc_server_initial_decrypts_to_its_server_hello(packet: bytes) -> None:
    hello = QuicServerInitialReader(rfc.DCID).feed(packet)
    assert hello is not None
    assert (hello.version, hello.cipher, hello.selected_version, hello.extensions) == (0x0303, 0x1301, 0x0304, (51, 43))


def test_tampered_packet_fails_authentication() -> None:
    packet = bytearray(rfc.V1_CLIENT_INITIAL)
    packet[-40] ^= 1
    with pytest.raises(DecodeError) as err:
        QuicInitialReader().feed(bytes(packet))
    assert err.value.reason == "quic.decrypt_failed"


def test_server_packet_with_wrong_dcid_fails() -> None:
    with pytest.raises(DecodeError) as err:
        QuicServerInitialReader(b"\x01" * 8).feed(rfc.V1_SERVER_INITIAL)
    assert err.value.reason == "quic.decrypt_failed"


# --- Packets built here, with an independent protector (RFC 9001 §5), to cover reassembly. ---


def _expand(secret: bytes, label: bytes, length: int) -> bytes:
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00" + b"\x01"
    return hmac.new(secret, info, hashlib.sha256).digest()[:length]


def _varint(v: int) -> bytes:
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack("!H", 0x4000 | v)
    return struct.pack("!I", 0x80000000 | v)


def _crypto(offset: int, data: bytes) -> bytes:
    return b"\x06" + _varint(offset) + _varint(len(data)) + data


def protect(dcid: bytes, pn: int, frames: bytes, *, ptype: int = 0, pad_to: int = 0) -> bytes:
    """A v1 long-header packet with a 2-byte packet number, protected with the client Initial keys."""
    salt = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    secret = _expand(hmac.new(salt, dcid, hashlib.sha256).digest(), b"client in", 32)
    key, iv, hp = _expand(secret, b"quic key", 16), _expand(secret, b"quic iv", 12), _expand(secret, b"quic hp", 16)
    payload = frames + b"\x00" * max(0, pad_to - len(frames))
    head = bytes([0xC1 | ptype << 4]) + b"\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid + b"\x00"
    if ptype == 0:
        head += b"\x00"  # token length
    head += struct.pack("!H", 0x4000 | (2 + len(payload) + 16))
    pn_off = len(head)
    header = head + struct.pack("!H", pn)
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[2:18])
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn_bytes = bytes(a ^ b for a, b in zip(header[pn_off:], mask[1:3], strict=True))
    return first + header[1:pn_off] + pn_bytes + sealed


DCID = bytes.fromhex("c0ffee0000000001")


def test_client_hello_out_of_order_across_datagrams_and_packets() -> None:
    third = len(CLIENT_HELLO) // 3
    parts = [CLIENT_HELLO[:third], CLIENT_HELLO[third : 2 * third], CLIENT_HELLO[2 * third :]]
    d1 = protect(DCID, 0, b"\x01" + _crypto(2 * third, parts[2]), pad_to=60)  # PING, last piece
    d2 = protect(DCID, 1, _crypto(third, parts[1]) + b"\x02\x00\x00\x00\x00")  # + ACK frame
    d3 = protect(DCID, 2, _crypto(0, parts[0]), pad_to=300)
    reader = QuicInitialReader()
    assert reader.feed(d1) is None
    assert reader.feed(d2) is None
    assert reader.feed(d1) is None  # a retransmission adds nothing
    hello = reader.feed(d3)
    assert hello == parse_client_hello_handshake(CLIENT_HELLO, quic=True)


def test_coalesced_initial_and_handshake_packets_in_one_datagram() -> None:
    initial = protect(DCID, 0, _crypto(0, CLIENT_HELLO[:100]), pad_to=40)
    zero_rtt = protect(DCID, 0, b"\x01" * 30, ptype=1)  # keys we do not have: skipped by length
    second = protect(DCID, 1, _crypto(100, CLIENT_HELLO[100:]))
    assert QuicInitialReader().feed(initial + zero_rtt + second) == parse_client_hello_handshake(
        CLIENT_HELLO, quic=True
    )


def test_short_header_and_version_negotiation_are_ignored() -> None:
    reader = QuicInitialReader()
    assert reader.feed(b"\x40" + bytes(40)) is None
    assert reader.feed(b"\xc0\x00\x00\x00\x00\x08" + bytes(30)) is None


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\xc0\x0a\x0a\x0a\x0a\x08" + bytes(30), "quic.unknown_version"),
        (b"\xc0\x00\x00\x00\x01\x15" + bytes(30), "quic.bad_cid"),
        (b"\xc0\x00\x00\x00\x01\x00\x00\x00\x7f\xff", "quic.bad_length"),
        (b"\xc0\x00\x00\x00\x01\x00", "quic.truncated"),
    ],
)
def test_garbage_datagrams_raise_decode_error(datagram: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        QuicInitialReader().feed(datagram)
    assert err.value.reason == reason


def test_crypto_data_past_the_cap_is_refused() -> None:
    with pytest.raises(DecodeError) as err:
        QuicInitialReader().feed(protect(DCID, 0, _crypto(200_000, b"x" * 10)))
    assert err.value.reason == "quic.crypto_overflow"


def test_too_many_crypto_pieces_are_refused() -> None:
    frames = b"".join(_crypto(i * 2, b"ab") for i in range(1, 40))  # never reaches offset 0
    reader = QuicInitialReader(max_chunks=16)
    with pytest.raises(DecodeError) as err:
        reader.feed(protect(DCID, 0, frames))
    assert err.value.reason == "quic.crypto_overflow"


def test_disallowed_frame_in_initial_is_refused() -> None:
    with pytest.raises(DecodeError) as err:
        QuicInitialReader().feed(protect(DCID, 0, b"\x08\x00\x00", pad_to=30))  # STREAM frame
    assert err.value.reason == "quic.bad_frame"


def test_looks_like_quic_initial() -> None:
    assert not looks_like_quic_initial(b"\x16\x03\x01\x00")
    assert not looks_like_quic_initial(rfc.V1_SERVER_INITIAL[:5])
    assert not looks_like_quic_initial(b"\xe0" + rfc.V1_CLIENT_INITIAL[1:])  # Handshake type


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_random_datagrams_give_value_or_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        QuicInitialReader().feed(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1199), st.integers(0, 255), st.integers(1, 1200))
def test_mutated_rfc_packet_gives_value_or_decode_error(pos: int, byte: int, cut: int) -> None:
    packet = bytearray(rfc.V1_CLIENT_INITIAL[:cut])
    if pos < len(packet):
        packet[pos] = byte
    with contextlib.suppress(DecodeError):
        QuicInitialReader().feed(bytes(packet))


def test_server_initials_fed_to_the_client_reader_are_skipped() -> None:
    """A reader fed both directions of a flow ignores the server's Initials (DCID = client SCID)."""
    reader = QuicInitialReader()
    assert reader.feed(protect(DCID, 0, _crypto(0, CLIENT_HELLO[:100]), pad_to=40)) is None
    server_ack = protect(b"", 0, b"\x02\x00\x00\x00\x00", pad_to=30)  # to the client's empty SCID
    assert reader.feed(server_ack) is None
    assert reader.feed(rfc.V1_SERVER_INITIAL) is None  # the RFC's server Initial: DCID empty too
    hello = reader.feed(protect(DCID, 1, _crypto(100, CLIENT_HELLO[100:])))
    assert hello == parse_client_hello_handshake(CLIENT_HELLO, quic=True)
