"""TLS ClientHello / ServerHello parsers (sans-IO).

Strategy: the caller hands over the in-order bytes of one TCP direction seen so far. The record
walker reads TLS records from offset 0 with `struct.unpack_from`, collects the handshake
fragments (a hello may span several records and segments), and returns None until the whole
handshake message is there. The message body is then parsed once, by offsets into one buffer.
The same body parser serves QUIC (CRYPTO frames carry a bare handshake message) and DTLS.
Also read: SSLv2-compatible ClientHellos (RFC 5246 Appendix E.2, first byte 0x80), warning
alerts before a ServerHello, the second hellos after a HelloRetryRequest (`parse_*_hellos`),
TLS 1.3 draft ServerHellos, and TLS behind an HTTP CONNECT head (explicit proxies).

Every failure is a `DecodeError` with a `tls.*` reason and the offset where it was noticed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capture.errors import DECODE_EXCEPTIONS, DecodeError

CONTENT_CHANGE_CIPHER_SPEC = 20  # RFC 8446 §5.1; sent in clear around a HelloRetryRequest
CONTENT_ALERT = 21  # RFC 8446 §5.1 ContentType.alert
CONTENT_HANDSHAKE = 22  # RFC 8446 §5.1 ContentType.handshake
CONTENT_APPDATA = 23  # RFC 8446 §5.1 ContentType.application_data
CONTENT_HEARTBEAT = 24  # RFC 6520
_ALERT_LEN = 2  # level, description (RFC 5246 §7.2)
_ALERT_WARNING = 1
HS_CLIENT_HELLO = 1  # RFC 8446 §4 HandshakeType
HS_SERVER_HELLO = 2

EXT_SERVER_NAME = 0  # RFC 6066 §3
EXT_SUPPORTED_GROUPS = 10  # RFC 8422 §5.1.1 / RFC 8446 §4.2.7
EXT_EC_POINT_FORMATS = 11  # RFC 8422 §5.1.2
EXT_SIGNATURE_ALGORITHMS = 13  # RFC 8446 §4.2.3
EXT_ALPN = 16  # RFC 7301 §3.1
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1

# RFC 5246 §6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes; plaintext handshake
# records are smaller still (2^14), so a larger length means this is not TLS.
MAX_RECORD_LEN = 2**14 + 2048
# The largest ClientHello the RFC 8446 §4.1.2 vectors allow: legacy_version 2 + random 32 +
# session_id <0..32> (1+32) + cipher_suites <2..2^16-2> (2+65534) + compression <1..2^8-1>
# (1+255) + extensions <8..2^16-1> (2+65535). Anything claiming more is hostile.
MAX_CLIENT_HELLO_LEN = 2 + 32 + 33 + 65536 + 256 + 65537
# ServerHello: the same with a single cipher suite and compression method.
MAX_SERVER_HELLO_LEN = 2 + 32 + 33 + 2 + 1 + 65537
# TLS 1.3 drafts announce 0x7fNN; before draft 22 the ServerHello had neither legacy_session_id
# nor legacy_compression_method (draft-ietf-tls-tls13-22 §4.1.3 brought them back).
_DRAFT_TLS13 = 0x7F
_DRAFT_LEGACY_LAYOUT = 22
_RECORD_HEADER_LEN = 5
_DTLS_RECORD_HEADER_LEN = 13  # type, version, epoch, sequence_number(48), length (RFC 6347 §4.1)
_DTLS_HS_HEADER_LEN = 12  # type, length, message_seq, fragment_offset, fragment_length (§4.2.2)
_DTLS_MAJOR = 0xFE  # DTLS versions are 0xfeff (1.0), 0xfefd (1.2), 0xfefc (1.3)
# TLS through an explicit proxy follows an HTTP CONNECT head; heads are capped at 8 KiB, the
# common server limit (aiohttp max_line_size 8190, nginx large_client_header_buffers 8k).
MAX_TUNNEL_HEAD = 8192
_CONNECT = b"CONNECT "
_HTTP_RESPONSE = b"HTTP/1."
# RFC 8446 §4.1.4: at most one HelloRetryRequest, so at most two hellos of each side in clear.
_MAX_HELLOS = 2
_HS_HEADER_LEN = 4

_U16 = struct.Struct("!H")
_RECORD = struct.Struct("!BBBH")
_SSL2_HEADER = struct.Struct("!HBHHHH")  # length|0x8000, msg type, version, 3 lengths


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class ClientHello:
    """A parsed ClientHello; lists are kept in wire order with GREASE values in place.

    `version` is the handshake's legacy_version (what JA3 uses); `sslv2` and `dtls` say which
    framing carried it and stay out of `fields()`, which is the event contract.
    """

    version: int
    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]
    groups: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    sig_algs: tuple[int, ...]
    supported_versions: tuple[int, ...]
    quic: bool = False
    sslv2: bool = False
    dtls: bool = False

    def fingerprint_key(self) -> tuple[object, ...]:
        """Every field but the SNI value: equal keys give equal JA3 and JA4 (both read the SNI
        extension's presence from `extensions`, never the name). A site's clients send a few such
        shapes over and over, so the pipeline remembers their fingerprints by this key."""
        return (
            self.version,
            self.ciphers,
            self.extensions,
            self.alpn,
            self.groups,
            self.ec_point_formats,
            self.sig_algs,
            self.supported_versions,
            self.quic,
            self.sslv2,
            self.dtls,
        )

    def fields(self) -> dict[str, object]:
        """The `tls_client` event fields of docs/events.md, fingerprints excluded."""
        return {
            "sni": self.sni,
            "version": self.version,
            "supported_versions": list(self.supported_versions),
            "alpn": list(self.alpn),
            "ciphers": list(self.ciphers),
            "extensions": list(self.extensions),
            "groups": list(self.groups),
            "ec_point_formats": list(self.ec_point_formats),
            "sig_algs": list(self.sig_algs),
            "quic": self.quic,
        }


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class ServerHello:
    """A parsed ServerHello (HelloRetryRequest included, RFC 8446 §4.1.4)."""

    version: int
    selected_version: int | None
    cipher: int
    extensions: tuple[int, ...]
    alpn: tuple[str, ...]

    def fingerprint_key(self) -> tuple[object, ...]:
        """Every field: equal keys give equal JA3S (the pipeline remembers it by this key)."""
        return (self.version, self.selected_version, self.cipher, self.extensions, self.alpn)

    def fields(self) -> dict[str, object]:
        """The `tls_server` event fields of docs/events.md, fingerprints excluded."""
        return {
            "version": self.version,
            "selected_version": self.selected_version,
            "cipher": self.cipher,
            "extensions": list(self.extensions),
            "alpn": list(self.alpn),
        }


def looks_like_tls(buf: bytes) -> bool:
    """Cheap check on the first bytes: a TLS handshake record or an SSLv2-compatible hello."""
    n = len(buf)
    if n == 0:
        return False
    b0 = buf[0]
    if b0 in (CONTENT_HANDSHAKE, CONTENT_ALERT):
        return (n < 2 or buf[1] == 3) and (n < 3 or buf[2] <= 4)
    if b0 & 0x80:
        return n < 3 or buf[2] == HS_CLIENT_HELLO
    return buf.startswith(_CONNECT)


# `records_until_encrypted` outcomes.
TLS_MORE = 0  # the next record header is at the offset (maybe beyond the bytes so far)
TLS_ENCRYPTED = 1  # encryption starts with the record at the offset
TLS_NOT_RECORDS = 2  # the bytes at the offset are not a TLS record header


def records_until_encrypted(buf: bytes | bytearray, off: int) -> tuple[int, int]:
    """Walk a direction's TLS records from `off` (a record boundary) to where encryption starts.

    Returns (offset, outcome). TLS_ENCRYPTED: a ChangeCipherSpec or application_data record begins
    at the offset, and from there on the direction carries ciphertext (RFC 5246 §7.1, RFC 8446 §5).
    TLS_NOT_RECORDS: the bytes at the offset are not a TLS 1.x record header. TLS_MORE: the next
    record header is at the offset, which may lie beyond `buf` until more bytes arrive.
    """
    n = len(buf)
    while off + 5 <= n:
        t = buf[off]
        if t == CONTENT_CHANGE_CIPHER_SPEC or t == CONTENT_APPDATA:
            return off, TLS_ENCRYPTED
        if (t != CONTENT_HANDSHAKE and t != CONTENT_ALERT and t != CONTENT_HEARTBEAT) or buf[off + 1] != 3:
            return off, TLS_NOT_RECORDS
        off += 5 + ((buf[off + 3] << 8) | buf[off + 4])
    return off, TLS_MORE


def parse_client_hello(buf: bytes) -> ClientHello | None:
    """ClientHello from the start of a client's TCP stream; None while more bytes are needed."""
    start = _tunnel_offset(buf, _CONNECT)
    if start is None:
        return None
    if start:
        buf = buf[start:]
    if buf[:1] and buf[0] & 0x80:
        return _parse_sslv2(buf)
    hs = _handshake_from_records(buf, HS_CLIENT_HELLO, MAX_CLIENT_HELLO_LEN)
    if hs is None:
        return None
    return parse_client_hello_handshake(hs)


def parse_server_hello(buf: bytes) -> ServerHello | None:
    """ServerHello from the start of a server's TCP stream; None while more bytes are needed."""
    start = _tunnel_offset(buf, _HTTP_RESPONSE)
    if start is None:
        return None
    if start:
        buf = buf[start:]
    hs = _handshake_from_records(buf, HS_SERVER_HELLO, MAX_SERVER_HELLO_LEN)
    if hs is None:
        return None
    return parse_server_hello_handshake(hs)


def parse_server_hello_handshake(hs: bytes) -> ServerHello:
    """ServerHello from one bare handshake message (4-byte header included), e.g. QUIC CRYPTO."""
    if len(hs) < _HS_HEADER_LEN or hs[0] != HS_SERVER_HELLO:
        raise DecodeError("tls.not_server_hello", f"handshake type {hs[:1].hex()}", 0)
    end = _HS_HEADER_LEN + int.from_bytes(hs[1:4], "big")
    if end > len(hs):
        raise DecodeError("tls.truncated", f"server hello needs {end} bytes", 1)
    try:
        return _server_hello_body(hs[:end], _HS_HEADER_LEN)
    except DECODE_EXCEPTIONS as exc:
        raise DecodeError("tls.truncated", f"server hello: {exc}") from None


def parse_client_hellos(buf: bytes) -> list[ClientHello]:
    """Every complete plaintext ClientHello of a client stream: the first and, after a
    HelloRetryRequest (RFC 8446 §4.1.4), the second one. Raises like `parse_client_hello`
    for the first; stops quietly at the first record or message that is not a hello."""
    start = _tunnel_offset(buf, _CONNECT)
    if start is None:
        return []
    if start:
        buf = buf[start:]
    if buf[:1] and buf[0] & 0x80:
        first = _parse_sslv2(buf)
        return [first] if first is not None else []
    return [parse_client_hello_handshake(m) for m in _hello_messages(buf, HS_CLIENT_HELLO)]


def parse_server_hellos(buf: bytes) -> list[ServerHello]:
    """Every complete plaintext ServerHello of a server stream (HelloRetryRequest, then the
    ServerHello that follows it)."""
    start = _tunnel_offset(buf, _HTTP_RESPONSE)
    if start is None:
        return []
    if start:
        buf = buf[start:]
    return [parse_server_hello_handshake(m) for m in _hello_messages(buf, HS_SERVER_HELLO)]


def _tunnel_offset(buf: bytes, prefix: bytes) -> int | None:
    """Where TLS starts when an HTTP CONNECT head (RFC 9110 §9.3.6) comes first: 0 without a
    head, None while the head is incomplete, DecodeError when the proxy refused the tunnel."""
    if not buf.startswith(prefix[: len(buf)]):
        return 0
    if len(buf) <= len(prefix):
        return None
    if not buf.startswith(prefix):
        return 0
    end = buf.find(b"\r\n\r\n", 0, MAX_TUNNEL_HEAD)
    if end < 0:
        if len(buf) >= MAX_TUNNEL_HEAD:
            raise DecodeError("tls.tunnel_head_too_long", f"no end of HTTP head in {MAX_TUNNEL_HEAD} bytes", 0)
        return None
    if prefix == _HTTP_RESPONSE and buf[9:10] != b"2":
        raise DecodeError("tls.tunnel_refused", f"proxy answered {buf[9:12]!r}", 9)
    return end + 4


def _hello_messages(buf: bytes, want: int) -> list[bytes]:
    """Complete hello messages of type `want` from the plaintext records at the stream start.

    The first message must be a hello (else DecodeError as in `parse_client_hello`); after it
    change_cipher_spec and warning alerts are skipped, and the walk ends at the first other
    record type, at a message of another type, or at a record that does not parse as a hello.
    """
    first = _handshake_from_records(buf, want, MAX_CLIENT_HELLO_LEN)
    if first is None:
        return []
    out = [first]
    pos = _records_end(buf, len(first))
    end = len(buf)
    while pos + _RECORD_HEADER_LEN <= end and len(out) < _MAX_HELLOS:
        ctype, major, _, rlen = _RECORD.unpack_from(buf, pos)
        if ctype in (CONTENT_CHANGE_CIPHER_SPEC, CONTENT_ALERT) and major == 3:
            pos += _RECORD_HEADER_LEN + rlen
            continue
        if ctype != CONTENT_HANDSHAKE or pos + _RECORD_HEADER_LEN >= end:
            break
        if buf[pos + _RECORD_HEADER_LEN] != want:
            break
        try:
            nxt = _handshake_from_records(buf[pos:], want, MAX_CLIENT_HELLO_LEN)
            if nxt is None:
                break
            (parse_client_hello_handshake if want == HS_CLIENT_HELLO else parse_server_hello_handshake)(nxt)
        except DecodeError:
            break  # an encrypted Finished that happens to start like a hello
        out.append(nxt)
        pos += _records_end(buf[pos:], len(nxt))
    return out


def _records_end(buf: bytes, hs_len: int) -> int:
    """Offset after the record that holds the last byte of the first `hs_len` handshake bytes."""
    pos = 0
    have = 0
    while have < hs_len:
        ctype, _, _, rlen = _RECORD.unpack_from(buf, pos)
        if ctype == CONTENT_HANDSHAKE:
            have += rlen
        pos += _RECORD_HEADER_LEN + rlen
    return pos


def parse_client_hello_handshake(hs: bytes, *, quic: bool = False) -> ClientHello:
    """ClientHello from one bare handshake message (4-byte header included), e.g. QUIC CRYPTO."""
    if len(hs) < _HS_HEADER_LEN:
        raise DecodeError("tls.truncated", "handshake header", 0)
    if hs[0] != HS_CLIENT_HELLO:
        raise DecodeError("tls.not_client_hello", f"handshake type {hs[0]}", 0)
    length = int.from_bytes(hs[1:4], "big")
    if length > MAX_CLIENT_HELLO_LEN:
        raise DecodeError("tls.too_long", f"client hello of {length} bytes", 1)
    if _HS_HEADER_LEN + length > len(hs):
        raise DecodeError("tls.truncated", f"client hello needs {length} bytes", 1)
    if len(hs) > _HS_HEADER_LEN + length:
        hs = hs[: _HS_HEADER_LEN + length]
    try:
        return _client_hello_body(hs, _HS_HEADER_LEN, _HS_HEADER_LEN + length, quic)
    except DECODE_EXCEPTIONS as exc:
        raise DecodeError("tls.truncated", f"client hello: {exc}") from None


def looks_like_dtls_client_hello(payload: bytes) -> bool:
    """Cheap check: a DTLS handshake record (RFC 6347 §4.1) holding a ClientHello."""
    return (
        len(payload) > _DTLS_RECORD_HEADER_LEN
        and payload[0] == CONTENT_HANDSHAKE
        and payload[1] == _DTLS_MAJOR
        and payload[_DTLS_RECORD_HEADER_LEN] == HS_CLIENT_HELLO
    )


def parse_dtls_client_hello(payload: bytes) -> ClientHello:
    """ClientHello from one UDP payload starting with a DTLS 1.0/1.2 record (RFC 6347 §4.1, §4.2.2).

    Only a ClientHello carried whole in the first record is read; a fragmented one (fragment
    offset or length not covering the message) raises DecodeError `tls.dtls_fragmented`.
    """
    if not looks_like_dtls_client_hello(payload):
        raise DecodeError("tls.not_client_hello", "not a DTLS handshake record with a ClientHello", 0)
    (rlen,) = _U16.unpack_from(payload, _DTLS_RECORD_HEADER_LEN - 2)
    rend = _DTLS_RECORD_HEADER_LEN + rlen
    if rend > len(payload) or rlen < _DTLS_HS_HEADER_LEN:
        raise DecodeError("tls.bad_record_length", f"DTLS record length {rlen}", _DTLS_RECORD_HEADER_LEN - 2)
    h = _DTLS_RECORD_HEADER_LEN
    length = int.from_bytes(payload[h + 1 : h + 4], "big")
    frag_off = int.from_bytes(payload[h + 6 : h + 9], "big")
    frag_len = int.from_bytes(payload[h + 9 : h + 12], "big")
    if frag_off != 0 or frag_len != length:
        raise DecodeError("tls.dtls_fragmented", f"fragment {frag_off}+{frag_len} of {length}", h + 6)
    body = h + _DTLS_HS_HEADER_LEN
    if body + length > rend:
        raise DecodeError("tls.truncated", f"DTLS client hello needs {length} bytes", h + 1)
    try:
        return _client_hello_body(payload[: body + length], body, body + length, quic=False, dtls=True)
    except DECODE_EXCEPTIONS as exc:
        raise DecodeError("tls.truncated", f"DTLS client hello: {exc}") from None


def _handshake_from_records(buf: bytes, want: int, max_len: int) -> bytes | None:
    """Join the handshake fragments of consecutive records until one message is complete."""
    end = len(buf)
    pos = 0
    parts: list[bytes] = []
    have = 0
    need = -1
    unpack_record = _RECORD.unpack_from
    while True:
        if pos + _RECORD_HEADER_LEN > end:
            return None
        ctype, major, minor, rlen = unpack_record(buf, pos)
        if ctype == CONTENT_ALERT and have == 0 and rlen == _ALERT_LEN:
            if pos + _RECORD_HEADER_LEN + _ALERT_LEN > end:
                return None
            if buf[pos + _RECORD_HEADER_LEN] != _ALERT_WARNING:
                raise DecodeError("tls.alert", f"fatal alert {buf[pos + 6]} before the hello", pos)
            pos += _RECORD_HEADER_LEN + _ALERT_LEN  # e.g. unrecognized_name sent before ServerHello
            continue
        if ctype != CONTENT_HANDSHAKE:
            raise DecodeError("tls.not_handshake", f"record content type {ctype}", pos)
        if major != 3 or minor > 4:
            raise DecodeError("tls.bad_record_version", f"record version {major}.{minor}", pos + 1)
        if rlen == 0 or rlen > MAX_RECORD_LEN:
            raise DecodeError("tls.bad_record_length", f"record length {rlen}", pos + 3)
        body = pos + _RECORD_HEADER_LEN
        if have == 0 and body < end and buf[body] != want:
            reason = "tls.not_client_hello" if want == HS_CLIENT_HELLO else "tls.not_server_hello"
            raise DecodeError(reason, f"handshake type {buf[body]}", body)
        take = min(rlen, end - body)
        if need >= 0:
            take = min(take, need - have)
        parts.append(buf[body : body + take])
        have += take
        if need < 0 and have >= _HS_HEADER_LEN:
            head = b"".join(parts)
            length = int.from_bytes(head[1:4], "big")
            if length > max_len:
                raise DecodeError("tls.too_long", f"handshake message of {length} bytes", body)
            need = _HS_HEADER_LEN + length
            parts = [head[:need]]
            have = min(have, need)
        if need >= 0 and have >= need:
            return b"".join(parts)
        if body + rlen > end:
            return None
        pos = body + rlen


def _client_hello_body(b: bytes, pos: int, end: int, quic: bool, dtls: bool = False) -> ClientHello:
    u16 = _U16.unpack_from
    (version,) = u16(b, pos)
    pos += 2 + 32  # legacy_version, random
    pos += 1 + b[pos]  # legacy_session_id <0..32>
    if dtls:
        pos += 1 + b[pos]  # cookie <0..2^8-1> (RFC 6347 §4.2.1)
    (clen,) = u16(b, pos)
    pos += 2
    if clen % 2 or pos + clen > end:
        raise DecodeError("tls.bad_length", f"cipher_suites length {clen}", pos - 2)
    ciphers = struct.unpack_from(f"!{clen // 2}H", b, pos)
    pos += clen
    pos += 1 + b[pos]  # legacy_compression_methods <1..2^8-1>
    if pos > end:
        raise DecodeError("tls.bad_length", "compression methods past the end", pos)
    exts: list[int] = []
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()
    formats: tuple[int, ...] = ()
    sig_algs: tuple[int, ...] = ()
    versions: tuple[int, ...] = ()
    if pos < end:
        (elen,) = u16(b, pos)
        pos += 2
        eend = pos + elen
        if eend != end:
            raise DecodeError("tls.bad_length", f"extensions length {elen} vs {end - pos}", pos - 2)
        while pos < eend:
            etype, dlen = struct.unpack_from("!HH", b, pos)
            d = pos + 4
            pos = d + dlen
            if pos > eend:
                raise DecodeError("tls.bad_extension", f"extension {etype} length {dlen}", d - 2)
            exts.append(etype)
            if etype == EXT_SERVER_NAME:
                sni = _sni(b, d, pos)
            elif etype == EXT_ALPN:
                alpn = _alpn(b, d, pos)
            elif etype == EXT_SUPPORTED_GROUPS:
                groups = _u16_list(b, d, pos, 2, etype)
            elif etype == EXT_EC_POINT_FORMATS:
                formats = _u8_list(b, d, pos, etype)
            elif etype == EXT_SIGNATURE_ALGORITHMS:
                sig_algs = _u16_list(b, d, pos, 2, etype)
            elif etype == EXT_SUPPORTED_VERSIONS:
                versions = _u16_list(b, d, pos, 1, etype)
    return ClientHello(
        version=version,
        ciphers=ciphers,
        extensions=tuple(exts),
        sni=sni,
        alpn=alpn,
        groups=groups,
        ec_point_formats=formats,
        sig_algs=sig_algs,
        supported_versions=versions,
        quic=quic,
        dtls=dtls,
    )


def _server_hello_body(b: bytes, pos: int) -> ServerHello:
    end = _HS_HEADER_LEN + int.from_bytes(b[1:4], "big")
    (version,) = _U16.unpack_from(b, pos)
    pos += 2 + 32
    if version >> 8 == _DRAFT_TLS13 and version & 0xFF < _DRAFT_LEGACY_LAYOUT:
        (cipher,) = _U16.unpack_from(b, pos)  # draft ServerHello: no session_id, no compression
        pos += 2
    else:
        pos += 1 + b[pos]
        (cipher,) = _U16.unpack_from(b, pos)
        pos += 2 + 1  # cipher_suite, legacy_compression_method
    if pos > end:
        raise DecodeError("tls.bad_length", "server hello shorter than its fixed fields", pos)
    exts: list[int] = []
    selected: int | None = None
    alpn: tuple[str, ...] = ()
    if pos < end:
        (elen,) = _U16.unpack_from(b, pos)
        pos += 2
        eend = pos + elen
        if eend != end:
            raise DecodeError("tls.bad_length", f"extensions length {elen} vs {end - pos}", pos - 2)
        while pos < eend:
            etype, dlen = struct.unpack_from("!HH", b, pos)
            d = pos + 4
            pos = d + dlen
            if pos > eend:
                raise DecodeError("tls.bad_extension", f"extension {etype} length {dlen}", d - 2)
            exts.append(etype)
            if etype == EXT_SUPPORTED_VERSIONS:
                if dlen != 2:
                    raise DecodeError("tls.bad_extension", "supported_versions in server hello", d)
                (selected,) = _U16.unpack_from(b, d)
            elif etype == EXT_ALPN:
                alpn = _alpn(b, d, pos)
    return ServerHello(version, selected, cipher, tuple(exts), alpn)


def _parse_sslv2(buf: bytes) -> ClientHello | None:
    """SSLv2-compatible CLIENT-HELLO (RFC 5246 Appendix E.2): 3-byte cipher specs."""
    if len(buf) < 2:
        return None
    length = _U16.unpack_from(buf, 0)[0] & 0x7FFF
    if len(buf) < 2 + length:
        return None
    if length < 9:
        raise DecodeError("tls.bad_length", f"SSLv2 record length {length}", 0)
    _, mtype, version, cs_len, sid_len, ch_len = _SSL2_HEADER.unpack_from(buf, 0)
    if mtype != HS_CLIENT_HELLO:
        raise DecodeError("tls.not_client_hello", f"SSLv2 message type {mtype}", 2)
    if cs_len % 3 or 11 + cs_len + sid_len + ch_len != 2 + length:
        raise DecodeError("tls.bad_length", "SSLv2 cipher/session/challenge lengths", 5)
    ciphers = tuple(int.from_bytes(buf[i : i + 3], "big") for i in range(11, 11 + cs_len, 3))
    return ClientHello(version, ciphers, (), None, (), (), (), (), (), sslv2=True)


def _sni(b: bytes, pos: int, end: int) -> str | None:
    """First host_name of a server_name list (RFC 6066 §3); None for an empty extension."""
    if pos == end:
        return None
    (llen,) = _U16.unpack_from(b, pos)
    pos += 2
    if pos + llen != end:
        raise DecodeError("tls.bad_extension", "server_name list length", pos - 2)
    while pos < end:
        ntype = b[pos]
        (nlen,) = _U16.unpack_from(b, pos + 1)
        start = pos + 3
        pos = start + nlen
        if pos > end:
            raise DecodeError("tls.bad_extension", "server_name entry length", start - 2)
        if ntype == 0:
            return b[start:pos].decode("utf-8", "replace")
    return None


def _alpn(b: bytes, pos: int, end: int) -> tuple[str, ...]:
    """ALPN protocol names (RFC 7301 §3.1); latin-1 keeps every byte reversible for JA4."""
    if pos == end:
        return ()
    (llen,) = _U16.unpack_from(b, pos)
    pos += 2
    if pos + llen != end:
        raise DecodeError("tls.bad_extension", "ALPN list length", pos - 2)
    out: list[str] = []
    while pos < end:
        n = b[pos]
        start = pos + 1
        pos = start + n
        if pos > end:
            raise DecodeError("tls.bad_extension", "ALPN name length", start - 1)
        out.append(b[start:pos].decode("latin-1"))
    return tuple(out)


def _u16_list(b: bytes, pos: int, end: int, prefix: int, etype: int) -> tuple[int, ...]:
    """A vector of uint16 with a 1- or 2-byte length prefix filling the extension."""
    if pos + prefix > end:
        raise DecodeError("tls.bad_extension", f"extension {etype} too short", pos)
    n = b[pos] if prefix == 1 else _U16.unpack_from(b, pos)[0]
    pos += prefix
    if n % 2 or pos + n != end:
        raise DecodeError("tls.bad_extension", f"extension {etype} list length {n}", pos - prefix)
    return struct.unpack_from(f"!{n // 2}H", b, pos)


def _u8_list(b: bytes, pos: int, end: int, etype: int) -> tuple[int, ...]:
    if pos >= end:
        raise DecodeError("tls.bad_extension", f"extension {etype} too short", pos)
    n = b[pos]
    if pos + 1 + n != end:
        raise DecodeError("tls.bad_extension", f"extension {etype} list length {n}", pos)
    return tuple(b[pos + 1 : end])
