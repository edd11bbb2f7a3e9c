"""Fuzz invariant (after h11's fuzz/afl-server.py): every parser returns a value or raises
DecodeError, never anything else, on random bytes and on mutations of valid messages. The
returned value's `fields()` must also be JSON-ready.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.errors import DecodeError
from capture.protocols.dhcp import parse_dhcp
from capture.protocols.dhcp6 import parse_dhcp6
from capture.protocols.dns import parse_dns, parse_dns_tcp
from capture.protocols.http import parse_http_request, parse_http_response
from capture.protocols.nbns import parse_nbns
from capture.protocols.ssdp import parse_ssdp
from tests.capture.protocols import test_dhcp, test_dhcp6, test_dns, test_http, test_nbns, test_ssdp

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mdns(b: bytes) -> object:
    return parse_dns(b, "mdns")


PARSERS: dict[str, tuple[Callable[[bytes], object], list[bytes]]] = {
    "dhcp": (
        parse_dhcp,
        [test_dhcp.DISCOVER, test_dhcp.bootp(b"\x34\x01\x03\xff", file=b"\x0c\x01a" * 42 + b"\x00\x00")],
    ),
    "dhcp6": (parse_dhcp6, [test_dhcp6.SOLICIT, test_dhcp6.relay(test_dhcp6.SOLICIT)]),
    "dns": (parse_dns, [test_dns.QUERY, test_dns.RESPONSE]),
    "mdns": (_mdns, [test_dns.RESPONSE]),
    "dns_tcp": (parse_dns_tcp, [len(test_dns.RESPONSE).to_bytes(2, "big") + test_dns.RESPONSE]),
    "nbns": (parse_nbns, [test_nbns.QUERY]),
    "ssdp": (parse_ssdp, [test_ssdp.M_SEARCH, test_ssdp.NOTIFY, test_ssdp.RESPONSE]),
    "http_request": (parse_http_request, [test_http.REQUEST]),
    "http_response": (parse_http_response, [b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\n\r\n"]),
}


def _check(name: str, payload: bytes) -> None:
    parse, _ = PARSERS[name]
    try:
        result = parse(payload)
    except DecodeError as exc:
        assert exc.reason.split(".")[0] in ("dhcp", "dhcp6", "dns", "nbns", "ssdp", "http"), exc.reason
        return
    fields = getattr(result, "fields", None)
    if fields is not None:
        json.dumps(fields())


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(PARSERS)))
    buf = bytearray(draw(st.sampled_from(PARSERS[name][1])))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = draw(st.sampled_from([0x00, 0x3F, 0x40, 0xC0, 0xFF, 0x0D, 0x0A, 0x20, 0x3A]))
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and buf:
            del buf[pos : pos + draw(st.integers(1, 4))]
    return name, bytes(buf)


@SETTINGS
@given(name=st.sampled_from(sorted(PARSERS)), payload=st.binary(max_size=700))
def test_random_bytes_give_a_value_or_decode_error(name: str, payload: bytes) -> None:
    _check(name, payload)


@SETTINGS
@given(case=mutated())
def test_mutated_messages_give_a_value_or_decode_error(case: tuple[str, bytes]) -> None:
    _check(*case)


@SETTINGS
@given(name=st.sampled_from(["dhcp", "dhcp6", "dns", "nbns"]), payload=st.binary(max_size=400))
def test_random_bytes_after_a_valid_header(name: str, payload: bytes) -> None:
    """Random option/record areas behind a plausible fixed header reach the deep code paths."""
    prefix = {
        "dhcp": test_dhcp.DISCOVER[:240],
        "dhcp6": b"\x01\x00\x00\x01",
        "dns": b"\x00\x01\x81\x80\x00\x01\x00\x02\x00\x00\x00\x01",
        "nbns": test_nbns.QUERY[: 12 + 34],
    }[name]
    _check(name, prefix + payload)
