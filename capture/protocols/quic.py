"""QUIC Initial packets to a TLS ClientHello (RFC 9000, RFC 9001, RFC 9369), sans-IO.

Strategy: a client's Initial packets are protected with keys anyone can derive from the
Destination Connection ID of its first Initial (RFC 9001 §5.2): HKDF-Extract with the version's
salt, then HKDF-Expand-Label for the key, IV and header-protection key. `QuicInitialReader` keeps
those keys for one flow direction, walks the (possibly coalesced) long-header packets of each
datagram, removes header protection (AES-ECB mask, §5.4), decrypts the payload (AES-128-GCM,
§5.3), and collects CRYPTO frames by offset until the ClientHello handshake message is whole.
Then `capture.protocols.tls` parses it with `quic=True`. Buffers are capped; garbage raises
`DecodeError` with a `quic.*` reason.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from capture.errors import DECODE_EXCEPTIONS, DecodeError
from capture.protocols.tls import (
    MAX_CLIENT_HELLO_LEN,
    ClientHello,
    ServerHello,
    parse_client_hello_handshake,
    parse_server_hello_handshake,
)


@dataclass(frozen=True, slots=True)
class QuicVersion:
    """What differs between QUIC versions for Initial packets."""

    name: str
    salt: bytes
    label_prefix: bytes  # "quic " for v1 and drafts, "quicv2 " for v2 (RFC 9369 §3.3.2)
    initial_type: int  # long-header packet type bits of an Initial
    retry_type: int


_V1 = QuicVersion("v1", bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), b"quic ", 0, 3)
_DRAFT29 = QuicVersion("draft-29", bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"), b"quic ", 0, 3)
_V2 = QuicVersion("v2", bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), b"quicv2 ", 1, 0)
VERSIONS: dict[int, QuicVersion] = {
    0x00000001: _V1,  # RFC 9001 §5.2
    0x6B3343CF: _V2,  # RFC 9369 §3.3.1
    # draft-ietf-quic-tls-29 §5.2: drafts 29 to 32 share one salt.
    0xFF00001D: _DRAFT29,
    0xFF00001E: _DRAFT29,
    0xFF00001F: _DRAFT29,
    0xFF000020: _DRAFT29,
}

MAX_CID_LEN = 20  # RFC 9000 §17.2: connection IDs are at most 20 bytes in version 1
# The CRYPTO stream of an Initial carries one ClientHello: at most the largest one RFC 8446
# allows plus its 4-byte handshake header; data past that offset is refused.
MAX_CRYPTO_BYTES = MAX_CLIENT_HELLO_LEN + 4
# Distinct CRYPTO pieces kept per direction: Chrome splits its hello into ~10 (2024); one piece
# per 64 bytes of the largest hello bounds memory and the reassembly sort.
MAX_CRYPTO_CHUNKS = MAX_CRYPTO_BYTES // 64
_SAMPLE_LEN = 16  # RFC 9001 §5.4.2: AES header-protection sample
_PN_MAX_SKIP = 4  # RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number offset
_KEY_LEN, _IV_LEN, _HP_LEN, _SECRET_LEN = 16, 12, 16, 32  # AEAD_AES_128_GCM, RFC 9001 §5
_MAX_KEY_SETS = 4  # original DCID plus DCIDs after Retry; more means a confused flow

_FRAME_PADDING, _FRAME_PING, _FRAME_ACK, _FRAME_ACK_ECN, _FRAME_CRYPTO = 0x00, 0x01, 0x02, 0x03, 0x06
_FRAME_CLOSE, _FRAME_CLOSE_APP = 0x1C, 0x1D
_NOT_ZERO = re.compile(b"[^\x00]")
_U32 = struct.Struct("!I")


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    """RFC 9000 §16 variable-length integer at `pos`: (value, next offset)."""
    first = b[pos]
    size = 1 << (first >> 6)
    value = first & 0x3F
    for i in range(pos + 1, pos + size):
        value = (value << 8) | b[i]
    if pos + size > len(b):
        raise IndexError("varint past the end")
    return value, pos + size


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label of RFC 8446 §7.1 with an empty context."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


@dataclass(frozen=True, slots=True)
class InitialKeys:
    """Client Initial packet protection keys (RFC 9001 §5.2)."""

    key: bytes
    iv: bytes
    hp: bytes

    @classmethod
    def derive(cls, dcid: bytes, version: QuicVersion, *, server: bool = False) -> InitialKeys:
        """Keys for the client (or server) side of a connection whose client chose `dcid`."""
        initial = hmac.new(version.salt, dcid, hashlib.sha256).digest()
        secret = _expand_label(initial, b"server in" if server else b"client in", _SECRET_LEN)
        p = version.label_prefix
        return cls(
            _expand_label(secret, p + b"key", _KEY_LEN),
            _expand_label(secret, p + b"iv", _IV_LEN),
            _expand_label(secret, p + b"hp", _HP_LEN),
        )


class _Protection:
    __slots__ = ("aead", "hp", "iv")

    def __init__(self, keys: InitialKeys) -> None:
        self.aead = AESGCM(keys.key)
        self.hp: CipherContext = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
        self.iv = int.from_bytes(keys.iv, "big")


def looks_like_quic_initial(payload: bytes) -> bool:
    """Cheap check: a long-header Initial of a QUIC version we can decrypt."""
    if len(payload) < 7 or payload[0] & 0xC0 != 0xC0:
        return False
    version = VERSIONS.get(_U32.unpack_from(payload, 1)[0])
    if version is None or (payload[0] >> 4) & 3 != version.initial_type:
        return False
    return payload[5] <= MAX_CID_LEN


class _InitialCrypto:
    """Shared machinery: Initial packets of one direction in, the CRYPTO stream's first message out."""

    __slots__ = (
        "_chunks",
        "_client_scid",
        "_dcid",
        "_done",
        "_largest_pn",
        "_max_bytes",
        "_max_chunks",
        "_prot",
        "_server",
    )

    def __init__(self, dcid: bytes | None, server: bool, max_bytes: int, max_chunks: int) -> None:
        self._max_bytes = max_bytes
        self._max_chunks = max_chunks
        self._chunks: dict[int, bytes] = {}
        self._prot: dict[tuple[bytes, int], _Protection] = {}
        self._dcid = dcid
        self._client_scid: bytes | None = None
        self._server = server
        self._largest_pn = -1
        self._done = False

    @property
    def done(self) -> bool:
        """True once the hello has been returned; later datagrams are ignored."""
        return self._done

    @property
    def client_dcid(self) -> bytes | None:
        """The client's original Destination Connection ID, from which Initial keys derive."""
        return self._dcid

    def _message(self, datagram: bytes) -> bytes | None:
        if self._done:
            return None
        try:
            added = self._read_datagram(datagram)
        except DECODE_EXCEPTIONS as exc:
            raise DecodeError("quic.truncated", str(exc)) from None
        if not added:
            return None
        hs = self._assembled()
        if hs is None:
            return None
        self._done = True
        self._chunks.clear()
        return hs

    def _read_datagram(self, d: bytes) -> bool:
        n = len(d)
        pos = 0
        added = False
        while pos < n:
            first = d[pos]
            if not first & 0x80:
                break  # short header (RFC 9000 §17.3): the rest of the datagram is 1-RTT
            (vnum,) = _U32.unpack_from(d, pos + 1)
            if vnum == 0:
                break  # version negotiation (RFC 9000 §17.2.1)
            version = VERSIONS.get(vnum)
            if version is None:
                raise DecodeError("quic.unknown_version", f"version 0x{vnum:08x}", pos + 1)
            dcid_len = d[pos + 5]
            if dcid_len > MAX_CID_LEN:
                raise DecodeError("quic.bad_cid", f"DCID length {dcid_len}", pos + 5)
            dcid = d[pos + 6 : pos + 6 + dcid_len]
            q = pos + 6 + dcid_len
            scid_len = d[q]
            if scid_len > MAX_CID_LEN:
                raise DecodeError("quic.bad_cid", f"SCID length {scid_len}", q)
            scid = d[q + 1 : q + 1 + scid_len]
            q += 1 + scid_len
            ptype = (first >> 4) & 3
            if ptype == version.retry_type:
                break  # a Retry fills the rest of the datagram
            if ptype == version.initial_type:
                token_len, q = _varint(d, q)
                q += token_len
            length, q = _varint(d, q)
            end = q + length
            if end > n:
                raise DecodeError("quic.bad_length", f"packet length {length} past the datagram", q)
            if ptype == version.initial_type and not self._from_other_side(dcid, scid):
                added |= self._read_initial(d, pos, q, end, dcid, version, vnum)
            pos = end
        return added

    def _from_other_side(self, dcid: bytes, scid: bytes) -> bool:
        """True for a server Initial fed to a client reader: it is addressed to the client's SCID."""
        if self._server:
            return False
        if self._client_scid is None:
            self._client_scid = scid
            return False
        return dcid == self._client_scid and dcid != self._dcid

    def _protection(self, dcid: bytes, version: QuicVersion, vnum: int) -> _Protection:
        prot = self._prot.get((dcid, vnum))
        if prot is None:
            if len(self._prot) >= _MAX_KEY_SETS:
                raise DecodeError("quic.too_many_dcids", f"over {_MAX_KEY_SETS} Initial key sets")
            keys = InitialKeys.derive(dcid, version, server=self._server)
            prot = self._prot[(dcid, vnum)] = _Protection(keys)
        return prot

    def _read_initial(
        self, d: bytes, start: int, pn_off: int, end: int, dcid: bytes, version: QuicVersion, vnum: int
    ) -> bool:
        if self._dcid is None:
            self._dcid = dcid
        candidates = [self._dcid] if self._server or dcid == self._dcid else [self._dcid, dcid]
        for i, key_dcid in enumerate(candidates):
            try:
                plain = self._decrypt(d, start, pn_off, end, self._protection(key_dcid, version, vnum))
            except InvalidTag:
                if i + 1 < len(candidates):
                    continue
                raise DecodeError("quic.decrypt_failed", "Initial packet does not authenticate", start) from None
            if key_dcid != self._dcid:
                self._dcid = key_dcid  # keys changed after a Retry (RFC 9001 §5.2)
            return self._read_frames(plain)
        return False

    def _decrypt(self, d: bytes, start: int, pn_off: int, end: int, prot: _Protection) -> bytes:
        sample_off = pn_off + _PN_MAX_SKIP
        if sample_off + _SAMPLE_LEN > end:
            raise DecodeError("quic.bad_length", "Initial too short for the header sample", pn_off)
        mask = prot.hp.update(d[sample_off : sample_off + _SAMPLE_LEN])
        first = d[start] ^ (mask[0] & 0x0F)
        pn_len = (first & 0x03) + 1
        truncated = 0
        for i in range(pn_len):
            truncated = (truncated << 8) | (d[pn_off + i] ^ mask[1 + i])
        header = bytes((first,)) + d[start + 1 : pn_off] + truncated.to_bytes(pn_len, "big")
        pn = self._packet_number(truncated, pn_len * 8)
        nonce = (prot.iv ^ pn).to_bytes(_IV_LEN, "big")
        plain = prot.aead.decrypt(nonce, d[pn_off + pn_len : end], header)
        self._largest_pn = max(self._largest_pn, pn)
        return plain

    def _packet_number(self, truncated: int, bits: int) -> int:
        """RFC 9000 Appendix A.3 packet number decoding."""
        expected = self._largest_pn + 1
        win = 1 << bits
        hwin = win // 2
        candidate = (expected & ~(win - 1)) | truncated
        if candidate <= expected - hwin and candidate < (1 << 62) - win:
            return candidate + win
        if candidate > expected + hwin and candidate >= win:
            return candidate - win
        return candidate

    def _read_frames(self, p: bytes) -> bool:
        """Frames allowed in Initial packets (RFC 9000 §12.4 Table 3); True if CRYPTO data was new."""
        n = len(p)
        i = 0
        added = False
        while i < n:
            ftype = p[i]
            if ftype == _FRAME_PADDING:
                m = _NOT_ZERO.search(p, i)
                i = m.start() if m else n
            elif ftype == _FRAME_PING:
                i += 1
            elif ftype in (_FRAME_ACK, _FRAME_ACK_ECN):
                i = _skip_ack(p, i + 1, ftype == _FRAME_ACK_ECN)
            elif ftype == _FRAME_CRYPTO:
                offset, i = _varint(p, i + 1)
                length, i = _varint(p, i)
                if i + length > n:
                    raise DecodeError("quic.bad_length", f"CRYPTO length {length}", i)
                added |= self._add_crypto(offset, p[i : i + length])
                i += length
            elif ftype in (_FRAME_CLOSE, _FRAME_CLOSE_APP):
                break
            else:
                raise DecodeError("quic.bad_frame", f"frame type 0x{ftype:02x} in an Initial", i)
        return added

    def _add_crypto(self, offset: int, data: bytes) -> bool:
        if not data:
            return False
        if offset + len(data) > self._max_bytes:
            raise DecodeError("quic.crypto_overflow", f"CRYPTO data past {self._max_bytes} bytes", offset)
        old = self._chunks.get(offset)
        if old is not None and len(old) >= len(data):
            return False
        if old is None and len(self._chunks) >= self._max_chunks:
            raise DecodeError("quic.crypto_overflow", f"over {self._max_chunks} CRYPTO pieces", offset)
        self._chunks[offset] = data
        return True

    def _assembled(self) -> bytes | None:
        """The whole handshake message if the CRYPTO pieces cover it from offset 0."""
        pieces = sorted(self._chunks.items())
        have = 0
        for offset, data in pieces:
            if offset > have:
                break
            have = max(have, offset + len(data))
        if have < 4:
            return None
        buf = bytearray(have)
        for offset, data in pieces:
            if offset >= have:
                break
            buf[offset : offset + len(data)] = data
        need = 4 + int.from_bytes(buf[1:4], "big")
        if need > self._max_bytes:
            raise DecodeError("quic.crypto_overflow", f"handshake message of {need} bytes", 0)
        if have < need:
            return None
        return bytes(buf[:need])


class QuicInitialReader(_InitialCrypto):
    """Client Initial packets of one flow direction in, the ClientHello out once it is whole."""

    __slots__ = ()

    def __init__(self, max_bytes: int = MAX_CRYPTO_BYTES, max_chunks: int = MAX_CRYPTO_CHUNKS) -> None:
        super().__init__(None, False, max_bytes, max_chunks)

    def feed(self, datagram: bytes) -> ClientHello | None:
        """Read one UDP payload; the ClientHello when this datagram completes it, else None."""
        hs = self._message(datagram)
        return None if hs is None else parse_client_hello_handshake(hs, quic=True)


class QuicServerInitialReader(_InitialCrypto):
    """Server Initial packets of one flow direction in, the ServerHello out.

    Server Initial keys derive from the client's original DCID (RFC 9001 §5.2), which only the
    client direction shows: take it from that direction's `QuicInitialReader.client_dcid`.
    """

    __slots__ = ()

    def __init__(
        self, client_dcid: bytes, max_bytes: int = MAX_CRYPTO_BYTES, max_chunks: int = MAX_CRYPTO_CHUNKS
    ) -> None:
        super().__init__(client_dcid, True, max_bytes, max_chunks)

    def feed(self, datagram: bytes) -> ServerHello | None:
        """Read one UDP payload; the ServerHello when this datagram completes it, else None."""
        hs = self._message(datagram)
        return None if hs is None else parse_server_hello_handshake(hs)


def _skip_ack(p: bytes, i: int, ecn: bool) -> int:
    """Offset after an ACK frame body (RFC 9000 §19.3)."""
    _, i = _varint(p, i)  # largest acknowledged
    _, i = _varint(p, i)  # ack delay
    count, i = _varint(p, i)
    _, i = _varint(p, i)  # first range
    if count > len(p):
        raise DecodeError("quic.bad_frame", f"ACK range count {count}", i)
    for _ in range(2 * count + (3 if ecn else 0)):
        _, i = _varint(p, i)
    return i
