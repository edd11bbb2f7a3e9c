"""SSH identification string and KEXINIT parsers (RFC 4253 §4.2, §6, §7.1), sans-IO.

Strategy: the caller passes the in-order bytes of one TCP direction. `parse_ssh_banner` finds the
`SSH-` line (servers may send other lines first) and returns it with the offset after its line
end; `parse_ssh_kexinit` reads the first binary packet from that offset, which RFC 4253 §7.1
makes the KEXINIT, and splits its name-lists. Both return None while more bytes are needed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capture.errors import DECODE_EXCEPTIONS, DecodeError

# RFC 4253 §4.2: the identification string is at most 255 characters including CR LF.
MAX_BANNER_LEN = 255
# Lines a server may send before its identification string: RFC 4253 §4.2 sets no limit;
# OpenSSH's kex.c stops after SSH_MAX_PRE_BANNER_LINES = 1024 lines of at most 8192 bytes.
MAX_PRE_BANNER_LINES = 1024
MAX_PRE_BANNER_LINE_LEN = 8192
# RFC 4253 §6.1: implementations must handle packets of 35000 bytes in total; more is refused.
MAX_PACKET_LEN = 35000
SSH_MSG_KEXINIT = 20  # RFC 4253 §12
_MIN_PADDING = 4  # RFC 4253 §6
_NAME_LISTS = 10  # RFC 4253 §7.1: kex .. languages_server_to_client
_COOKIE_LEN = 16
_U32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class SshKexInit:
    """The name-lists of one SSH_MSG_KEXINIT, each split on commas, in wire order."""

    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    ciphers_c2s: tuple[str, ...]
    ciphers_s2c: tuple[str, ...]
    macs_c2s: tuple[str, ...]
    macs_s2c: tuple[str, ...]
    compression_c2s: tuple[str, ...]
    compression_s2c: tuple[str, ...]
    languages_c2s: tuple[str, ...]
    languages_s2c: tuple[str, ...]
    first_kex_follows: bool

    def fields(self) -> dict[str, object]:
        """The KEXINIT part of the `ssh` event of docs/events.md (hashes are added by the caller)."""
        return {"kex": list(self.kex)}


def parse_ssh_banner(buf: bytes, *, allow_preamble: bool = True) -> tuple[str, int] | None:
    """(identification string without CR LF, offset after its line), None while incomplete.

    With `allow_preamble` (the server side) lines before the `SSH-` line are skipped.
    """
    end = len(buf)
    pos = 0
    for _ in range(MAX_PRE_BANNER_LINES + 1):
        is_banner = buf[pos : pos + 4] == b"SSH-"
        if not is_banner and end - pos >= 4 and not allow_preamble:
            raise DecodeError("ssh.not_banner", "stream does not start with SSH-", pos)
        cap = MAX_BANNER_LEN if is_banner else MAX_PRE_BANNER_LINE_LEN
        nl = buf.find(b"\n", pos, pos + cap)
        if nl < 0:
            if end - pos >= cap:
                what = "identification string" if is_banner else "line before the identification"
                raise DecodeError("ssh.banner_too_long", f"{what} over {cap} bytes", pos)
            return None
        if end - pos < 4:
            return None
        if is_banner:
            line_end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
            return buf[pos:line_end].decode("utf-8", "replace"), nl + 1
        pos = nl + 1
    raise DecodeError("ssh.banner_too_long", f"over {MAX_PRE_BANNER_LINES} lines before SSH-", pos)


def parse_ssh_kexinit(buf: bytes, offset: int) -> SshKexInit | None:
    """The KEXINIT binary packet starting at `offset`; None while incomplete."""
    if len(buf) < offset + 5:
        return None
    (plen,) = _U32.unpack_from(buf, offset)
    padding = buf[offset + 4]
    if plen > MAX_PACKET_LEN or plen < padding + 2 or padding < _MIN_PADDING:
        raise DecodeError("ssh.bad_packet_length", f"packet length {plen}, padding {padding}", offset)
    if len(buf) < offset + 4 + plen:
        return None
    pos = offset + 5
    end = offset + 4 + plen - padding
    if buf[pos] != SSH_MSG_KEXINIT:
        raise DecodeError("ssh.not_kexinit", f"message type {buf[pos]}", pos)
    pos += 1 + _COOKIE_LEN
    lists: list[tuple[str, ...]] = []
    try:
        for _ in range(_NAME_LISTS):
            (n,) = _U32.unpack_from(buf, pos)
            start = pos + 4
            pos = start + n
            if pos > end:
                raise DecodeError("ssh.bad_name_list", f"name-list {len(lists)} length {n}", start - 4)
            text = buf[start:pos].decode("latin-1")
            lists.append(tuple(text.split(",")) if text else ())
        if pos >= end:
            raise DecodeError("ssh.truncated", "first_kex_packet_follows missing", pos)
        follows = buf[pos] != 0
    except DECODE_EXCEPTIONS as exc:
        raise DecodeError("ssh.truncated", str(exc), pos) from None
    kex, host_key, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc, lang_cs, lang_sc = lists
    return SshKexInit(kex, host_key, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc, lang_cs, lang_sc, follows)
