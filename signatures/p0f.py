"""TCP SYN / SYN+ACK fingerprints matched against a p0f v3 database (`p0f.fp` format).

Three parts, all pure: `load_database(text)` parses the `[tcp:request]` and `[tcp:response]`
sections of a p0f.fp file (the project does not ship one: the default path is where Debian's p0f
package installs it); `tcp_signature(pkt)` reads the IP and TCP header bytes of a decoded packet
into the fields p0f compares (ver, ttl, olen, mss, wsize, scale, olayout, quirks, pclass);
`P0fDatabase.match` applies p0f 3.09b's rules (fp_tcp.c `tcp_find_match`): the option layout must
be equal, a few quirk changes (df or id+ gone, id- or ecn new) and a TTL above or more than
`MAX_DIST` below the signature's give a fuzzy match, a specific signature beats a generic
(`g:`) one, which beats a fuzzy one. A bad database line is reported with file, line and field
and skipped; the rest loads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from capture.errors import DECODE_EXCEPTIONS, DecodeError
from capture.packet import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Packet

DEFAULT_PATH = Path("/etc/p0f/p0f.fp")  # Debian's p0f package
MAX_DIST = 35  # p0f config.h: largest TTL distance still taken as a plain match
MAX_TCP_OPT = 24  # p0f config.h: options recorded per packet
MIN_TCP4 = 40  # IPv4 + TCP headers without options (RFC 791, RFC 9293)
MIN_TCP6 = 60  # IPv6 + TCP headers (RFC 8200)
MAX_FP_LINES = 100_000  # p0f.fp ships ~900 lines; a cap against a wrong file passed as database

# TCP option kinds (IANA "TCP Option Kind Numbers").
OPT_EOL, OPT_NOP, OPT_MSS, OPT_WS, OPT_SOK, OPT_SACK, OPT_TS = 0, 1, 2, 3, 4, 5, 8
_OPT_NAMES = {OPT_EOL: "eol", OPT_NOP: "nop", OPT_MSS: "mss", OPT_WS: "ws", OPT_SOK: "sok", OPT_SACK: "sack"}
_OPT_NAMES[OPT_TS] = "ts"
_OPT_BY_NAME = {v: k for k, v in _OPT_NAMES.items()}

# Quirk bits, in the order p0f prints them (fp_tcp.c dump_sig).
QUIRK_NAMES = (
    "df", "id+", "id-", "ecn", "0+", "flow", "seq-", "ack+", "ack-",
    "uptr+", "urgf+", "pushf+", "ts1-", "ts2+", "opt+", "exws", "bad",
)  # fmt: skip
QUIRK = {name: 1 << i for i, name in enumerate(QUIRK_NAMES)}
Q_DF, Q_NZ_ID, Q_ZERO_ID, Q_ECN = QUIRK["df"], QUIRK["id+"], QUIRK["id-"], QUIRK["ecn"]
Q_FLOW = QUIRK["flow"]
# The rest as constants too: the per-SYN code below reads them without a dict lookup each.
Q_ZERO_MBZ: Final = QUIRK["0+"]
Q_SEQ0: Final = QUIRK["seq-"]
Q_ACK0: Final = QUIRK["ack-"]
Q_ACK_NZ: Final = QUIRK["ack+"]
Q_URG: Final = QUIRK["urgf+"]
Q_UPTR: Final = QUIRK["uptr+"]
Q_PUSH: Final = QUIRK["pushf+"]
Q_OPT_PAST_EOL: Final = QUIRK["opt+"]
Q_EXWS: Final = QUIRK["exws"]
Q_TS1_ZERO: Final = QUIRK["ts1-"]
Q_TS2_NZ: Final = QUIRK["ts2+"]
Q_BAD: Final = QUIRK["bad"]
# Options of fixed length (kind -> length byte p0f expects).
_FIXED_LEN: Final = {OPT_MSS: 4, OPT_WS: 3, OPT_SOK: 2, OPT_TS: 10}
_IPV4_ONLY = Q_DF | Q_NZ_ID | Q_ZERO_ID | Q_ZERO_MBZ

WIN_NORMAL, WIN_ANY, WIN_MOD, WIN_MSS, WIN_MTU = 0, 1, 2, 3, 4

_IP4_DF, _IP4_MBZ = 0x4000, 0x8000  # RFC 791 flags; p0f skips any packet with MF or an offset
_ECN_BITS = 0x03  # ECT(0)/ECT(1)/CE in the low bits of TOS / traffic class (RFC 3168)
_TCP_NS_RES = 0x0F  # reserved bits and NS in the data-offset byte
_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from


def guess_dist(ttl: int) -> int:
    """Hops from the nearest usual initial TTL at or above `ttl` (32, 64, 128, 255)."""
    for ittl in (32, 64, 128):
        if ttl <= ittl:
            return ittl - ttl
    return 255 - ttl


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class TcpSignature:
    """What p0f compares, read from one SYN or SYN+ACK."""

    ver: int
    ttl: int
    olen: int
    mss: int
    wsize: int
    scale: int
    olayout: tuple[int, ...]
    eol_pad: int
    quirks: int
    pclass: int  # 0 without payload, 1 with
    tot_hdr: int  # IP + TCP header bytes
    ts1: int
    synack: bool

    @property
    def ittl(self) -> int:
        """Initial TTL guessed from the observed one."""
        return self.ttl + guess_dist(self.ttl)

    @property
    def olayout_text(self) -> str:
        return layout_text(self.olayout, self.eol_pad)

    @property
    def quirks_text(self) -> str:
        return ",".join(n for n in QUIRK_NAMES if self.quirks & QUIRK[n])

    def win_multi(self, syn_mss: int = 0) -> tuple[int, bool]:
        """(multiplier, of MTU rather than MSS) when the window is a multiple, else (-1, False)."""
        win, mss = self.wsize, self.mss
        if not win or mss < 100:
            return -1, False
        cands: list[tuple[int, bool]] = [(mss, False)]
        if self.ts1:
            cands.append((mss - 12, False))  # stacks that subtract the timestamp option
        cands += [(1500 - MIN_TCP4, False), (1500 - MIN_TCP4 - 12, False)]
        if self.ver == 6:
            cands += [(1500 - MIN_TCP6, False), (1500 - MIN_TCP6 - 12, False)]
        cands += [(mss + MIN_TCP4, True), (mss + self.tot_hdr, True)]
        if self.ver == 6:
            cands.append((mss + MIN_TCP6, True))
        cands.append((1500, True))
        if syn_mss:
            cands += [(syn_mss, False), (syn_mss - 12, False)]
        for div, use_mtu in cands:
            if div > 0 and win % div == 0:
                return win // div, use_mtu
        return -1, False

    def raw_sig(self, syn_mss: int = 0) -> str:
        """The `raw_sig` string p0f logs for this packet."""
        dist = guess_dist(self.ttl)
        ttl = f"{self.ttl}+?" if dist > MAX_DIST else f"{self.ttl}+{dist}"
        multi, use_mtu = self.win_multi(syn_mss)
        win = f"{'mtu' if use_mtu else 'mss'}*{multi}" if multi > 0 else str(self.wsize)
        return (
            f"{self.ver}:{ttl}:{self.olen}:{self.mss}:{win},{self.scale}:{self.olayout_text}:"
            f"{self.quirks_text}:{'+' if self.pclass else '0'}"
        )


def layout_text(layout: tuple[int, ...], eol_pad: int) -> str:
    parts = []
    for kind in layout:
        if kind == OPT_EOL:
            parts.append(f"eol+{eol_pad}")
        else:
            parts.append(_OPT_NAMES.get(kind, f"?{kind}"))
    return ",".join(parts)


def tcp_signature(pkt: Packet) -> TcpSignature:
    """Read the p0f fields of a TCP segment from `pkt.data` (offsets from the decoder)."""
    try:
        return _tcp_signature(pkt)
    except DecodeError:
        raise
    except DECODE_EXCEPTIONS as exc:
        raise DecodeError("p0f.truncated", str(exc), pkt.l4_off) from None


def _tcp_signature(pkt: Packet) -> TcpSignature:
    data, ip, tcp = pkt.data, pkt.ip_off, pkt.l4_off
    if ip < 0 or tcp < 0:
        raise DecodeError("p0f.not_tcp", "packet has no IP/TCP layer")
    quirks = 0
    if pkt.ip_version == 4:
        ihl = (data[ip] & 0x0F) * 4
        tos = data[ip + 1]
        end = ip + _u16(data, ip + 2)[0]
        flags_off = _u16(data, ip + 6)[0]
        if flags_off & ~(_IP4_DF | _IP4_MBZ):
            raise DecodeError("p0f.fragment", "fragments are not fingerprinted", ip + 6)
        olen = ihl - 20
        if tos & _ECN_BITS:
            quirks |= Q_ECN
        if flags_off & _IP4_MBZ:
            quirks |= Q_ZERO_MBZ
        if flags_off & _IP4_DF:
            quirks |= Q_DF
            if _u16(data, ip + 4)[0]:
                quirks |= Q_NZ_ID
        elif not _u16(data, ip + 4)[0]:
            quirks |= Q_ZERO_ID
        ver, ttl = 4, data[ip + 8]
    elif pkt.ip_version == 6:
        ver_tc_flow = _u32(data, ip)[0]
        end = ip + 40 + _u16(data, ip + 4)[0]
        olen = 0
        if ver_tc_flow & 0xFFFFF:
            quirks |= Q_FLOW
        if (ver_tc_flow >> 20) & _ECN_BITS:
            quirks |= Q_ECN
        ver, ttl = 6, data[ip + 7]
    else:
        raise DecodeError("p0f.not_ip", f"IP version {pkt.ip_version}")
    end = min(end, len(data))
    doff = (data[tcp + 12] >> 4) * 4
    if doff < 20 or tcp + doff > end:
        raise DecodeError("p0f.bad_doff", f"data offset {doff}", tcp + 12)
    flags = data[tcp + 13]
    if flags & (ECE | CWR) or data[tcp + 12] & _TCP_NS_RES:
        quirks |= Q_ECN
    seq, ack = _u32(data, tcp + 4)[0], _u32(data, tcp + 8)[0]
    if not seq:
        quirks |= Q_SEQ0
    if flags & ACK:
        if not ack:
            quirks |= Q_ACK0
    elif ack & (0 if flags & RST else 1):
        # p0f 3.09b tests `ack & !(flags & RST)`: only the lowest ACK bit counts. Kept for agreement.
        quirks |= Q_ACK_NZ
    if flags & URG:
        quirks |= Q_URG
    elif _u16(data, tcp + 18)[0]:
        quirks |= Q_UPTR
    if flags & PSH:
        quirks |= Q_PUSH
    syn_only = flags & (SYN | ACK | FIN | RST) == SYN
    layout, eol_pad, mss, scale, ts1, oquirks = _options(data, tcp + 20, tcp + doff, syn_only)
    return TcpSignature(
        ver=ver,
        ttl=ttl,
        olen=olen,
        mss=mss,
        wsize=_u16(data, tcp + 14)[0],
        scale=scale,
        olayout=layout,
        eol_pad=eol_pad,
        quirks=quirks | oquirks,
        pclass=1 if end > tcp + doff else 0,
        tot_hdr=(40 if ver == 6 else olen + 20) + doff,
        ts1=ts1,
        synack=flags & (SYN | ACK) == SYN | ACK,
    )


_Options = tuple[tuple[int, ...], int, int, int, int, int]


def _options(data: bytes, i: int, end: int, syn_only: bool) -> _Options:
    """p0f's option walk (process.c): layout, EOL padding, MSS, scale, TS1 and option quirks."""
    layout: list[int] = []
    eol_pad = mss = scale = ts1 = quirks = 0
    bad = Q_BAD
    while i < end and len(layout) < MAX_TCP_OPT:
        kind = data[i]
        layout.append(kind)
        i += 1
        if kind == OPT_EOL:
            eol_pad = end - i
            while i < end:
                if data[i]:
                    quirks |= Q_OPT_PAST_EOL
                    i = end
                    break
                i += 1
            continue
        if kind == OPT_NOP:
            continue
        fixed = _FIXED_LEN.get(kind)
        if fixed is not None:
            if i + fixed - 1 > end:
                return tuple(layout), eol_pad, mss, scale, ts1, quirks | bad
            if data[i] != fixed:
                quirks |= bad
            if kind == OPT_MSS:
                mss = _u16(data, i + 1)[0]
            elif kind == OPT_WS:
                scale = data[i + 1]
                if scale > 14:  # RFC 7323 §2.3: shift counts above 14 are invalid
                    quirks |= Q_EXWS
            elif kind == OPT_TS:
                ts1 = _u32(data, i + 1)[0]
                if not ts1:
                    quirks |= Q_TS1_ZERO
                if syn_only and _u32(data, i + 5)[0]:
                    quirks |= Q_TS2_NZ
            i += fixed - 1
            continue
        # SACK (10-34 bytes, RFC 2018) and unknown options (2-40) carry their own length.
        lo, hi = (10, 34) if kind == OPT_SACK else (2, 40)
        if i == end or not lo <= data[i] <= hi or i - 1 + data[i] > end:
            return tuple(layout), eol_pad, mss, scale, ts1, quirks | bad
        i += data[i] - 1
    if i != end:
        quirks |= bad
    return tuple(layout), eol_pad, mss, scale, ts1, quirks


@dataclass(frozen=True, slots=True)
class P0fSig:
    """One `sig =` line of the database."""

    ver: int  # 4, 6, or -1 for any
    ittl: int
    bad_ttl: bool
    olen: int
    mss: int  # -1 for any
    win_type: int
    win: int
    scale: int  # -1 for any
    olayout: tuple[int, ...]
    eol_pad: int
    quirks: int
    pclass: int  # -1 for any
    line: int


@dataclass(frozen=True, slots=True)
class P0fLabel:
    generic: bool
    os_class: str  # "win", "unix", "other", or "!" for applications
    name: str
    flavor: str
    sys: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The `os=` text p0f logs: name and flavor."""
        return f"{self.name} {self.flavor}" if self.flavor else self.name


@dataclass(frozen=True, slots=True)
class P0fMatch:
    label: P0fLabel
    line: int
    fuzzy: bool
    dist: int

    @property
    def text(self) -> str:
        return self.label.text


@dataclass(frozen=True, slots=True)
class P0fLineError:
    """A database line that could not be used."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class P0fFormatError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class P0fDatabase:
    """TCP signatures of a p0f.fp file, one list per direction; `errors` lists skipped lines."""

    __slots__ = ("_by_layout", "errors", "path", "request", "response")

    def __init__(
        self,
        request: list[tuple[P0fSig, P0fLabel]],
        response: list[tuple[P0fSig, P0fLabel]],
        errors: list[P0fLineError],
        path: str,
    ) -> None:
        self.request = tuple(request)
        self.response = tuple(response)
        self.errors = tuple(errors)
        self.path = path
        # p0f buckets signatures by option layout hash; only equal layouts can match. File order is kept.
        self._by_layout: tuple[dict[tuple[int, ...], list[tuple[P0fSig, P0fLabel]]], ...] = ({}, {})
        for i, table in enumerate((self.request, self.response)):
            for entry in table:
                self._by_layout[i].setdefault(entry[0].olayout, []).append(entry)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> P0fDatabase:
        """Read and parse a database file (the only I/O here)."""
        p = Path(path)
        return parse_database(p.read_text(encoding="utf-8", errors="replace"), str(p))

    def match(self, sig: TcpSignature, synack: bool, syn_mss: int = 0) -> P0fMatch | None:
        """Best signature for `sig` with p0f's rules; `syn_mss` is the MSS of the SYN, for SYN+ACKs."""
        table = self._by_layout[1 if synack else 0].get(sig.olayout, ())
        if not table:
            return None
        multi, use_mtu = sig.win_multi(syn_mss)
        fmatch: tuple[P0fSig, P0fLabel] | None = None
        gmatch: tuple[P0fSig, P0fLabel] | None = None
        for ref, label in table:
            fuzzy = False
            ref_quirks = ref.quirks
            if ref.ver == -1:
                ref_quirks &= ~Q_FLOW if sig.ver == 4 else ~(Q_DF | Q_NZ_ID | Q_ZERO_ID)
            if ref_quirks != sig.quirks:
                deleted = (ref_quirks ^ sig.quirks) & ref_quirks
                added = (ref_quirks ^ sig.quirks) & sig.quirks
                if fmatch or deleted & ~(Q_DF | Q_NZ_ID) or added & ~(Q_ZERO_ID | Q_ECN):
                    continue
                fuzzy = True
            if ref.eol_pad != sig.eol_pad or ref.olen != sig.olen:
                continue
            if ref.bad_ttl:
                if ref.ittl < sig.ttl:
                    continue
            elif ref.ittl < sig.ttl or ref.ittl - sig.ttl > MAX_DIST:
                fuzzy = True
            if ref.mss != -1 and ref.mss != sig.mss:
                continue
            if ref.scale != -1 and ref.scale != sig.scale:
                continue
            if ref.pclass != -1 and ref.pclass != sig.pclass:
                continue
            if ref.win_type == WIN_NORMAL and ref.win != sig.wsize:
                continue
            if ref.win_type == WIN_MOD and sig.wsize % ref.win:
                continue
            if ref.win_type == WIN_MSS and (use_mtu or ref.win != multi):
                continue
            if ref.win_type == WIN_MTU and (not use_mtu or ref.win != multi):
                continue
            if fuzzy:
                fmatch = fmatch or (ref, label)
            elif not label.generic:
                return P0fMatch(label, ref.line, False, ref.ittl - sig.ttl)
            else:
                gmatch = gmatch or (ref, label)
        if gmatch is not None:
            return P0fMatch(gmatch[1], gmatch[0].line, False, gmatch[0].ittl - sig.ttl)
        if fmatch is None or fmatch[1].os_class == "!":
            return None  # p0f: no fuzzy matching for userland tools
        ref = fmatch[0]
        in_range = ref.ittl >= sig.ttl and (ref.bad_ttl or ref.ittl - sig.ttl <= MAX_DIST)
        return P0fMatch(fmatch[1], ref.line, True, ref.ittl - sig.ttl if in_range else guess_dist(sig.ttl))


def parse_database(text: str, name: str = "<p0f.fp>") -> P0fDatabase:
    """Parse p0f.fp text; lines that do not parse are collected in `errors`, the rest loads."""
    request: list[tuple[P0fSig, P0fLabel]] = []
    response: list[tuple[P0fSig, P0fLabel]] = []
    errors: list[P0fLineError] = []
    section = ""
    label: P0fLabel | None = None
    label_ok = False
    for lineno, raw in enumerate(text.splitlines()[:MAX_FP_LINES], 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                errors.append(P0fLineError(name, lineno, "section", f"unterminated section {line!r}"))
                continue
            section, label, label_ok = line[1:-1], None, False
            continue
        key, eq, value = (s.strip() for s in line.partition("="))
        if not eq:
            errors.append(P0fLineError(name, lineno, "line", f"expected 'key = value', got {line!r}"))
            continue
        if section not in ("tcp:request", "tcp:response"):
            continue  # classes, [mtu], [http:*] are not used here
        try:
            if key == "label":
                label, label_ok = _parse_label(value), True
            elif key == "sys":
                if label is not None and label_ok:
                    label = P0fLabel(label.generic, label.os_class, label.name, label.flavor, _split(value))
            elif key == "sig":
                if label is None or not label_ok:
                    raise P0fFormatError("label", "signature without a valid label before it")
                sig = parse_sig(value, lineno)
                (request if section == "tcp:request" else response).append((sig, label))
            else:
                raise P0fFormatError("key", f"unknown key {key!r}")
        except P0fFormatError as exc:
            if key == "label":
                label_ok = False
            errors.append(P0fLineError(name, lineno, exc.field, exc.message))
    return P0fDatabase(request, response, errors, name)


def _split(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _parse_label(value: str) -> P0fLabel:
    parts = value.split(":", 3)
    if len(parts) != 4 or parts[0] not in ("s", "g"):
        raise P0fFormatError("label", f"expected 's|g:class:name:flavor', got {value!r}")
    if not parts[2]:
        raise P0fFormatError("label", "empty name")
    return P0fLabel(parts[0] == "g", parts[1], parts[2], parts[3])


def _int(text: str, field: str, lo: int, hi: int) -> int:
    if not text.isdigit():
        raise P0fFormatError(field, f"not a number: {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise P0fFormatError(field, f"{value} outside {lo}..{hi}")
    return value


def parse_sig(value: str, line: int = 0) -> P0fSig:
    """Parse `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`; P0fFormatError names the field."""
    parts = value.split(":")
    if len(parts) != 8:
        raise P0fFormatError("sig", f"expected 8 ':'-separated fields, got {len(parts)}")
    ver_t, ittl_t, olen_t, mss_t, win_t, layout_t, quirks_t, pclass_t = parts
    ver = {"4": 4, "6": 6, "*": -1}.get(ver_t)
    if ver is None:
        raise P0fFormatError("ver", f"expected 4, 6 or *, got {ver_t!r}")
    bad_ttl = ittl_t.endswith("-")
    if bad_ttl:
        ittl = _int(ittl_t[:-1], "ittl", 1, 255)
    elif "+" in ittl_t:
        base, _, add = ittl_t.partition("+")
        ittl = _int(base, "ittl", 1, 255) + _int(add, "ittl", 0, 255)
        if ittl > 255:
            raise P0fFormatError("ittl", f"{ittl_t!r} past 255")
    else:
        ittl = _int(ittl_t, "ittl", 1, 255)
    olen = _int(olen_t, "olen", 0, 255)
    mss = -1 if mss_t == "*" else _int(mss_t, "mss", 0, 65535)
    wsize_t, comma, scale_t = win_t.partition(",")
    if not comma:
        raise P0fFormatError("wsize", f"expected 'wsize,scale', got {win_t!r}")
    if wsize_t == "*":
        win_type, win = WIN_ANY, 0
    elif wsize_t.startswith("%"):
        win_type, win = WIN_MOD, _int(wsize_t[1:], "wsize", 2, 65535)
    elif wsize_t[:4] in ("mss*", "mtu*"):
        win_type = WIN_MSS if wsize_t[1] == "s" else WIN_MTU
        win = _int(wsize_t[4:], "wsize", 1, 1000)
    else:
        win_type, win = WIN_NORMAL, _int(wsize_t, "wsize", 0, 65535)
    scale = -1 if scale_t == "*" else _int(scale_t, "scale", 0, 255)
    layout, eol_pad = _parse_layout(layout_t)
    quirks = 0
    for q in quirks_t.split(",") if quirks_t else ():
        bit = QUIRK.get(q)
        if bit is None:
            raise P0fFormatError("quirks", f"unknown quirk {q!r}")
        if ver == 6 and bit & _IPV4_ONLY:
            raise P0fFormatError("quirks", f"{q!r} is not valid for IPv6")
        if ver == 4 and bit == Q_FLOW:
            raise P0fFormatError("quirks", "'flow' is not valid for IPv4")
        quirks |= bit
    pclass = {"*": -1, "0": 0, "+": 1}.get(pclass_t)
    if pclass is None:
        raise P0fFormatError("pclass", f"expected 0, + or *, got {pclass_t!r}")
    return P0fSig(ver, ittl, bad_ttl, olen, mss, win_type, win, scale, layout, eol_pad, quirks, pclass, line)


def _parse_layout(text: str) -> tuple[tuple[int, ...], int]:
    layout: list[int] = []
    eol_pad = 0
    items = text.split(",") if text else []
    if len(items) > MAX_TCP_OPT:
        raise P0fFormatError("olayout", f"more than {MAX_TCP_OPT} options")
    for n, item in enumerate(items):
        if item.startswith("eol+"):
            if n != len(items) - 1:
                raise P0fFormatError("olayout", "eol must be the last option")
            layout.append(OPT_EOL)
            eol_pad = _int(item[4:], "olayout", 0, 255)
        elif item.startswith("?"):
            layout.append(_int(item[1:], "olayout", 0, 255))
        elif item in _OPT_BY_NAME and item != "eol":
            layout.append(_OPT_BY_NAME[item])
        else:
            raise P0fFormatError("olayout", f"unknown option {item!r}")
    return tuple(layout), eol_pad
