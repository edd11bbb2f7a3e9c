"""p0f v3 matcher: database parsing, signature reading, matching rules, and agreement with p0f 3.09b.

The corpora check reads each capture that has a `*.p0f.log` (p0f 3.09b with Debian's p0f.fp),
fingerprints every SYN and SYN+ACK p0f logged, and compares the raw signature string and, where
p0f names an OS, the label.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.errors import DecodeError
from capture.packet import Packet
from signatures import p0f
from signatures.p0f import P0fDatabase, parse_database, parse_sig, tcp_signature

DB_TEXT = """
classes = win,unix,other
[mtu]
label = Ethernet or modem
sig   = 1500

[tcp:request]
label = s:unix:Linux:3.11 and newer
sig   = *:64:0:*:mss*20,10:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0

label = g:win:Windows:NT kernel
sig   = *:128:0:*:%8192,8:mss,nop,ws,nop,nop,sok:df,id+:0
sig   = *:128:0:*:*,*:mss,nop,ws,nop,nop,sok:df,id+:0

label = s:win:Windows:7 or 8
sig   = *:128:0:*:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0

label = s:!:NMap:SYN scan
sys   = Windows,@unix
sig   = *:64-:0:1460:1024,0:mss::0

[tcp:response]
label = s:unix:Linux:3.x
sig   = *:64:0:*:mss*10,0:mss:df:0
"""


def ipv4_syn(
    ttl: int = 64,
    win: int = 29200,
    opts: bytes = b"",
    df: bool = True,
    ip_id: int = 1,
    flags: int = 0x02,
    seq: int = 1000,
    ack: int = 0,
    tos: int = 0,
    payload: bytes = b"",
) -> Packet:
    """An Ethernet + IPv4 + TCP frame, decoded by hand into a Packet."""
    doff = 20 + len(opts)
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, seq, ack, (doff // 4) << 4, flags, win, 0, 0) + opts
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        total,
        ip_id,
        0x4000 if df else 0,
        ttl,
        6,
        0,
        bytes([192, 0, 2, 10]),
        bytes([198, 51, 100, 1]),
    )
    data = b"\x02" * 6 + b"\x00\x11\x22\x33\x44\x55" + b"\x08\x00" + ip + tcp + payload
    return _packet(data, 14, 4)


def _packet(data: bytes, ip_off: int, ver: int) -> Packet:
    pkt = Packet(0.0, 1, data)
    pkt.ip_off = ip_off
    pkt.ip_version = ver
    pkt.proto = 6
    if ver == 4:
        ihl = (data[ip_off] & 15) * 4
        pkt.ttl = data[ip_off + 8]
        pkt.l4_off = ip_off + ihl
        end = ip_off + struct.unpack_from("!H", data, ip_off + 2)[0]
    else:
        pkt.ttl = data[ip_off + 7]
        pkt.l4_off = ip_off + 40
        end = ip_off + 40 + struct.unpack_from("!H", data, ip_off + 4)[0]
    t = pkt.l4_off
    pkt.sport, pkt.dport, pkt.tcp_seq, pkt.tcp_ack = struct.unpack_from("!HHII", data, t)
    doff = (data[t + 12] >> 4) * 4
    pkt.tcp_flags = data[t + 13]
    pkt.tcp_window = struct.unpack_from("!H", data, t + 14)[0]
    pkt.tcp_opts_off, pkt.tcp_opts_len = t + 20, doff - 20
    pkt.payload_off = t + doff
    pkt.payload_len = max(0, min(end, len(data)) - t - doff)
    return pkt


LINUX_OPTS = bytes.fromhex("020405b4") + bytes.fromhex("0402") + bytes.fromhex("080a0000000100000000") + b"\x01"
LINUX_OPTS += bytes.fromhex("030307")  # mss,sok,ts,nop,ws=7


def test_parse_database_sections_labels_and_sys() -> None:
    db = parse_database(DB_TEXT, "t.fp")
    assert db.errors == ()
    assert len(db.request) == 6 and len(db.response) == 1
    nmap = db.request[-1]
    assert nmap[1].os_class == "!" and nmap[1].sys == ("Windows", "@unix") and nmap[0].bad_ttl


def test_wsize_forms() -> None:
    assert (parse_sig("*:64:0:*:*,*:mss:df:0").win_type) == p0f.WIN_ANY
    s = parse_sig("4:64+3:0:1460:mss*44,8:mss,nop,ws:df:0")
    assert (s.ver, s.ittl, s.mss, s.win_type, s.win, s.scale) == (4, 67, 1460, p0f.WIN_MSS, 44, 8)
    assert parse_sig("*:64:0:*:mtu*4,*:mss::0").win_type == p0f.WIN_MTU
    m = parse_sig("*:64:0:*:%8192,2:mss,eol+3::+")
    assert (m.win_type, m.win, m.eol_pad, m.pclass, m.olayout) == (p0f.WIN_MOD, 8192, 3, 1, (2, 0))


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("sig = 5:64:0:*:*,*:mss::0", "ver"),
        ("sig = *:300:0:*:*,*:mss::0", "ittl"),
        ("sig = *:64:0:99999:*,*:mss::0", "mss"),
        ("sig = *:64:0:*:mss*0,*:mss::0", "wsize"),
        ("sig = *:64:0:*:*,x:mss::0", "scale"),
        ("sig = *:64:0:*:*,*:mss,foo::0", "olayout"),
        ("sig = *:64:0:*:*,*:eol+0,mss::0", "olayout"),
        ("sig = *:64:0:*:*,*:mss:weird:0", "quirks"),
        ("sig = 6:64:0:*:*,*:mss:df:0", "quirks"),
        ("sig = *:64:0:*:*,*:mss::2", "pclass"),
        ("sig = *:64:0:*:*,*:mss:0", "sig"),
        ("label = x:unix:Linux:3", "label"),
    ],
)
def test_bad_line_names_file_line_and_field_rest_loads(line: str, field: str) -> None:
    text = DB_TEXT + line + "\n"
    if field == "label":
        text += "sig   = *:64:0:*:mss*10,1:mss:df:0\n"
    db = parse_database(text, "bad.fp")
    assert len(db.errors) == (2 if field == "label" else 1)
    err = db.errors[0]
    want_line = text.splitlines().index(line) + 1
    assert (err.file, err.line, err.field) == ("bad.fp", want_line, field)
    assert str(err).startswith(f"bad.fp:{want_line}: {field}: ")
    assert len(db.request) == 6  # everything else still loads
    assert len(db.response) == 1
    if field == "label":  # a bad label voids the signatures under it, each reported
        assert (db.errors[1].line, db.errors[1].field) == (want_line + 1, "label")


def test_signature_fields_and_quirks() -> None:
    sig = tcp_signature(ipv4_syn(ttl=61, win=64240, opts=LINUX_OPTS, ip_id=0))
    assert (sig.ver, sig.ttl, sig.ittl, sig.olen, sig.mss, sig.wsize, sig.scale) == (
        4,
        61,
        64,
        0,
        1460,
        64240,
        7,
    )
    assert sig.olayout_text == "mss,sok,ts,nop,ws"
    assert sig.quirks_text == "df"  # DF with a zero IP ID: no id+
    assert sig.raw_sig() == "4:61+3:0:1460:mss*44,7:mss,sok,ts,nop,ws:df:0"
    q = tcp_signature(ipv4_syn(df=False, ip_id=0, flags=0x02 | 0x08 | 0x40, seq=0, ack=1, tos=1, payload=b"x"))
    assert q.quirks_text == "id-,ecn,seq-,ack+,pushf+" and q.pclass == 1
    bad = tcp_signature(ipv4_syn(opts=bytes.fromhex("0205ffff00") + b"\x00\x00\x00"))
    assert "bad" in bad.quirks_text
    eol = tcp_signature(ipv4_syn(opts=bytes.fromhex("020405b4") + b"\x00\x00\x07\x00"))
    assert eol.olayout_text == "mss,eol+3" and "opt+" in eol.quirks_text
    ws = tcp_signature(ipv4_syn(opts=bytes.fromhex("03030f00")))
    assert "exws" in ws.quirks_text


def test_ipv6_flow_quirk() -> None:
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 7, 0, (24 // 4) << 4, 0x02, 65535, 0, 0) + bytes.fromhex("020405a0")
    ip6 = struct.pack("!IHBB", (6 << 28) | 0x12345, len(tcp), 6, 57) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    sig = tcp_signature(_packet(b"\x00" * 12 + b"\x86\xdd" + ip6 + tcp, 14, 6))
    assert sig.raw_sig() == "6:57+7:0:1440:65535,0:mss:flow:0"


def test_match_exact_generic_fuzzy_and_tools() -> None:
    db = parse_database(DB_TEXT)
    linux = tcp_signature(ipv4_syn(ttl=60, win=1460 * 20, opts=LINUX_OPTS.replace(b"\x03\x03\x07", b"\x03\x03\x0a")))
    m = db.match(linux, synack=False)
    assert m is not None and m.text == "Linux 3.11 and newer" and not m.fuzzy and m.dist == 4
    win_opts = bytes.fromhex("020405b40103030801010402")
    exact = db.match(tcp_signature(ipv4_syn(ttl=128, win=8192, opts=win_opts)), synack=False)
    assert exact is not None and exact.text == "Windows 7 or 8" and not exact.label.generic
    generic = db.match(tcp_signature(ipv4_syn(ttl=127, win=65535, opts=win_opts)), synack=False)
    assert generic is not None and generic.text == "Windows NT kernel" and generic.label.generic
    # df disappearing is tolerated as a fuzzy match
    fuzzy = db.match(tcp_signature(ipv4_syn(ttl=128, win=8192, opts=win_opts, df=False, ip_id=5)), synack=False)
    assert fuzzy is not None and fuzzy.fuzzy
    # TTL far below the signature's initial TTL: fuzzy, distance guessed
    far = db.match(tcp_signature(ipv4_syn(ttl=20, win=1460 * 20, opts=LINUX_OPTS)), synack=False)
    assert far is not None and far.fuzzy and far.dist == 12
    # a new quirk outside {id-, ecn}: no match
    assert db.match(tcp_signature(ipv4_syn(ttl=128, win=8192, opts=win_opts, flags=0x0A)), synack=False) is None
    # tool signatures never match fuzzily; random TTL (64-) accepts any TTL below 64
    nmap = tcp_signature(ipv4_syn(ttl=40, win=1024, opts=bytes.fromhex("020405b4"), df=False, ip_id=5))
    hit = db.match(nmap, synack=False)
    assert hit is not None and hit.label.name == "NMap"
    tool_fuzzy = ipv4_syn(ttl=40, win=1024, opts=bytes.fromhex("020405b4"), df=False, ip_id=0)  # id- appears
    assert db.match(tcp_signature(tool_fuzzy), synack=False) is None
    assert (
        db.match(
            tcp_signature(ipv4_syn(ttl=70, win=1024, opts=bytes.fromhex("020405b4"), df=False, ip_id=5)),
            synack=False,
        )
        is None
    )
    # direction matters
    assert db.match(linux, synack=True) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=60), st.integers(0, 255))
def test_signature_on_random_tcp_bytes_returns_or_raises_decode_error(tcp: bytes, ttl: int) -> None:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, ttl, 6, 0, bytes(4), bytes(4))
    pkt = Packet(0.0, 101, ip + tcp)
    pkt.ip_off, pkt.l4_off, pkt.ip_version, pkt.ttl = 0, 20, 4, ttl
    try:
        sig = tcp_signature(pkt)
    except DecodeError:
        return
    assert len(sig.olayout) <= p0f.MAX_TCP_OPT
    assert len(sig.raw_sig().split(":")) == 8


# ---------------------------------------------------------------- agreement with p0f 3.09b

LOG_RE = re.compile(r"mod=(syn|syn\+ack)\|cli=([^|]+)/(\d+)\|srv=([^|]+)/(\d+)\|subj=\w+\|os=([^|]*)\|.*raw_sig=(\S+)")


def _frames(path: Path) -> list[tuple[int, bytes]]:
    from scapy.utils import RawPcapNgReader, RawPcapReader

    with path.open("rb") as fh:
        magic = fh.read(4)
    reader = RawPcapNgReader if magic == b"\x0a\x0d\x0d\x0a" else RawPcapReader
    out = []
    with reader(str(path)) as r:
        for data, meta in r:
            lt = getattr(meta, "linktype", None) or getattr(r, "linktype", 1)
            out.append((lt, data))
    return out


def _decode(linktype: int, data: bytes) -> Packet | None:
    """The project's decoder when present, else a minimal one for Ethernet/VLAN/SLL/raw."""
    try:
        from capture.decode import decode

        pkt = decode(0.0, linktype, data)
        return pkt if pkt.proto == 6 and not pkt.frag and pkt.l4_off >= 0 else None
    except ImportError:
        pass
    except DecodeError:
        return None
    off = {1: 14, 113: 16, 276: 20, 101: 0, 12: 0, 14: 0, 0: 4, 108: 4}.get(linktype)
    if off is None:
        return None
    if linktype == 1:
        while data[off - 2 : off] in (b"\x81\x00", b"\x88\xa8"):
            off += 4
    if len(data) < off + 40:
        return None
    ver = data[off] >> 4
    if ver == 4 and data[off + 9] == 6:
        return _packet(data, off, 4)
    if ver == 6 and data[off + 6] == 6:
        return _packet(data, off, 6)
    return None


def _addr(pkt: Packet, which: str) -> str:
    from capture.packet import ip_text

    if pkt.src:
        raw = pkt.src if which == "src" else pkt.dst
    else:
        o = pkt.ip_off
        a, n = (o + 12, 4) if pkt.ip_version == 4 else (o + 8, 16)
        raw = pkt.data[a : a + n] if which == "src" else pkt.data[a + n : a + 2 * n]
    text = ip_text(raw)
    if pkt.ip_version == 6:  # p0f prints each group in full hex without zero compression
        import ipaddress

        text = ":".join(f"{int(g, 16):x}" for g in ipaddress.IPv6Address(text).exploded.split(":"))
    return text


def test_agreement_with_p0f_logs(corpora: Path) -> None:
    db_path = p0f.DEFAULT_PATH
    if not db_path.is_file():
        pytest.skip(f"{db_path} absent: install Debian's p0f package for the reference database")
    db = P0fDatabase.load(db_path)
    assert db.errors == (), [str(e) for e in db.errors]
    raw_total = raw_same = label_total = label_same = unknown_total = unknown_same = 0
    mismatches: list[str] = []
    for log in sorted(corpora.glob("*/reference/*.p0f.log")):
        pcap = log.parent.parent / "pcap" / log.name.removesuffix(".p0f.log")
        if not pcap.is_file():
            continue
        logged = [m.groups() for m in map(LOG_RE.search, log.read_text().splitlines()) if m]
        if not logged:
            continue
        sigs: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
        syn_mss: dict[tuple[str, str, str, str], int] = {}
        for linktype, data in _frames(pcap):
            pkt = _decode(linktype, data)
            if pkt is None or pkt.tcp_flags & 0x17 not in (0x02, 0x12):
                continue
            try:
                sig = tcp_signature(pkt)
            except DecodeError:
                continue
            src, dst = _addr(pkt, "src"), _addr(pkt, "dst")
            if not sig.synack:
                cli = (src, str(pkt.sport), dst, str(pkt.dport))
                syn_mss[cli] = sig.mss
                key = ("syn", *cli)
                match = db.match(sig, synack=False)
                sigs.setdefault(key, (sig.raw_sig(), match.text if match else "???"))
            else:
                cli = (dst, str(pkt.dport), src, str(pkt.sport))
                key = ("syn+ack", *cli)
                mss = syn_mss.get(cli, 0)
                match = db.match(sig, synack=True, syn_mss=mss)
                sigs.setdefault(key, (sig.raw_sig(mss), match.text if match else "???"))
        for mod, cip, cport, sip, sport, os_name, raw in logged:
            ours = sigs.get((mod, cip, cport, sip, sport))
            raw_total += 1
            if ours is None:
                mismatches.append(f"{pcap.name} {mod} {cip}/{cport}: not fingerprinted")
                continue
            raw_same += ours[0] == raw
            if ours[0] != raw:
                mismatches.append(f"{pcap.name} {mod} {cip}/{cport}: raw {ours[0]} != {raw}")
            if os_name != "???":
                label_total += 1
                label_same += ours[1] == os_name
            else:
                unknown_total += 1
                unknown_same += ours[1] == os_name
            if ours[1] != os_name:
                mismatches.append(f"{pcap.name} {mod} {cip}/{cport}: label {ours[1]!r} != {os_name!r}")
    print(f"p0f raw_sig agreement with p0f 3.09b: {raw_same}/{raw_total}")
    print(f"p0f label agreement where p0f names an OS: {label_same}/{label_total}")
    print(f"p0f agreement where p0f says '???' (no match either): {unknown_same}/{unknown_total}")
    for line in mismatches[:20]:
        print("  mismatch:", line)
    assert label_total >= 50 and raw_total >= 100
    assert label_same == label_total
    assert raw_same == raw_total
    assert unknown_same == unknown_total


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789:*,+-%.=abcdefgijklmnopqrstuvwxyz?[]! \t;", max_size=60), max_size=20))
def test_database_parser_reports_never_raises(lines: list[str]) -> None:
    db = parse_database("[tcp:request]\nlabel = s:unix:X:1\n" + "\n".join(lines), "fuzz.fp")
    for err in db.errors:
        assert err.file == "fuzz.fp" and err.line >= 1 and err.field
