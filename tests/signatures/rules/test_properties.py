"""Property: any rule text either parses or raises RuleError; any rule file loads (skipping bad rules)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from signatures.rules import RuleError, load_text, parse_rule
from signatures.rules.parser import rule_variables

from .frames import pkt_udp

V = rule_variables({})
KEYWORDS = ["content", "nocase", "offset", "depth", "distance", "within", "pcre", "flow", "flags", "dsize", "ttl",
            "itype", "icode", "icmp_id", "icmp_seq", "ip_proto", "threshold", "detection_filter", "flowbits",
            "http.uri", "http_uri", "dns.query", "tls.sni", "bsize", "startswith", "endswith", "fast_pattern",
            "msg", "sid", "rev", "classtype", "priority", "metadata", "reference", "ja3.hash", "bogus"]  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.from_regex(r'!?"[ -~]{0,10}"', fullmatch=True),
    st.from_regex(r"[<>!]?-?[0-9]{1,6}(<>[0-9]{1,4})?", fullmatch=True),
    st.from_regex(r'"/[ -~]{0,10}/[a-zA-Z]{0,3}"', fullmatch=True),
)
OPTION = st.tuples(st.sampled_from(KEYWORDS), VALUES).map(lambda kv: kv[0] + ("" if kv[1] is None else ":" + kv[1]))
HEADER_PART = st.one_of(st.sampled_from(["any", "$HOME_NET", "!$HOME_NET", "[10.0.0.0/8,!10.1.0.0/16]", "80",
                                         "1024:", "[1,2,!3]", "!", "[", "$X"]), st.text(max_size=6))  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["alert", "pass", "drop", "log", ""]),
    st.sampled_from(["tcp", "udp", "icmp", "ip", "http", "dns", "tls", "smtp", "x"]),
    HEADER_PART,
    HEADER_PART,
    st.sampled_from(["->", "<>", "<-"]),
    st.lists(OPTION, max_size=8),
)
def test_structured_rules_parse_or_rule_error(action: str, proto: str, a: str, p: str, d: str, opts: list[str]) -> None:
    text = f"{action} {proto} {a} {p} {d} any any ({'; '.join(opts)}; sid:1;)"
    try:
        rule = parse_rule(text, V)
    except RuleError as exc:
        assert exc.keyword
        return
    # a rule that parsed must also be usable by the engine
    from signatures.rules import RuleEngine
    from signatures.rules.parser import RuleSet

    RuleEngine(RuleSet([rule])).on_packet(pkt_udp(b"payload"), None, 0)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_parses_or_rule_error(text: str) -> None:
    with contextlib.suppress(RuleError):
        parse_rule(text, V)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=10))
def test_files_always_load(lines: list[str]) -> None:
    text = "\n".join(lines)
    rs = load_text(text, V, file="p.rules")
    assert rs.loaded + len(rs.skipped) <= text.count("\n") + 1
    for s in rs.skipped:
        assert s.file == "p.rules" and s.line >= 1 and s.keyword


CONTENT_OPTS = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=4),
        st.booleans(),
        st.booleans(),
        st.sampled_from(
            [
                "",
                "offset:1;",
                "depth:6;",
                "distance:-1;",
                "within:5;",
                "distance:0; within:8;",
                "startswith;",
                "endswith;",
            ]
        ),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(CONTENT_OPTS, st.binary(max_size=64))
def test_matching_returns_a_bool(opts: list[tuple[bytes, bool, bool, str]], data: bytes) -> None:
    from signatures.rules.matching import BufferProgram

    parts = []
    for pat, neg, nocase, mod in opts:
        hexpat = " ".join(f"{b:02x}" for b in pat)
        parts.append(f'content:{"!" if neg else ""}"|{hexpat}|"; {"nocase; " if nocase else ""}{mod}')
    try:
        rule = parse_rule(f"alert tcp any any -> any any ({' '.join(parts)} sid:1;)", V)
    except RuleError:
        return
    prog = BufferProgram(rule.buffer("payload"))
    got = prog.match(data)
    assert got in (True, False)
    # a buffer holding every positive pattern back to back, with no options, is the trivial witness
    if not any(neg or mod for _, neg, _, mod in opts):
        assert prog.match(b"".join(p for p, _, _, _ in opts)) is True


SAMPLE = (
    'alert tcp any any -> any any (flow:established,to_server; content:"GET"; startswith; '
    'content:"|0d 0a|"; distance:0; pcre:"/^[A-Z]+ \\/[^ ]*(passwd|\\.exe)/"; sid:1;)\n'
    'alert tcp any any -> any any (content:"a"; content:!"b"; within:3; flowbits:set,x; sid:2;)\n'
    'alert tcp any any -> any any (flowbits:isset,x; content:"c"; nocase; endswith; sid:3;)\n'
    "alert tcp any any -> any any (dsize:>3; flags:PA+; "
    "threshold:type both, track by_flow, count 2, seconds 5; sid:4;)\n"
    'alert ip any any -> any any (content:"|00 00|"; offset:2; depth:4; sid:5;)\n'
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=48)), max_size=12))
def test_engine_on_random_streams(segments: list[tuple[int, bytes]]) -> None:
    from signatures.rules import RuleEngine

    from .frames import Conversation

    e = RuleEngine(load_text(SAMPLE, V))
    c = Conversation(depth=128)
    for d, data in segments:
        for alert in e.on_packet(*c.send(d, data)):
            assert alert.sid in (1, 2, 3, 4, 5) and alert.to_event()["type"] == "alert"
