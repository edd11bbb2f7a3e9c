"""A ClientHello and a ServerHello built field by field, as Wireshark dissects them.

Chrome-like: GREASE in ciphers, extensions, groups and supported_versions; SNI, ALPN h2 and
http/1.1. Used by the TLS parser tests and by the JA3/JA4 tests in tests/signatures.
"""

from __future__ import annotations

import itertools
import struct


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


EXTENSIONS = b"".join(
    [
        ext(0x1A1A, b""),  # GREASE extension, empty
        ext(0x0000, h("000e 00 000b") + b"example.com"),  # server_name: list 14, host_name, len 11
        ext(0x0017, b""),  # extended_master_secret
        ext(0x000A, h("0008 2a2a 001d 0017 0018")),  # supported_groups: GREASE, x25519, P-256, P-384
        ext(0x000B, h("01 00")),  # ec_point_formats: uncompressed
        ext(0x000D, h("0008 0403 0804 0401 0503")),  # signature_algorithms, wire order
        ext(0x0010, h("000c 02") + b"h2" + h("08") + b"http/1.1"),  # ALPN: h2, http/1.1
        ext(0x002B, h("06 3a3a 0304 0303")),  # supported_versions: GREASE, TLS 1.3, TLS 1.2
        ext(0x0033, h("0026 0024 001d 0020") + bytes(range(32))),  # key_share x25519
        ext(0x4A4A, h("00")),  # GREASE extension, one byte
    ]
)
CLIENT_HELLO_BODY = b"".join(
    [
        h("0303"),  # legacy_version TLS 1.2
        bytes(range(0x20, 0x40)),  # random
        h("20") + bytes(32),  # legacy_session_id, 32 bytes
        h("000a 0a0a 1301 1302 c02b 00ff"),  # cipher_suites: GREASE, 3 suites, SCSV
        h("01 00"),  # compression methods: null
        struct.pack("!H", len(EXTENSIONS)) + EXTENSIONS,
    ]
)
CLIENT_HELLO_MSG = b"\x01" + len(CLIENT_HELLO_BODY).to_bytes(3, "big") + CLIENT_HELLO_BODY
CLIENT_HELLO_RECORD = h("16 0301") + struct.pack("!H", len(CLIENT_HELLO_MSG)) + CLIENT_HELLO_MSG

# What the parser must read from it.
CIPHERS = (0x0A0A, 0x1301, 0x1302, 0xC02B, 0x00FF)
EXTENSION_TYPES = (0x1A1A, 0, 23, 10, 11, 13, 16, 43, 51, 0x4A4A)
GROUPS = (0x2A2A, 0x001D, 0x0017, 0x0018)
SIG_ALGS = (0x0403, 0x0804, 0x0401, 0x0503)
VERSIONS = (0x3A3A, 0x0304, 0x0303)

SERVER_EXTENSIONS = ext(0x002B, h("0304")) + ext(0x0033, h("001d 0020") + bytes(32))
SERVER_HELLO_BODY = b"".join(
    [
        h("0303"),  # legacy_version
        bytes(range(32)),  # random
        h("20") + bytes(range(32)),  # legacy_session_id echo
        h("1301"),  # cipher_suite TLS_AES_128_GCM_SHA256
        h("00"),  # compression
        struct.pack("!H", len(SERVER_EXTENSIONS)) + SERVER_EXTENSIONS,
    ]
)
SERVER_HELLO_MSG = b"\x02" + len(SERVER_HELLO_BODY).to_bytes(3, "big") + SERVER_HELLO_BODY
SERVER_HELLO_RECORD = h("16 0303") + struct.pack("!H", len(SERVER_HELLO_MSG)) + SERVER_HELLO_MSG


def records(msg: bytes, *cuts: int, version: bytes = b"\x03\x01") -> bytes:
    """`msg` split into handshake records at the given offsets."""
    bounds = [0, *cuts, len(msg)]
    return b"".join(b"\x16" + version + struct.pack("!H", b - a) + msg[a:b] for a, b in itertools.pairwise(bounds))


def client_hello(extensions: bytes, ciphers: bytes = h("1301"), version: bytes = h("0303")) -> bytes:
    """A minimal ClientHello record with the given extension block and cipher list."""
    body = version + bytes(32) + h("00") + struct.pack("!H", len(ciphers)) + ciphers + h("0100")
    body += struct.pack("!H", len(extensions)) + extensions
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return records(msg, *range(2**14, len(msg), 2**14))  # RFC 8446 §5.1: fragments <= 2^14
