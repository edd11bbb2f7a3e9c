"""Matching semantics on Packets decoded from bytes and flows from a real FlowTable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from capture.packet import Packet
from signatures.rules import EngineConfig, RuleEngine, load_text
from signatures.rules.buffers import normalise_uri
from signatures.rules.matching import BufferProgram
from signatures.rules.parser import rule_variables

from .frames import CLIENT, SERVER, Conversation, pkt_icmp, pkt_tcp, pkt_udp

V = rule_variables({"HOME_NET": "192.0.2.0/24"})


def prog(opts: str) -> BufferProgram:
    rs = load_text(f"alert tcp any any -> any any ({opts} sid:1;)\n", V)
    assert not rs.skipped, rs.skipped
    return BufferProgram(rs.rules[0].buffer("payload"))


def engine(text: str, backend: str | None = None) -> RuleEngine:
    rs = load_text(text, V, file="t.rules")
    assert not rs.skipped, rs.skipped
    return RuleEngine(rs, EngineConfig(prefilter=backend))


def sids(alerts: list[Any]) -> list[int]:
    return [a.sid for a in alerts]


@pytest.mark.parametrize(
    ("opts", "buf", "want"),
    [
        ('content:"abc";', b"xxabcxx", True),
        ('content:"ABC";', b"xxabcxx", False),
        ('content:"ABC"; nocase;', b"xxabcxx", True),
        ('content:"|00 ff|";', b"a\x00\xffb", True),
        ('content:!"abc";', b"xxabxx", True),
        ('content:!"abc";', b"xxabcx", False),
        ('content:"abc"; offset:2;', b"xxabc", True),
        ('content:"abc"; offset:3;', b"xxabc", False),
        ('content:"abc"; depth:4;', b"xabcx", True),
        ('content:"abc"; depth:3;', b"xabcx", False),
        ('content:"abc"; offset:1; depth:3;', b"xabcx", True),
        ('content:"a"; content:"b"; distance:2;', b"axxb", True),
        ('content:"a"; content:"b"; distance:3;', b"axxb", False),
        ('content:"a"; content:"b"; within:2;', b"axb", True),
        ('content:"a"; content:"b"; within:1;', b"axb", False),
        ('content:"a"; content:"b"; distance:1; within:2;', b"axb", True),
        ('content:"a"; content:"b"; distance:-1; within:2;', b"ba", False),
        ('content:"ab"; content:"a"; distance:-2; within:1;', b"ab", True),
        # backtracking: the first "a" is followed by no "b" within 1, the second is
        ('content:"a"; content:"b"; within:1;', b"axab", True),
        ('content:"GET"; startswith;', b"GET /", True),
        ('content:"GET"; startswith;', b" GET /", False),
        ('content:".exe"; endswith;', b"/a.exe", True),
        ('content:".exe"; endswith;', b"/a.exe?", False),
        ('content:"yYYYYYYYYYYYYYYYY"; distance:9; within:29; endswith;', b"x" * 18 + b"yYYYYYYYYYYYYYYYY", True),
        ('content:"yYYYYYYYYYYYYYYYY"; distance:9; within:29; endswith;', b"x" * 22 + b"yYYYYYYYYYYYYYYYY", False),
        ('content:"a"; content:!"b"; within:2;', b"axxb", True),
        ('content:"a"; content:!"b"; within:2;', b"axb", False),
        ('pcre:"/^get \\//i";', b"GET /x", True),
        ('pcre:!"/two/";', b"one", True),
        ('content:"google"; pcre:"/^\\.[a-z]{2,3}$/R";', b"www.google.com", True),
        ('content:"google"; pcre:"/^com/R";', b"www.google.com", False),
        ('pcre:"/b.c/s";', b"ab\ncd", True),
        ('pcre:"/b.c/";', b"ab\ncd", False),
        ('pcre:"/^c/m";', b"ab\ncd", True),
        ('pcre:"/a b #c/x";', b"ab", True),
    ],
)
def test_content_semantics(opts: str, buf: bytes, want: bool) -> None:
    assert prog(opts).match(buf) is want


def test_uri_normalisation() -> None:
    assert normalise_uri(b"/a/%2e%2e/b//c/./d?x=/../y") == b"/b/c/d?x=/../y"
    assert normalise_uri(b"//index.php?page=../../../etc/passwd") == b"/index.php?page=../../../etc/passwd"


@pytest.mark.parametrize("backend", ["hyperscan", "ahocorasick"])
def test_udp_payload_rules_and_prefilter(backend: str) -> None:
    e = engine('alert udp any any -> any 53 (content:"evil"; nocase; sid:1;)\n'
               'alert udp any any -> any 53 (content:"good"; sid:2;)\n'
               'alert udp any any -> any 54 (content:"evil"; sid:3;)\n'
               'alert udp any any -> any any (dsize:>100; sid:4;)\n', backend)  # fmt: skip
    assert e.backend == backend
    assert sids(e.on_packet(pkt_udp(b"xxEVILxx"), None, 0)) == [1]
    assert sids(e.on_packet(pkt_udp(b"x" * 101 + b"good"), None, 0)) == [2, 4]
    assert sids(e.on_packet(pkt_udp(b"nothing"), None, 0)) == []


def test_header_direction_and_bidirectional() -> None:
    e = engine('alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (content:"x"; sid:1;)\n'
               'alert tcp $EXTERNAL_NET 80 <> $HOME_NET any (content:"x"; sid:2;)\n')  # fmt: skip
    assert sids(e.on_packet(pkt_tcp(b"x"), None, 0)) == [1, 2]
    back = pkt_tcp(b"x", src=SERVER, dst=CLIENT, sport=80, dport=40000)
    assert sids(e.on_packet(back, None, 1)) == [2]


def test_flags_ttl_ipproto() -> None:
    e = engine("alert tcp any any -> any any (flags:S; sid:1;)\n"
               "alert tcp any any -> any any (flags:SA; sid:2;)\n"
               "alert ip any any -> any any (ttl:<10; sid:3;)\n"
               "alert ip any any -> any any (ip_proto:tcp; sid:4;)\n")  # fmt: skip
    assert sids(e.on_packet(pkt_tcp(b"", 0x02), None, 0)) == [1, 4]
    assert sids(e.on_packet(pkt_tcp(b"", 0x12, ttl=5), None, 0)) == [2, 3, 4]


def test_icmp_keywords() -> None:
    e = engine("alert icmp any any -> any any (itype:8; icode:0; sid:1;)\n"
               "alert icmp any any -> any any (icmp_id:7; sid:2;)\n"
               "alert icmp any any -> any any (icmp_seq:9; sid:3;)\n"
               "alert icmp any any -> any any (itype:>7; icmp_id:8; sid:4;)\n")  # fmt: skip
    assert sids(e.on_packet(pkt_icmp(7, 9), None, 0)) == [1, 2, 3]
    assert sids(e.on_packet(pkt_icmp(8, 1, type_=0), None, 0)) == []
    assert sids(e.on_packet(pkt_icmp(8, 1, type_=8), None, 0)) == [1, 4]
    # id/seq only exist in echo-like messages: a destination unreachable never matches them
    assert sids(e.on_packet(pkt_icmp(7, 9, type_=3), None, 0)) == []


def test_stream_match_across_segments_once_per_direction() -> None:
    e = engine('alert tcp any any -> any 80 (flow:to_server,established; content:"passwd"; sid:1;)\n'
               'alert tcp-pkt any any -> any 80 (content:"pass"; sid:2;)\n')  # fmt: skip
    c = Conversation()
    assert sids(e.on_packet(*c.send(0, b"GET /etc/pa"))) == []
    assert sids(e.on_packet(*c.send(0, b"sswd HTTP/1.0\r\n\r\n"))) == [1]
    assert sids(e.on_packet(*c.send(0, b"passwd again"))) == [2]


def test_flow_established_and_direction() -> None:
    e = engine('alert tcp any any -> any any (flow:established,to_client; content:"200"; sid:1;)\n'
               'alert tcp any any -> any any (flow:not_established; content:"hi"; sid:2;)\n')  # fmt: skip
    c = Conversation(handshake=False)
    assert sids(e.on_packet(*c.send(0, b"hi"))) == [2]
    c2 = Conversation()
    assert sids(e.on_packet(*c2.send(0, b"hi 200"))) == []
    assert sids(e.on_packet(*c2.send(1, b"HTTP/1.1 200 OK"))) == [1]


def test_flowbits_set_then_isset_and_noalert() -> None:
    e = engine('alert tcp any any -> any any (content:"USER"; flowbits:set,login; flowbits:noalert; sid:1;)\n'
               'alert tcp any any -> any any (content:"230"; flowbits:isset,login; sid:2;)\n'
               'alert tcp any any -> any any (content:"230"; flowbits:isnotset,login; sid:3;)\n')  # fmt: skip
    c = Conversation(dport=21)
    assert sids(e.on_packet(*c.send(1, b"230 hello"))) == [3]
    c = Conversation(dport=21)
    assert sids(e.on_packet(*c.send(0, b"USER bob"))) == []
    assert sids(e.on_packet(*c.send(1, b"230 welcome"))) == [2]


def test_pass_rule_silences_flow() -> None:
    e = engine('pass tcp any any -> any any (content:"trusted"; sid:1;)\n'
               'alert tcp any any -> any any (content:"x"; sid:2;)\n')  # fmt: skip
    c = Conversation()
    assert sids(e.on_packet(*c.send(0, b"x trusted"))) == []
    assert sids(e.on_packet(*c.send(1, b"x"))) == []


@pytest.mark.parametrize(
    ("th", "expected"),
    [
        ("threshold:type limit, track by_src, count 2, seconds 60;", [1, 2]),
        ("threshold:type threshold, track by_src, count 2, seconds 60;", [2, 4]),
        ("threshold:type both, track by_src, count 3, seconds 60;", [3]),
        ("detection_filter:track by_src, count 3, seconds 60;", [4, 5]),
        ("threshold:type limit, track by_dst, count 1, seconds 2;", [1, 4]),
    ],
)
def test_thresholds(th: str, expected: list[int]) -> None:
    e = engine(f"alert icmp any any -> any any (itype:8; {th} sid:1;)\n")
    hits = []
    for n in range(1, 6):
        if e.on_packet(pkt_icmp(seq=n, ts=float(n)), None, 0):
            hits.append(n)
    assert hits == expected


def test_threshold_by_src_is_per_source() -> None:
    e = engine(
        "alert icmp any any -> any any (itype:8; threshold:type limit, track by_src, count 1, seconds 60; sid:1;)\n"
    )
    assert e.on_packet(pkt_icmp(src="192.0.2.1"), None, 0)
    assert not e.on_packet(pkt_icmp(src="192.0.2.1"), None, 0)
    assert e.on_packet(pkt_icmp(src="192.0.2.2"), None, 0)


def test_alert_fields() -> None:
    e = engine('alert tcp any any -> any any (msg:"m"; content:"x"; classtype:web-application-attack; sid:5; rev:2;)\n')
    c = Conversation()
    (a,) = e.on_packet(*c.send(0, b"x"))
    ev = a.to_event()
    assert ev["type"] == "alert" and (ev["sid"], ev["rev"], ev["gid"], ev["severity"]) == (5, 2, 1, 1)
    assert (ev["src"], ev["sport"], ev["dst"], ev["dport"], ev["proto"]) == (CLIENT, 40000, SERVER, 80, "tcp")
    assert ev["community_id"].startswith("1:") and ev["rule_file"] == "t.rules" and ev["src_mac"] == "02:00:00:00:00:01"


@dataclass
class Obs:
    type: str
    fields: dict[str, Any]
    pkt: Packet
    flow: Any = None
    direction: int = 0
    msg: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Req:
    headers: list[tuple[str, str]]
    raw_headers: bytes = b""


def test_http_sticky_buffers() -> None:
    e = engine('alert http any any -> any any (http.method; content:"GET"; http.uri; content:".exe"; endswith; '
               'http.host; content:!".example.org"; endswith; sid:1;)\n'
               'alert http any any -> any any (http.user_agent; bsize:0; sid:2;)\n'
               'alert tcp any any -> any any (content:"passwd"; http_uri; sid:3;)\n'
               'alert http any any -> any any (http.header; content:"X-Evil|3a| 1|0d 0a|"; sid:4;)\n'
               'alert http any any -> any any (http.uri.raw; content:"%2e"; sid:5;)\n')  # fmt: skip
    c = Conversation()
    p, f, d = c.send(0, b"GET /x/%2e%2e/a.exe HTTP/1.1\r\nHost: dl.EXAMPLE.com:8080\r\n\r\n")
    fields = {"method": "GET", "uri": "/x/%2e%2e/a.exe", "host": "dl.EXAMPLE.com:8080", "user_agent": ""}
    got = e.on_observation(Obs("http", fields, p, f, d, Req([("Host", "dl.example.com"), ("X-Evil", "1")])))
    assert sids(got) == [1, 2, 4, 5]
    assert got[0].app["uri"] == "/x/%2e%2e/a.exe"
    fields2 = {**fields, "host": "www.example.org", "uri": "/etc/passwd", "user_agent": None}
    assert sids(e.on_observation(Obs("http", fields2, p, f, d, Req([])))) == [3]


def test_dns_tls_ja_buffers() -> None:
    e = engine('alert dns any any -> any any (dns.query; content:"evil"; nocase; sid:1;)\n'
               'alert tls any any -> any any (tls.sni; content:"bad.example"; sid:2;)\n'
               'alert ip any any -> any any (ja3.hash; content:"e7d705a3286e19ea42f587b344ee6865"; sid:3;)\n'
               'alert ip any any -> any any (ja4.hash; content:"t13d1516h2_"; startswith; sid:4;)\n'
               'alert ip any any -> any any (ja3s.hash; content:"f4febc55ea12b31ae17cfb7e614afda8"; sid:5;)\n'
               )  # fmt: skip
    q = pkt_udp(b"\x00" * 12)
    dns = {"proto_name": "dns", "response": False, "query": "www.EVIL.example", "queries": ["www.EVIL.example"]}
    assert sids(e.on_observation(Obs("dns", dns, q))) == [1]
    assert sids(e.on_observation(Obs("dns", {**dns, "response": True}, q))) == []
    c = Conversation(dport=443)
    p, f, d = c.send(0, b"\x16\x03\x01")
    tls = {
        "sni": "bad.example",
        "ja3": "e7d705a3286e19ea42f587b344ee6865",
        "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
    }
    assert sids(e.on_observation(Obs("tls_client", tls, p, f, d))) == [2, 3, 4]
    # TLS is one transaction per flow: a second ClientHello (after HelloRetryRequest) does not re-alert
    assert sids(e.on_observation(Obs("tls_client", tls, p, f, d))) == []
    p2, f2, d2 = c.send(1, b"\x16\x03\x03")
    assert sids(e.on_observation(Obs("tls_server", {"ja3s": "f4febc55ea12b31ae17cfb7e614afda8"}, p2, f2, d2))) == [5]


def test_swap_keeps_running() -> None:
    e = engine('alert udp any any -> any any (content:"a"; sid:1;)\n')
    assert sids(e.on_packet(pkt_udp(b"ab"), None, 0)) == [1]
    e.swap(load_text('alert udp any any -> any any (content:"b"; sid:2;)\n', V))
    assert sids(e.on_packet(pkt_udp(b"ab"), None, 0)) == [2]


def test_dns_payload_rule_on_udp_packets() -> None:
    e = engine('alert dns any any -> any any (content:"|07|example"; sid:1;)\n')
    c = Conversation(dport=53)  # a TCP flow labelled dns would use its stream; here UDP packets
    assert c is not None
    from capture.flows import FlowTable

    table = FlowTable()
    p = pkt_udp(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")
    flow, d = table.update(p)
    flow.app = "dns"
    assert sids(e.on_packet(p, flow, d)) == [1]


def test_past_stream_depth_packets_are_inspected_alone() -> None:
    e = engine('alert tcp any any -> any any (flow:to_server; content:"late-marker"; sid:1;)\n')
    c = Conversation(depth=16)
    assert sids(e.on_packet(*c.send(0, b"x" * 16))) == []
    assert sids(e.on_packet(*c.send(0, b"..late-marker.."))) == [1]
    assert sids(e.on_packet(*c.send(0, b"late-marker"))) == [1]


def test_tcp_stream_and_tcp_pkt_protocols() -> None:
    e = engine('alert tcp-stream any any -> any any (content:"EVIL"; sid:1;)\n'
               'alert tcp-pkt any any -> any any (content:"EVIL"; sid:2;)\n'
               'alert tcp any any -> any any (content:"EVIL"; sid:3;)\n')  # fmt: skip
    c = Conversation()
    assert sids(e.on_packet(*c.send(0, b"EV"))) == []
    assert sids(e.on_packet(*c.send(0, b"IL"))) == [1, 3]
    assert sids(e.on_packet(*c.send(0, b"EVIL"))) == [2]


def test_falls_back_to_ahocorasick_without_hyperscan(monkeypatch: pytest.MonkeyPatch) -> None:
    import signatures.rules.prefilter as pf

    monkeypatch.setattr(pf, "HAVE_HYPERSCAN", False)
    e = engine('alert tcp any any -> any any (content:"Secret"; sid:1;)\n')
    assert e.backend == "ahocorasick"
    c = Conversation()
    # the caseless automaton over-selects "secret"; the rule's own case-sensitive check rejects it
    assert sids(e.on_packet(*c.send(0, b"a secret"))) == []
    assert sids(e.on_packet(*c.send(0, b" Secret"))) == [1]


def test_flowbits_unset_toggle_and_all_of() -> None:
    from capture.flows import FlowTable

    e = engine('alert udp any any -> any any (content:"A"; flowbits:set,a; flowbits:noalert; sid:1;)\n'
               'alert udp any any -> any any (content:"B"; flowbits:toggle,b; flowbits:noalert; sid:2;)\n'
               'alert udp any any -> any any (content:"U"; flowbits:unset,a; flowbits:noalert; sid:3;)\n'
               'alert udp any any -> any any (content:"?"; flowbits:isset,a&b; sid:4;)\n'
               'alert udp any any -> any any (content:"?"; flowbits:isnotset,a&b; sid:5;)\n'
               'alert udp any any -> any any (content:"?"; flowbits:isnotset,a|b; sid:6;)\n')  # fmt: skip
    table = FlowTable()

    def send(data: bytes) -> list[int]:
        p = pkt_udp(data)
        return sids(e.on_packet(p, *table.update(p)))

    assert send(b"?") == [5, 6]  # nothing set: none-of holds, "not all of a|b" holds
    assert send(b"A ?") == [6]  # a set, b not: only "some of a|b is not set"
    assert send(b"B ?") == [4]  # both set
    assert send(b"B ?") == [6]  # b toggled off again
    assert send(b"U ?") == [5, 6]  # a unset


def test_engine_stats() -> None:
    e = engine('alert udp any any -> any any (content:"a"; sid:1;)\n'
               'alert dns any any -> any any (dns.query; content:"b"; sid:2;)\n'
               "alert icmp any any -> any any (itype:8; "
               "threshold:type limit, track by_src, count 1, seconds 9; sid:3;)\n")  # fmt: skip
    e.on_packet(pkt_icmp(), None, 0)
    st = e.stats()
    assert (st["rules_loaded"], st["fast_patterns"], st["threshold_entries"], st["generation"]) == (3, 2, 1, 0)


def test_streams_off_inspects_packets_alone() -> None:
    rs = load_text('alert tcp any any -> any any (content:"passwd"; sid:1;)\n', V)
    e = RuleEngine(rs, EngineConfig(streams=False))
    c = Conversation()
    assert sids(e.on_packet(*c.send(0, b"/etc/pa"))) == []
    assert sids(e.on_packet(*c.send(0, b"sswd"))) == []
    assert sids(e.on_packet(*c.send(0, b"passwd"))) == [1]
    assert sids(e.on_packet(*c.send(0, b"passwd"))) == [1]
