"""HASSH SSH fingerprints (Salesforce, 2018) from a KEXINIT message.

Client: MD5 of `kex;encryption_c2s;mac_c2s;compression_c2s`; server (hassh_server): the same
with the server-to-client lists. Each list is the comma-separated name-list as sent.
"""

from __future__ import annotations

import hashlib

from capture.protocols.ssh import SshKexInit


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("latin-1"), usedforsecurity=False).hexdigest()


def hassh(kex: SshKexInit) -> tuple[str, str]:
    """(hassh string, MD5 hex) of a client KEXINIT."""
    text = ";".join(
        (",".join(kex.kex), ",".join(kex.ciphers_c2s), ",".join(kex.macs_c2s), ",".join(kex.compression_c2s))
    )
    return text, _md5(text)


def hassh_server(kex: SshKexInit) -> tuple[str, str]:
    """(hassh_server string, MD5 hex) of a server KEXINIT."""
    text = ";".join(
        (",".join(kex.kex), ",".join(kex.ciphers_s2c), ",".join(kex.macs_s2c), ",".join(kex.compression_s2c))
    )
    return text, _md5(text)
