"""An SSH client identification line and KEXINIT built field by field (RFC 4253 §4.2, §6, §7.1)."""

from __future__ import annotations

import struct

BANNER = b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"
NAME_LISTS = (
    "curve25519-sha256,curve25519-sha256@libssh.org,ext-info-c",  # kex_algorithms
    "ssh-ed25519,rsa-sha2-512",  # server_host_key_algorithms
    "chacha20-poly1305@openssh.com,aes128-ctr",  # encryption client to server
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",  # encryption server to client
    "umac-64-etm@openssh.com,hmac-sha2-256",  # mac client to server
    "hmac-sha2-512",  # mac server to client
    "none,zlib@openssh.com",  # compression client to server
    "none",  # compression server to client
    "",  # languages client to server
    "",  # languages server to client
)


def kexinit(lists: tuple[str, ...] = NAME_LISTS, padding: int = 6) -> bytes:
    payload = b"\x14" + bytes(range(16))  # SSH_MSG_KEXINIT, cookie
    for name_list in lists:
        payload += struct.pack("!I", len(name_list)) + name_list.encode()
    payload += b"\x00" + struct.pack("!I", 0)  # first_kex_packet_follows, reserved
    return struct.pack("!IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)
