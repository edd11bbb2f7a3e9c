"""Parser: every supported keyword, header expressions, and errors that name file/line/sid/keyword."""

from __future__ import annotations

import ipaddress

import pytest

from signatures.rules import RuleError, load_rules, load_text, parse_rule
from signatures.rules.model import Bsize, Content, Pcre
from signatures.rules.parser import rule_variables, split_options
from signatures.rules.variables import parse_addresses, parse_ports

V = rule_variables({"HOME_NET": "[192.0.2.0/24,2001:db8::/32]"})


def rule(opts: str, header: str = "alert tcp any any -> any any") -> object:
    return parse_rule(f"{header} ({opts})", V, file="t.rules", line=1)


def ip(a: str) -> bytes:
    return ipaddress.ip_address(a).packed


def test_header_fields_and_meta() -> None:
    r = parse_rule(
        'alert tcp $HOME_NET 1024: -> $EXTERNAL_NET [80,443] (msg:"a \\"q\\" b"; sid:7; rev:3; gid:2; '
        "classtype:trojan-activity; reference:url,example.org; metadata:created_at 2024_01_01;)",
        V,
    )
    assert (r.action, r.proto, r.sid, r.rev, r.gid) == ("alert", "tcp", 7, 3, 2)
    assert r.msg == 'a "q" b'
    assert r.classtype == "trojan-activity" and r.priority == 1
    assert r.references == ("url,example.org",) and r.metadata == ("created_at 2024_01_01",)
    assert r.src.contains(ip("192.0.2.9")) and not r.src.contains(ip("198.51.100.1"))
    assert r.dst.contains(ip("198.51.100.1")) and not r.dst.contains(ip("192.0.2.9"))
    assert r.src.contains(ip("2001:db8::5")) and not r.dst.contains(ip("2001:db8::5"))
    assert r.sport.contains(1024) and r.sport.contains(65535) and not r.sport.contains(1023)
    assert r.dport.contains(443) and not r.dport.contains(8080)


def test_priority_overrides_classtype() -> None:
    assert rule("sid:1; classtype:trojan-activity; priority:4;").priority == 4
    assert rule("sid:1;").priority == 3


def test_address_lists_negation_and_nesting() -> None:
    s = parse_addresses("[10.0.0.0/8,![10.1.0.0/16,!10.1.2.0/24]]", {})
    assert s.contains(ip("10.9.0.1"))
    assert not s.contains(ip("10.1.0.1"))
    assert s.contains(ip("10.1.2.3"))
    assert not s.contains(ip("11.0.0.1"))
    neg = parse_addresses("!192.0.2.1", {})
    assert neg.contains(ip("192.0.2.2")) and not neg.contains(ip("192.0.2.1")) and neg.contains(ip("2001:db8::1"))
    only_neg = parse_addresses("[!192.0.2.0/24]", {})
    assert only_neg.contains(ip("198.51.100.1")) and not only_neg.contains(ip("192.0.2.1"))


def test_port_expressions() -> None:
    p = parse_ports("[1:1024,!80,$P]", {"P": "[8080,9000:9001]"})
    assert p.contains(1) and p.contains(1024) and not p.contains(80) and p.contains(9001) and not p.contains(1025)
    assert parse_ports("!22", {}).contains(23) and not parse_ports("!22", {}).contains(22)
    assert parse_ports(":100", {}).contains(0) and not parse_ports(":100", {}).contains(101)
    with pytest.raises(RuleError, match="port"):
        parse_ports("70000", {})
    with pytest.raises(RuleError, match="undefined variable"):
        parse_ports("$NOPE", {})


def test_bidirectional() -> None:
    assert rule("sid:1;", "alert tcp 192.0.2.1 any <> any 80").bidirectional


def test_content_modifiers() -> None:
    r = rule('content:"A|42 43|\\;D"; nocase; offset:1; depth:10; content:!"x"; distance:-2; within:5; '
             'content:"end"; endswith; fast_pattern; content:"GET"; startswith; sid:1;')  # fmt: skip
    c0, c1, c2, c3 = r.buffer("payload")
    assert isinstance(c0, Content) and c0.pattern == b"ABC;D" and c0.needle == b"abc;d" and c0.nocase
    assert (c0.offset, c0.depth) == (1, 10)
    assert isinstance(c1, Content) and c1.negated and (c1.distance, c1.within) == (-2, 5) and c1.relative
    assert isinstance(c2, Content) and c2.endswith and c2.fast_pattern
    assert isinstance(c3, Content) and c3.startswith


def test_pcre_flags_and_buffers() -> None:
    r = rule('pcre:"/a.b/smix"; pcre:!"/x/R"; pcre:"/^\\/adm/U"; pcre:"/ua/V"; sid:1;')
    p0, p1 = r.buffer("payload")
    assert isinstance(p0, Pcre) and p0.regex.flags & 0x10 and p0.regex.search(b"A\nB")
    assert isinstance(p1, Pcre) and p1.negated and p1.relative
    assert isinstance(r.buffer("http.uri")[0], Pcre)
    assert isinstance(r.buffer("http.user_agent")[0], Pcre)


def test_sticky_and_legacy_buffers() -> None:
    r = rule('http.method; content:"GET"; http.uri; content:"/a"; http.host; content:"x.example"; '
             'http.user_agent; content:"curl"; bsize:<10; http.header; content:"Accept"; pkt_data; content:"p"; '
             'content:"legacy"; http_uri; sid:1;', "alert http any any -> any any")  # fmt: skip
    names = [n for n, _ in r.buffers]
    assert names == ["http.method", "http.uri", "http.host", "http.user_agent", "http.header", "payload"]
    assert [m.pattern for m in r.buffer("http.uri") if isinstance(m, Content)] == [b"/a", b"legacy"]
    assert isinstance(r.buffer("http.user_agent")[1], Bsize)
    for kw, buf in (("dns.query", "dns.query"), ("dns_query", "dns.query"), ("tls.sni", "tls.sni"),
                    ("ja3.hash", "ja3.hash"), ("ja3s.hash", "ja3s.hash"), ("ja4.hash", "ja4.hash")):  # fmt: skip
        assert rule(f'{kw}; content:"a"; sid:1;').buffer(buf)


def test_packet_keywords() -> None:
    r = rule("flow:to_server,established; flags:S+,CE; dsize:>10; ttl:<65; ip_proto:!udp; sid:1;")
    assert r.flow is not None and r.flow.to_server is True and r.flow.established is True
    assert r.flags is not None and r.flags.test(0x12) and not r.flags.test(0x10) and r.flags.test(0x02 | 0x40)
    assert r.dsize is not None and r.dsize.test(11) and not r.dsize.test(10)
    assert r.ttl is not None and r.ttl.test(64) and not r.ttl.test(65)
    assert r.ip_proto is not None and r.ip_proto.test(6) and not r.ip_proto.test(17)
    ic = rule("itype:7<>20; icode:0; icmp_id:5; icmp_seq:!3; sid:1;", "alert icmp any any -> any any")
    assert ic.itype is not None and ic.itype.test(8) and not ic.itype.test(7) and not ic.itype.test(20)
    assert ic.icmp_seq is not None and ic.icmp_seq.test(4) and not ic.icmp_seq.test(3)
    assert rule("flow:to_client,not_established,stateless; sid:1;").flow.established is False  # type: ignore[union-attr]


def test_flags_modes() -> None:
    exact = rule("flags:SA; sid:1;").flags
    assert exact is not None and exact.test(0x12) and not exact.test(0x1A)
    anyof = rule("flags:*SR; sid:1;").flags
    assert anyof is not None and anyof.test(0x04) and not anyof.test(0x10)
    notf = rule("flags:!R; sid:1;").flags
    assert notf is not None and notf.test(0x10) and not notf.test(0x14)
    zero = rule("flags:0; sid:1;").flags
    assert zero is not None and zero.test(0) and not zero.test(0x02)


def test_threshold_detection_filter_flowbits() -> None:
    r = rule("threshold:type both, track by_dst, count 3, seconds 60; detection_filter:track by_src, count 2, "
             "seconds 10; flowbits:set,a; flowbits:isset,b|c; flowbits:noalert; sid:1;")  # fmt: skip
    assert r.threshold is not None and (r.threshold.kind, r.threshold.track, r.threshold.count) == ("both", "by_dst", 3)
    assert r.detection_filter is not None and r.detection_filter.kind == "detection_filter"
    assert [(f.op, f.names, f.any_of) for f in r.flowbits] == [("set", ("a",), False), ("isset", ("b", "c"), True)]
    assert r.noalert


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ('alert tcp any any -> any any (content:"a"; ipopts:rr; sid:5;)', "ipopts"),
        ('alert smtp any any -> any any (content:"a"; sid:5;)', "protocol:smtp"),
        ('alert tcp any any -> any any (pcre:"/a/P"; sid:5;)', "pcre/P"),
        ('alert tcp any any -> any any (pcre:"/a/G"; sid:5;)', "pcre/G"),
        ('alert tcp any any -> any any (pcre:"/a\\Kb/"; sid:5;)', "pcre"),
        ("alert tcp any any -> any any (flow:only_stream; sid:5;)", "flow:only_stream"),
        ('alert tcp any any -> any any (content:"ab"; depth:1; sid:5;)', "depth"),
        ('alert tcp any any -> any any (content:"ab"; offset:1; distance:1; sid:5;)', "content"),
        ("alert tcp any any -> any any (nocase; sid:5;)", "nocase"),
        ('alert tcp any any -> any any (content:"|4|"; sid:5;)', "content"),
        ("alert tcp any any -> any any (threshold:type x, track by_src, count 1, seconds 1; sid:5;)", "threshold"),
        ("alert tcp any any -> any any (classtype:nope; sid:5;)", "classtype"),
        ('alert tcp any any -> any any (msg:"x";)', "sid"),
        ("alert tcp any any -> $NOPE any (sid:5;)", "address"),
        ('alert tcp any any -> any any (sid:5; tls.sni; content:"a"; ja3s.hash; content:"b";)', "buffers"),
        ("alert tcp any any -> any any (itype:8; sid:5;)", "itype"),
        ("alert tcp any any any any (sid:5;)", "header"),
        ('alert tcp any any -> any any (content:"a; sid:5;)', "options"),
    ],
)
def test_errors_name_the_keyword(text: str, keyword: str) -> None:
    rs = load_text(text + "\n", V, file="bad.rules")
    assert rs.loaded == 0
    (s,) = rs.skipped
    assert (s.file, s.line, s.keyword) == ("bad.rules", 1, keyword)
    assert s.sid == (5 if "sid:5" in text else None)
    assert "bad.rules:1: sid" in str(s)


def test_bad_rule_never_stops_the_others(tmp_path: object) -> None:
    text = ("# comment\n\nalert tcp any any -> any any (content:\"a\"; sid:1;)\n"
            "alert tcp any any -> any any (bogus_kw; sid:2;)\n"
            "alert tcp any any -> any any (content:\"b\"; \\\n  sid:3;)\n"
            "alert tcp any any -> any any (content:\"c\"; sid:1;)\n")  # fmt: skip
    rs = load_text(text, V, file="f.rules")
    assert [r.sid for r in rs.rules] == [1, 3]
    assert [(s.line, s.sid, s.keyword) for s in rs.skipped] == [(4, 2, "bogus_kw"), (7, 1, "sid")]
    assert rs.rules[1].line == 5


def test_load_rules_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "a.rules"
    f.write_text('alert tcp $HOME_NET any -> any any (content:"x"; sid:9;)\n')
    rs = load_rules([str(f)], {"HOME_NET": "192.0.2.0/24"})
    assert rs.loaded == 1 and rs.rules[0].file == str(f)
    assert rs.rules[0].src.contains(ip("192.0.2.1")) and not rs.rules[0].src.contains(ip("198.51.100.1"))
    with pytest.raises(RuleError, match="file"):
        load_rules([str(tmp_path / "missing.rules")], {})


def test_split_options_quotes_and_escapes() -> None:
    assert split_options('msg:"a;b\\"c"; content:"x\\;y"; nocase;') == [
        ("msg", '"a;b\\"c"'), ("content", '"x\\;y"'), ("nocase", None)]  # fmt: skip


def test_home_net_without_brackets() -> None:
    r = parse_rule(
        "alert tcp $HOME_NET any -> $EXTERNAL_NET any (sid:1;)",
        rule_variables({"HOME_NET": "192.0.2.0/24, 2001:db8::/32"}),
    )
    assert r.src.contains(ip("2001:db8::1")) and r.src.contains(ip("192.0.2.1"))
    assert not r.dst.contains(ip("192.0.2.1")) and r.dst.contains(ip("203.0.113.1"))


def test_http_host_content_must_be_lower_case() -> None:
    rs = load_text('alert http any any -> any any (http.host; content:"Example.org"; sid:1;)\n', V, file="h.rules")
    assert [(s.keyword, s.sid) for s in rs.skipped] == [("http.host", 1)]
    ok = load_text('alert http any any -> any any (http.host; content:"Example.org"; nocase; sid:1;)\n', V)
    assert ok.loaded == 1


def test_et_open_legacy_spellings() -> None:
    r = parse_rule(
        'alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"ET x"; flow: to_server,established; '
        'uricontent:"/tbrequest"; nocase; uricontent:"&q="; content:"User-Agent|3a| x"; http_header; '
        'fast_pattern:12,5; content:"y"; fast_pattern:only; metadata: former_category ADWARE_PUP; sid:2003610; rev:4;)',
        V,
    )
    assert [m.pattern for m in r.buffer("http.uri") if isinstance(m, Content)] == [b"/tbrequest", b"&q="]
    hdr = r.buffer("http.header")[0]
    assert isinstance(hdr, Content) and hdr.fast_pattern
    assert r.dport.contains(80) and not r.dport.contains(81)


@pytest.mark.parametrize(
    ("expr", "yes", "no"),
    [
        ("19", [19], [18, 20]),
        ("=0x13", [19], [20]),
        ("!0x14", [19, 21], [20]),
        ("!=20", [19], [20]),
        (">=21", [21, 22], [20]),
        ("<=22", [22], [23]),
        ("19-22", [20, 21], [19, 22]),
        ("19<>22", [20, 21], [19, 22]),
        ("!19-22", [19, 22, 0], [20, 21]),
        ("&0xc0=0x80", [0x80, 0x81, 0xBF], [0xC0, 0x40]),
        ("!&0xc0=0x80", [0xC0, 0x40], [0x80]),
        ("1kb", [1024], [1000]),
    ],
)
def test_integer_syntax(expr: str, yes: list[int], no: list[int]) -> None:
    from signatures.rules.options import parse_num

    check = parse_num(expr, "bsize")
    assert all(check.test(v) for v in yes) and not any(check.test(v) for v in no)


@pytest.mark.parametrize("expr", ["", "x", "<5-9", "9-5", "4-5", "&0x0f=0x10", "70000"])
def test_integer_syntax_errors(expr: str) -> None:
    from signatures.rules.options import parse_num

    with pytest.raises(RuleError, match="dsize"):
        parse_num(expr, "dsize", 0, 65535)
