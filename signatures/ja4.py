"""JA4 client TLS fingerprint (FoxIO, BSD-3 licensed part of JA4+): `ja4` and `ja4_r`.

`a_b_c`: a = transport (q QUIC / d DTLS / t TCP), version (highest non-GREASE supported_versions entry,
else the handshake version), d/i (server_name extension present or not), two-digit cipher and
extension counts without GREASE (capped at 99), and the first and last characters of the first
ALPN value (hex nibbles when either end is not ASCII alphanumeric, "00" without ALPN).
b = first 12 hex digits of SHA-256 over the sorted 4-hex-digit cipher list; c = the same over the
sorted extension list without GREASE, SNI (0000) and ALPN (0010), then `_` and the signature
algorithms in wire order. An empty list hashes to twelve zeros. `ja4_r` shows the lists instead.
Only client JA4 is implemented: the other JA4+ methods are under a non-commercial licence.
"d" follows the specification's wording (the server_name extension exists), so a server_name
extension without a host name gives "d"; tools that read tshark's host-name field say "i".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from capture.protocols.tls import EXT_ALPN, EXT_SERVER_NAME, ClientHello
from signatures.grease import GREASE, strip_grease

_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
_EMPTY_HASH = "000000000000"
_MAX_COUNT = 99  # two decimal digits in the JA4 'a' part
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


# 4-digit hex of each 16-bit code point seen so far (at most 65,536 short strings; a site's hellos use a
# few hundred). Formatting each value anew was half the cost of a JA4.
_HEX4: dict[int, str] = {}


def _hex_list(values: Iterable[int]) -> str:
    out = []
    for v in values:
        h = _HEX4.get(v)
        if h is None:
            h = f"{v:04x}"
            if v <= 0xFFFF:  # SSLv2 cipher specs are 24-bit: format those, never cache them
                _HEX4[v] = h
        out.append(h)
    return ",".join(out)


def _version(hello: ClientHello) -> str:
    versions = [v for v in hello.supported_versions if v not in GREASE]
    version = max(versions) if versions else hello.version
    return _VERSIONS.get(version, "00")


def _alpn(hello: ClientHello) -> str:
    if not hello.alpn or not hello.alpn[0]:
        return "00"
    raw = hello.alpn[0].encode("latin-1")
    first, last = raw[0], raw[-1]
    if first in _ALNUM and last in _ALNUM:
        return chr(first) + chr(last)
    return f"{first:02x}"[0] + f"{last:02x}"[1]


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12] if text else _EMPTY_HASH


def ja4(hello: ClientHello) -> tuple[str, str]:
    """(JA4, JA4_r) of a ClientHello."""
    ciphers = strip_grease(hello.ciphers)
    exts = strip_grease(hello.extensions)
    head = "%s%s%s%02d%02d%s" % (  # noqa: UP031 - one fixed layout reads best as a format
        "q" if hello.quic else "d" if hello.dtls else "t",
        _version(hello),
        "d" if EXT_SERVER_NAME in exts else "i",
        min(len(ciphers), _MAX_COUNT),
        min(len(exts), _MAX_COUNT),
        _alpn(hello),
    )
    cipher_list = _hex_list(sorted(ciphers))
    ext_list = _hex_list(sorted(e for e in exts if e != EXT_SERVER_NAME and e != EXT_ALPN))
    sigs = _hex_list(hello.sig_algs)
    ext_part = f"{ext_list}_{sigs}" if sigs and ext_list else ext_list
    fingerprint = f"{head}_{_hash12(cipher_list)}_{_hash12(ext_part)}"
    raw = f"{head}_{cipher_list}_{ext_list}_{sigs}" if sigs else f"{head}_{cipher_list}_{ext_list}"
    return fingerprint, raw
