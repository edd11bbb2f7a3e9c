"""JA3 and JA3S TLS fingerprints (Salesforce, 2017), as tshark's ja3/ja3_full compute them.

JA3 string: `version,ciphers,extensions,groups,ec_point_formats`, decimal values joined by `-`,
GREASE (RFC 8701) removed from ciphers, extensions and groups; JA3 is its MD5 in hex.
JA3S string: `version,cipher,extensions` of the ServerHello. The version is the handshake's
legacy version, never supported_versions, as in the original specification.
"""

from __future__ import annotations

import hashlib

from capture.protocols.tls import ClientHello, ServerHello
from signatures.grease import strip_grease


def _dash(values: list[int] | tuple[int, ...]) -> str:
    return "-".join(map(str, values))


def ja3(hello: ClientHello) -> tuple[str, str]:
    """(JA3 string, MD5 hex) of a ClientHello."""
    text = ",".join(
        (
            str(hello.version),
            _dash(strip_grease(hello.ciphers)),
            _dash(strip_grease(hello.extensions)),
            _dash(strip_grease(hello.groups)),
            _dash(hello.ec_point_formats),
        )
    )
    return text, hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest()


def ja3s(hello: ServerHello) -> tuple[str, str]:
    """(JA3S string, MD5 hex) of a ServerHello."""
    text = f"{hello.version},{hello.cipher},{_dash(strip_grease(hello.extensions))}"
    return text, hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest()
