"""TLS ClientHello / ServerHello bytes shaped like real clients, and a QUIC v1 Initial packet.

Shapes follow what the browsers send (cipher and extension lists as published by the JA3/JA4
projects and visible in any browser capture): Chrome (GREASE per RFC 8701, shuffled extension
order since Chrome 110, ECH GREASE, ALPS), Firefox (fixed order, delegated credentials, record
size limit), Safari/iOS (GREASE, legacy CBC suites), Windows Schannel (no GREASE). Random fields
(client random, session id, key shares) come from the caller's seeded `random.Random`.
The QUIC Initial is protected exactly per RFC 9001 section 5 with the version 1 initial salt.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# RFC 8701 GREASE values 0x0a0a, 0x1a1a, ... 0xfafa.
GREASE = tuple(0x0A0A + 0x1010 * i for i in range(16))


def _u16(v: int) -> bytes:
    return struct.pack("!H", v)


def _vec8(b: bytes) -> bytes:
    return bytes([len(b)]) + b


def _vec16(b: bytes) -> bytes:
    return _u16(len(b)) + b


def _u16list(values: Sequence[int]) -> bytes:
    return b"".join(_u16(v) for v in values)


def ext(ext_type: int, body: bytes) -> bytes:
    """One TLS extension: type, 16-bit length, body."""
    return _u16(ext_type) + _vec16(body)


def sni_ext(host: str) -> bytes:
    name = host.encode()
    return ext(0, _vec16(b"\x00" + _vec16(name)))


def alpn_ext(protocols: Sequence[str]) -> bytes:
    return ext(16, _vec16(b"".join(_vec8(p.encode()) for p in protocols)))


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + struct.pack("!I", len(body))[1:] + body


def record(content_type: int, version: int, body: bytes) -> bytes:
    return bytes([content_type]) + _u16(version) + _vec16(body)


def client_hello_body(
    rng: random.Random, ciphers: Sequence[int], extensions: Sequence[bytes], session_id: bool = True
) -> bytes:
    sid = rng.randbytes(32) if session_id else b""
    exts = b"".join(extensions)
    return (
        _u16(0x0303)
        + rng.randbytes(32)
        + _vec8(sid)
        + _vec16(_u16list(ciphers))
        + b"\x01\x00"  # one compression method: null
        + _vec16(exts)
    )


def _key_share(rng: random.Random, groups: Sequence[int]) -> bytes:
    sizes = {29: 32, 23: 65, 24: 97, 0x11EC: 1216}
    shares = b""
    for g in groups:
        if g in GREASE:
            shares += _u16(g) + _vec16(b"\x00")
        elif g in (23, 24):
            shares += _u16(g) + _vec16(b"\x04" + rng.randbytes(sizes[g] - 1))
        else:
            shares += _u16(g) + _vec16(rng.randbytes(sizes[g]))
    return ext(51, _vec16(shares))


def _grease_pair(rng: random.Random) -> tuple[int, int]:
    a, b = rng.sample(GREASE, 2)
    return a, b


CHROME_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
                  0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035)  # fmt: skip
CHROME_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def chrome_hello(rng: random.Random, sni: str, alpn: Sequence[str] = ("h2", "http/1.1"), pq: bool = False) -> bytes:
    """Chrome 131+ ClientHello (desktop, Android and ChromeOS share it); `pq` adds X25519MLKEM768."""
    g_cipher, g_ext1 = _grease_pair(rng)
    g_group, g_ext2 = _grease_pair(rng)
    g_version = rng.choice(GREASE)
    groups = [g_group, *([0x11EC] if pq else []), 29, 23, 24]
    shares = [g_group, *([0x11EC] if pq else []), 29]
    ech_payload = rng.choice((144, 176, 208, 240))
    middle = [
        sni_ext(sni),
        ext(23, b""),
        ext(65281, b"\x00"),
        ext(10, _vec16(_u16list(groups))),
        ext(11, b"\x01\x00"),
        ext(35, b""),
        alpn_ext(alpn),
        ext(5, b"\x01\x00\x00\x00\x00"),
        ext(13, _vec16(_u16list(CHROME_SIGALGS))),
        ext(18, b""),
        _key_share(rng, shares),
        ext(45, b"\x01\x01"),
        ext(43, _vec8(_u16list((g_version, 0x0304, 0x0303)))),
        ext(27, b"\x02\x00\x02"),
        ext(17613, _vec16(_vec8(b"h2"))),
        ext(
            65037,
            b"\x00\x00\x01\x00\x01"
            + bytes([rng.getrandbits(8)])
            + _vec16(rng.randbytes(32))
            + _vec16(rng.randbytes(ech_payload)),
        ),
    ]
    rng.shuffle(middle)  # Chrome permutes extensions per connection (chromestatus 5124606246518784)
    exts = [ext(g_ext1, b""), *middle, ext(g_ext2, b"\x00")]
    body = client_hello_body(rng, (g_cipher, *CHROME_CIPHERS), exts)
    return record(22, 0x0301, handshake(1, body))


FIREFOX_CIPHERS = (0x1301, 0x1303, 0x1302, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030,
                   0xC00A, 0xC009, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035)  # fmt: skip


def firefox_hello(rng: random.Random, sni: str) -> bytes:
    """Firefox 128 ESR ClientHello (fixed extension order, no GREASE)."""
    exts = [
        sni_ext(sni),
        ext(23, b""),
        ext(65281, b"\x00"),
        ext(10, _vec16(_u16list((29, 23, 24, 25, 256, 257)))),
        ext(11, b"\x01\x00"),
        ext(35, b""),
        alpn_ext(("h2", "http/1.1")),
        ext(5, b"\x01\x00\x00\x00\x00"),
        ext(34, _vec16(_u16list((0x0403, 0x0503, 0x0603, 0x0203)))),
        _key_share(rng, (29, 23)),
        ext(43, _vec8(_u16list((0x0304, 0x0303)))),
        ext(
            13,
            _vec16(_u16list((0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201))),
        ),
        ext(45, b"\x01\x01"),
        ext(28, b"\x40\x01"),
        ext(27, b"\x06\x00\x01\x00\x02\x00\x03"),
        ext(
            65037,
            b"\x00\x00\x01\x00\x01"
            + bytes([rng.getrandbits(8)])
            + _vec16(rng.randbytes(32))
            + _vec16(rng.randbytes(239)),
        ),
    ]
    return record(22, 0x0301, handshake(1, client_hello_body(rng, FIREFOX_CIPHERS, exts)))


SAFARI_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02C, 0xC02B, 0xCCA9, 0xC030, 0xC02F, 0xCCA8, 0xC00A,
                  0xC009, 0xC014, 0xC013, 0x009D, 0x009C, 0x0035, 0x002F, 0xC008, 0xC012, 0x000A)  # fmt: skip


def safari_hello(rng: random.Random, sni: str) -> bytes:
    """Safari 17 / iOS 17 ClientHello (GREASE, fixed order, legacy 3DES suites still offered)."""
    g_cipher, g_ext1 = _grease_pair(rng)
    g_group, g_ext2 = _grease_pair(rng)
    g_version = rng.choice(GREASE)
    exts = [
        ext(g_ext1, b""),
        sni_ext(sni),
        ext(23, b""),
        ext(65281, b"\x00"),
        ext(10, _vec16(_u16list((g_group, 29, 23, 24, 25)))),
        ext(11, b"\x01\x00"),
        alpn_ext(("h2", "http/1.1")),
        ext(5, b"\x01\x00\x00\x00\x00"),
        ext(
            13,
            _vec16(_u16list((0x0403, 0x0804, 0x0401, 0x0503, 0x0203, 0x0805, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201))),
        ),
        ext(18, b""),
        _key_share(rng, (g_group, 29)),
        ext(45, b"\x01\x01"),
        ext(43, _vec8(_u16list((g_version, 0x0304, 0x0303, 0x0302, 0x0301)))),
        ext(27, b"\x02\x00\x01"),
        ext(g_ext2, b"\x00"),
    ]
    return record(22, 0x0301, handshake(1, client_hello_body(rng, (g_cipher, *SAFARI_CIPHERS), exts)))


SCHANNEL_CIPHERS = (0x1302, 0x1301, 0xC02C, 0xC02B, 0xC030, 0xC02F, 0xC024, 0xC023, 0xC028, 0xC027,
                    0xC00A, 0xC009, 0xC014, 0xC013, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F,
                    0x000A)  # fmt: skip


def schannel_hello(rng: random.Random, sni: str) -> bytes:
    """Windows 11 Schannel ClientHello (system services, Windows Update, Office)."""
    exts = [
        sni_ext(sni),
        ext(5, b"\x01\x00\x00\x00\x00"),
        ext(10, _vec16(_u16list((29, 23, 24)))),
        ext(11, b"\x01\x00"),
        ext(
            13,
            _vec16(
                _u16list(
                    (0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0201, 0x0403, 0x0503, 0x0203, 0x0202, 0x0601, 0x0603)
                )
            ),
        ),
        ext(35, b""),
        alpn_ext(("h2", "http/1.1")),
        ext(23, b""),
        ext(43, _vec8(_u16list((0x0304, 0x0303)))),
        ext(45, b"\x01\x01"),
        _key_share(rng, (29,)),
        ext(65281, b"\x00"),
    ]
    return record(22, 0x0303, handshake(1, client_hello_body(rng, SCHANNEL_CIPHERS, exts)))


def server_hello_flight(rng: random.Random, client_hello: bytes, cipher: int = 0x1301, alpn: str = "") -> bytes:
    """TLS 1.3 ServerHello + ChangeCipherSpec + encrypted flight (random bytes of realistic size)."""
    sid_len = client_hello[43]
    sid = client_hello[44 : 44 + sid_len]
    exts = ext(51, _u16(29) + _vec16(rng.randbytes(32))) + ext(43, _u16(0x0304))
    body = _u16(0x0303) + rng.randbytes(32) + _vec8(sid) + _u16(cipher) + b"\x00" + _vec16(exts)
    del alpn  # ALPN travels in EncryptedExtensions under TLS 1.3
    flight = rng.randbytes(rng.randrange(200, 420))
    return record(22, 0x0303, handshake(2, body)) + b"\x14\x03\x03\x00\x01\x01" + record(23, 0x0303, flight)


def client_finished() -> bytes:
    """Client ChangeCipherSpec + encrypted Finished (53 bytes: 32-byte verify data + tag + type)."""
    return b"\x14\x03\x03\x00\x01\x01" + record(23, 0x0303, bytes(range(53)))


def app_data(rng: random.Random, size: int) -> bytes:
    return record(23, 0x0303, rng.randbytes(size))


# QUIC v1 (RFC 9001 section 5.2).
QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    full = b"tls13 " + label.encode()
    info = _u16(length) + _vec8(full) + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        h = hmac.HMAC(secret, hashes.SHA256())
        h.update(block + info + bytes([i]))
        block = h.finalize()
        out += block
        i += 1
    return out[:length]


def _varint(v: int) -> bytes:
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return _u16(0x4000 | v)
    return struct.pack("!I", 0x80000000 | v)


def chrome_quic_hello(rng: random.Random, sni: str, scid: bytes) -> bytes:
    """The ClientHello handshake message Chrome puts in a QUIC Initial (h3, transport parameters)."""
    tp = (
        _varint(0x01) + _varint(4) + _varint(30000)  # max_idle_timeout
        + _varint(0x04) + _varint(4) + _varint(15728640)  # initial_max_data
        + _varint(0x05) + _varint(4) + _varint(6291456)  # initial_max_stream_data_bidi_local
        + _varint(0x08) + _varint(2) + _varint(100)  # initial_max_streams_bidi
        + _varint(0x0F) + _varint(len(scid)) + scid  # initial_source_connection_id
    )  # fmt: skip
    middle = [
        sni_ext(sni),
        ext(10, _vec16(_u16list((29, 23, 24)))),
        ext(13, _vec16(_u16list(CHROME_SIGALGS))),
        alpn_ext(("h3",)),
        ext(43, _vec8(_u16list((0x0304,)))),
        ext(45, b"\x01\x01"),
        _key_share(rng, (29,)),
        ext(57, tp),
        ext(27, b"\x02\x00\x02"),
        ext(17613, _vec16(_vec8(b"h3"))),
    ]
    rng.shuffle(middle)
    return handshake(1, client_hello_body(rng, (0x1301, 0x1302, 0x1303), middle, session_id=False))


def quic_initial(rng: random.Random, sni: str, datagram_size: int = 1250) -> bytes:
    """A client Initial datagram (UDP payload) carrying a Chrome ClientHello, protected per RFC 9001."""
    dcid, scid = rng.randbytes(8), b""
    hello = chrome_quic_hello(rng, sni, scid)
    pn, pn_len = 1, 2
    frames = b"\x06" + _varint(0) + _varint(len(hello)) + hello
    header_base = b"\xc1" + struct.pack("!I", 1) + _vec8(dcid) + _vec8(scid) + _varint(0)
    length_field_len = 2
    payload_len = datagram_size - len(header_base) - length_field_len - pn_len - 16
    frames += b"\x00" * (payload_len - len(frames))  # PADDING frames
    header = header_base + _u16(0x4000 | (pn_len + len(frames) + 16)) + struct.pack("!H", pn)
    secret = _hkdf_expand_label(_hkdf_extract(QUIC_V1_SALT, dcid), "client in", 32)
    key = _hkdf_expand_label(secret, "quic key", 16)
    iv = _hkdf_expand_label(secret, "quic iv", 12)
    hp = _hkdf_expand_label(secret, "quic hp", 16)
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big"), strict=True))
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    sample = sealed[4 - pn_len : 20 - pn_len]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn_off = len(header) - pn_len
    pn_bytes = bytes(b ^ m for b, m in zip(header[pn_off:], mask[1 : 1 + pn_len], strict=True))
    return first + header[1:pn_off] + pn_bytes + sealed
