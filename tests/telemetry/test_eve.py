"""telemetry.eve unit checks: header fields, wire Structs, enrichment, and hostile observation fields."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.community import community_id
from telemetry.eve import FLOW_ID_MASK, EveConverter, EveError, flow_id, proto_name, timestamp, to_eve
from telemetry.schema import DeviceEvent, FlowEvent, ObservationEvent, OsGuess
from tests.telemetry import eve_reader


def test_timestamp_is_eve_shaped() -> None:
    assert timestamp(1588190299.7281332) == "2020-04-29T19:58:19.728133+0000"
    assert timestamp(0.9999996) == "1970-01-01T00:00:01.000000+0000"
    assert eve_reader.TIMESTAMP_RE.match(timestamp(1_700_000_000.5))


def test_flow_id_and_proto() -> None:
    cid = community_id("tcp", "192.0.2.1", 40000, "198.51.100.2", 443)
    assert flow_id(cid) == flow_id(cid) and 0 < flow_id(cid) <= FLOW_ID_MASK
    assert flow_id(cid) != flow_id(community_id("tcp", "192.0.2.1", 40001, "198.51.100.2", 443))
    assert flow_id(None, "192.0.2.1", "192.0.2.2") <= FLOW_ID_MASK
    assert [proto_name(p) for p in ("tcp", "udp", "icmp6", 47, "arp", "47")] == [
        "TCP",
        "UDP",
        "IPv6-ICMP",
        "47",
        None,
        "47",
    ]


def test_wire_flow_gets_its_community_id_back() -> None:
    wire = FlowEvent(
        ts_start=10.0,
        ts_end=12.5,
        proto="tcp",
        src="192.0.2.1",
        sport=40000,
        dst="198.51.100.2",
        dport=443,
        pkts_fwd=3,
        pkts_rev=2,
        bytes_fwd=300,
        bytes_rev=200,
        end_reason="fin",
        app="tls",
    )
    rec = to_eve(wire, host="agent-1")
    assert rec is not None
    assert rec["community_id"] == community_id("tcp", "192.0.2.1", 40000, "198.51.100.2", 443)
    assert rec["flow"] == {
        "pkts_toserver": 3,
        "pkts_toclient": 2,
        "bytes_toserver": 300,
        "bytes_toclient": 200,
        "start": "1970-01-01T00:00:10.000000+0000",
        "end": "1970-01-01T00:00:12.500000+0000",
        "age": 2,
        "state": "closed",
        "reason": "timeout",
        "alerted": False,
    }
    assert rec["app_proto"] == "tls" and rec["host"] == "agent-1" and rec["proto"] == "TCP"


def test_device_enrichment_follows_the_source_mac() -> None:
    conv = EveConverter(site="school-a")
    dev = DeviceEvent(
        mac="02:00:00:00:00:01",
        first_seen=1.0,
        last_seen=2.0,
        vendor="Example",
        device_type="printer",
        os=OsGuess("Linux"),
        confidence=0.8,
        ips=["192.0.2.7"],
    )
    obs = ObservationEvent(
        ts=3.0,
        kind="http",
        src_mac="02:00:00:00:00:01",
        src="192.0.2.7",
        dst="198.51.100.9",
        sport=5000,
        dport=80,
        fields={"proto": "tcp", "method": "GET", "host": "a.example", "uri": "/", "user_agent": "x", "version": "1.1"},
    )
    d = conv.convert(dev)
    h = conv.convert(obs)
    assert d is not None and h is not None
    assert d["event_type"] == "veille_device" and d["veille"]["device"]["type"] == "printer"
    assert h["veille"]["device"] == d["veille"]["device"] and h["veille"]["site"] == "school-a"
    assert h["http"] == {
        "hostname": "a.example",
        "url": "/",
        "http_user_agent": "x",
        "http_method": "GET",
        "protocol": "HTTP/1.1",
    }


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KINDS = ["dhcp", "dns", "http", "ssh", "tls_client", "tls_server", "tcp_syn", "arp"]
KEYS = [
    "msg_type",
    "params",
    "client_id",
    "answers",
    "queries",
    "qtype",
    "rcode",
    "supported_versions",
    "version",
    "banner",
    "role",
    "ja3",
    "hostname",
    "proto",
    "pkt",
    "selected_version",
    "alpn",
    "quic",
    "proto_name",
    "id",
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(KINDS), st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=8))
def test_hostile_observation_fields_give_a_record_or_eve_error(kind: str, fields: dict[str, Any]) -> None:
    try:
        event = msgspec.convert(
            {"ts": 1.0, "kind": kind, "src": "192.0.2.1", "dst": "192.0.2.2", "sport": 1, "dport": 2, "fields": fields},
            ObservationEvent,
        )
    except msgspec.ValidationError:
        return
    try:
        rec = EveConverter().convert(event)
    except EveError:
        return
    if rec is not None:
        json.dumps(rec)
