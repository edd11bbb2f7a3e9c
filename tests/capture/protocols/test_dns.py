"""DNS/mDNS/LLMNR: golden bytes built field by field, the zeroconf-style attacks, Zeek's dns.log."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from capture.errors import DecodeError
from capture.protocols.dns import parse_dns, parse_dns_tcp
from tests.capture.protocols.pcap_payloads import payloads


def header(ident: int, flags: int, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", ident, flags, qd, an, ns, ar)


QUERY = b"".join(
    [
        b"\x12\x34",  # id
        b"\x01\x00",  # flags: standard query, RD
        b"\x00\x01",  # QDCOUNT 1
        b"\x00\x00\x00\x00\x00\x00",  # AN/NS/AR 0
        b"\x03www\x07example\x03com\x00",  # QNAME www.example.com
        b"\x00\x01",  # QTYPE A
        b"\x00\x01",  # QCLASS IN
    ]
)

RESPONSE = b"".join(
    [
        b"\x12\x34",  # id
        b"\x81\x80",  # flags: response, RD, RA, rcode 0
        b"\x00\x01\x00\x02\x00\x00\x00\x00",  # QD 1, AN 2
        b"\x03www\x07example\x03com\x00\x00\x01\x00\x01",  # question (offset 12)
        b"\xc0\x0c",  # name: pointer to offset 12
        b"\x00\x05\x00\x01",  # CNAME IN
        b"\x00\x00\x0e\x10",  # TTL 3600
        b"\x00\x06",  # RDLENGTH 6
        b"\x03web\xc0\x10",  # web + pointer to "example.com" (offset 16)
        b"\xc0\x2d",  # name: pointer to web.example.com (offset 45)
        b"\x00\x01\x00\x01",  # A IN
        b"\x00\x00\x00\x3c",  # TTL 60
        b"\x00\x04\xc0\x00\x02\x01",  # RDLENGTH 4, 192.0.2.1
    ]
)


def test_golden_query() -> None:
    assert parse_dns(QUERY).fields() == {
        "proto_name": "dns",
        "id": 0x1234,
        "response": False,
        "query": "www.example.com",
        "qtype": 1,
        "queries": ["www.example.com"],
        "rcode": 0,
        "answers": [],
        "additionals": [],
    }


def test_golden_response_with_compression() -> None:
    f = parse_dns(RESPONSE).fields()
    assert f["response"] is True
    assert f["answers"] == [
        {"name": "www.example.com", "type": 5, "ttl": 3600, "data": "web.example.com"},
        {"name": "web.example.com", "type": 1, "ttl": 60, "data": "192.0.2.1"},
    ]


def _rr(name: bytes, rtype: int, rclass: int, ttl: int, rdata: bytes) -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def test_golden_mdns_response_masks_cache_flush_and_renders_records() -> None:
    inst = b"\x07Printer\x04_ipp\x04_tcp\x05local\x00"  # offset 12
    msg = b"".join(
        [
            header(0, 0x8400, 0, 4),
            _rr(inst, 16, 0x8001, 4500, b'\x09txtvers=1\x0ety=HP "Laser"\\'),  # TXT, cache flush
            _rr(b"\xc0\x0c", 33, 0x8001, 120, b"\x00\x00\x00\x00\x02\x77\x04host\xc0\x1e"),  # SRV
            _rr(b"\x04host\xc0\x1e", 28, 0x8001, 120, bytes.fromhex("20010db8000000000000000000000001")),
            _rr(b"\xc0\x14", 12, 1, 4500, b"\xc0\x0c"),  # PTR: _ipp._tcp.local -> the instance
        ]
    )
    m = parse_dns(msg, "mdns")
    txt, srv, aaaa, ptr = m.answers
    assert (txt.rclass, txt.cache_flush) == (1, True)
    assert txt.txt == ("txtvers=1", 'ty=HP "Laser"\\')
    assert txt.data == '"txtvers=1" "ty=HP \\"Laser\\"\\\\"'
    assert srv.data == "0 0 631 host.local" and srv.name == "Printer._ipp._tcp.local"
    assert aaaa.data == "2001:db8::1" and aaaa.name == "host.local"
    assert (ptr.name, ptr.data, ptr.cache_flush) == ("_ipp._tcp.local", "Printer._ipp._tcp.local", False)


def test_mdns_unicast_response_bit_masked_only_for_mdns() -> None:
    q = header(0, 0, 1) + b"\x04host\x05local\x00\x00\xff\x80\x01"
    mq = parse_dns(q, "mdns").questions[0]
    assert (mq.qclass, mq.unicast_response, mq.qtype) == (1, True, 255)
    assert parse_dns(q).questions[0].qclass == 0x8001


def test_llmnr_and_unknown_type_generic_form() -> None:
    msg = header(7, 0x8000, 0, 1) + _rr(b"\x04host\x00", 99, 1, 30, b"\xde\xad")
    m = parse_dns(msg, "llmnr")
    assert m.proto_name == "llmnr" and m.answers[0].data == "\\# 2 dead"


def test_tcp_length_prefix() -> None:
    assert parse_dns_tcp(struct.pack("!H", len(QUERY)) + QUERY).fields()["query"] == "www.example.com"
    with pytest.raises(DecodeError) as err:
        parse_dns_tcp(struct.pack("!H", len(QUERY) + 5) + QUERY)
    assert err.value.reason == "dns.truncated"


# --- hostile packets (python-zeroconf's regressions and more) ---------------------------------


def _reason(payload: bytes) -> str:
    with pytest.raises(DecodeError) as err:
        parse_dns(payload, "mdns")
    return err.value.reason


def test_dns_compression_loop_attack() -> None:
    # Two pointers that point at each other: 12 -> 14 -> 12.
    assert _reason(header(0, 0, 1) + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01") == "dns.compression_loop"


def test_dns_compression_loop_through_labels() -> None:
    # "a" then a pointer back to the start of the same name: a.a.a.a... forever.
    assert _reason(header(0, 0, 1) + b"\x01a\xc0\x0c\x00\x01\x00\x01") == "dns.compression_loop"


def test_dns_pointer_to_itself() -> None:
    assert _reason(header(0, 0, 1) + b"\xc0\x0c\x00\x01\x00\x01") == "dns.compression_loop"


def test_dns_pointer_forward_past_the_end() -> None:
    assert _reason(header(0, 0, 1) + b"\xc0\xff\x00\x01\x00\x01") == "dns.bad_pointer"


def test_dns_forward_pointer_is_followed_when_it_lands_on_a_name() -> None:
    # The question points forward to a name stored after it (RFC 1035 says "prior", but
    # Wireshark and zeroconf accept it; loops are still caught by the seen-pointer set).
    msg = header(0, 0, 1, 0, 0, 1) + b"\xc0\x12\x00\x01\x00\x01" + _rr(b"\x01x\x00", 1, 1, 1, b"\x7f\x00\x00\x01")
    assert parse_dns(msg).questions[0].name == "x"


def test_dns_10000_labels() -> None:
    msg = header(0, 0, 1) + b"\x01a" * 10_000 + b"\x00\x00\x01\x00\x01"
    assert _reason(msg) == "dns.name_too_long"


def test_dns_label_cap_via_cached_suffix() -> None:
    # 100 labels in question 1, then question 2 adds 100 labels before pointing at it.
    long_name = b"\x01a" * 100 + b"\x00"
    msg = header(0, 0, 2) + long_name + b"\x00\x01\x00\x01" + b"\x01b" * 100 + b"\xc0\x0c\x00\x01\x00\x01"
    assert _reason(msg) == "dns.name_too_long"


def test_dns_labels_through_many_pointers_are_capped() -> None:
    # Question 1 is "a"; question 2 points at the last link of a chain of 200 one-label names,
    # each pointing at the previous link: no loop, but 201 labels once followed.
    msg = header(0, 0, 2) + b"\x01a\x00" + b"\x00\x01\x00\x01"  # question 1 at offset 12
    base = len(msg) + 2 + 4  # after question 2 (a pointer and type/class)
    chain = bytearray()
    for i in range(200):
        target = 12 if i == 0 else base + (i - 1) * 4
        chain += b"\x01a" + struct.pack("!H", 0xC000 | target)
    msg += struct.pack("!H", 0xC000 | (base + 199 * 4)) + b"\x00\x01\x00\x01" + bytes(chain)
    # One-octet labels cost two octets each, so RFC 1035's 255-octet limit stops the name at
    # label 128, which is also where zeroconf's MAX_DNS_LABELS (128) would.
    assert _reason(msg) == "dns.name_too_long"


def test_dns_label_length_past_the_buffer() -> None:
    assert _reason(header(0, 0, 1) + b"\x3fabcdef") == "dns.bad_label"


def test_dns_reserved_label_type() -> None:
    assert _reason(header(0, 0, 1) + b"\x41abc\x00\x00\x01\x00\x01") == "dns.bad_label"


def test_dns_name_longer_than_255_octets() -> None:
    name = b"\x3f" + b"a" * 63
    assert _reason(header(0, 0, 1) + name * 5 + b"\x00\x00\x01\x00\x01") == "dns.name_too_long"


def test_dns_counts_larger_than_the_packet() -> None:
    assert _reason(header(0, 0, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF) + bytes(20)) == "dns.bad_counts"


def test_dns_rdlength_past_the_end() -> None:
    assert _reason(header(0, 0x8000, 0, 1) + b"\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x40abcd") == "dns.truncated"


def test_dns_txt_string_past_the_record() -> None:
    msg = header(0, 0x8000, 0, 1) + _rr(b"\x00", 16, 1, 1, b"\x09abc")
    assert _reason(msg) == "dns.bad_rdata"


def test_dns_short_header() -> None:
    assert _reason(b"\x00\x01\x02") == "dns.truncated"


# --- Zeek ----------------------------------------------------------------------------------


@pytest.mark.corpora
def test_agrees_with_zeek_mdns_dns_log(corpora: Path) -> None:
    """Zeek's dns.log for mdns-no-assoc: per message, query (or answer) name, qtype, answers, TTL."""
    log = next((corpora / "protocols" / "upstream").glob("zeek__dns__mdns-no-assoc*.dns.log"))
    fields: list[str] = []
    rows = []
    for line in log.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=True)))
    msgs = []
    for p in payloads(corpora / "protocols" / "pcap" / "zeek__dns__mdns-no-assoc.pcap").values():
        if p.proto == "udp" and p.dport == 5353:
            msgs.append(parse_dns(p.payload, "mdns"))
    ours = []
    for m in msgs:
        if m.questions:
            ours.append((m.questions[0].name, str(m.questions[0].qtype), "-", "-"))
        else:
            a = m.answers[0]
            ours.append((a.name, "-", a.data, f"{a.ttl:.6f}"))
    theirs = [(r["query"], r["qtype"], r["answers"], r["TTLs"]) for r in rows]
    agree = sum(1 for o, t in zip(ours, theirs, strict=False) if o == t)
    print(f"mDNS agreement with Zeek dns.log: {agree}/{len(theirs)} messages")
    assert ours == theirs
