"""The agent (capture/community_id.py, packed addresses) and the collector (telemetry/community.py, text
addresses) compute Community IDs apart, since neither room may import the other. The collector restores
the IDs agents leave off the wire, so both must give the same answer for every flow."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture.community_id import community_id as agent_id
from telemetry.community import community_id as collector_id

V4 = ("192.0.2.10", "198.51.100.7")
V6 = ("2001:db8::10", "2001:db8::7")


def _both(proto: int, src: str, dst: str, sport: int, dport: int) -> tuple[str, str]:
    a = agent_id(ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, proto, sport, dport)
    return a, collector_id(proto, src, sport, dst, dport)


@pytest.mark.parametrize(("proto", "addrs"), [(1, V4), (58, V6)])
def test_every_icmp_type_hashes_alike_in_both_rooms(proto: int, addrs: tuple[str, str]) -> None:
    differ = []
    for itype in range(256):
        for src, dst in (addrs, addrs[::-1]):
            a, c = _both(proto, src, dst, itype, 0)
            if a != c:
                differ.append((itype, src, a, c))
    assert not differ, differ


def test_icmp6_node_information_query_and_reply_are_one_flow() -> None:
    query, _ = _both(58, V6[0], V6[1], 139, 0)
    reply, _ = _both(58, V6[1], V6[0], 140, 0)
    assert query == reply


@given(
    proto=st.sampled_from([6, 17, 132, 47]),
    v6=st.booleans(),
    a=st.integers(0, 255),
    b=st.integers(0, 255),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_ported_and_portless_protocols_hash_alike(proto: int, v6: bool, a: int, b: int, sport: int, dport: int) -> None:
    src, dst = (f"2001:db8::{a:x}", f"2001:db8::{b:x}") if v6 else (f"192.0.2.{a}", f"203.0.113.{b}")
    ports = (sport, dport) if proto != 47 else (0, 0)
    agent, collector = _both(proto, src, dst, *ports)
    assert agent == collector
