"""DHCPv6: golden bytes built field by field, relay unwrapping, and hostile packets."""

from __future__ import annotations

import struct

import pytest

from capture.errors import DecodeError
from capture.protocols.dhcp6 import HOP_COUNT_LIMIT, parse_dhcp6

MAC = bytes.fromhex("00005e005301")  # RFC 7042 documentation MAC


def opt(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


SOLICIT = b"".join(
    [
        b"\x01",  # msg-type SOLICIT
        b"\xab\xcd\xef",  # transaction-id
        opt(1, b"\x00\x01" + b"\x00\x01" + b"\x2a\x2b\x2c\x2d" + MAC),  # client id: DUID-LLT, hw 1, time
        opt(6, b"\x00\x17\x00\x18\x00\x27"),  # ORO: 23, 24, 39
        opt(8, b"\x00\x00"),  # elapsed time
        opt(16, struct.pack("!I", 311) + b"\x00\x08MSFT 5.0"),  # vendor class: Microsoft, 1 item
        opt(39, b"\x01" + b"\x06laptop\x07example\x00"),  # client FQDN: flags S, wire-format name
    ]
)


def test_golden_solicit_fields() -> None:
    m = parse_dhcp6(SOLICIT)
    assert m.fields() == {
        "msg_type": 1,
        "msg_type_name": "solicit",
        "duid": "000100012a2b2c2d" + MAC.hex(),
        "duid_type": 1,
        "duid_mac": "00:00:5e:00:53:01",
        "oro": [23, 24, 39],
        "vendor_class": "MSFT 5.0",
        "enterprise": 311,
        "fqdn": "laptop.example",
        "options": [1, 6, 8, 16, 39],
        "addresses": [],
    }
    assert m.transaction_id == 0xABCDEF and m.relays == ()


@pytest.mark.parametrize(
    ("duid", "kind", "mac"),
    [
        (b"\x00\x03\x00\x01" + MAC, 3, "00:00:5e:00:53:01"),  # DUID-LL
        (b"\x00\x02" + struct.pack("!I", 9) + b"\x01\x02\x03", 2, None),  # DUID-EN (Cisco)
        (b"\x00\x04" + bytes(range(16)), 4, None),  # DUID-UUID (RFC 6355)
    ],
)
def test_duid_types(duid: bytes, kind: int, mac: str | None) -> None:
    m = parse_dhcp6(b"\x0b\x00\x00\x01" + opt(1, duid))  # INFORMATION-REQUEST
    assert (m.duid_type, m.duid_mac, m.msg_type_name) == (kind, mac, "information-request")


def relay(inner: bytes, kind: int = 12, hops: int = 0) -> bytes:
    return b"".join(
        [
            bytes([kind, hops]),  # msg-type RELAY-FORW/REPL, hop-count
            bytes.fromhex("20010db8000000000000000000000001"),  # link-address 2001:db8::1
            bytes.fromhex("fe800000000000000000000000000001"),  # peer-address fe80::1
            opt(18, b"eth0"),  # interface-id
            opt(9, inner),  # relay message
        ]
    )


def test_relay_forw_is_unwrapped() -> None:
    m = parse_dhcp6(relay(relay(SOLICIT, hops=0), hops=1))
    assert m.msg_type == 1 and m.relays == (12, 12) and m.duid_mac == "00:00:5e:00:53:01"


def test_relay_nested_up_to_the_hop_count_limit() -> None:
    msg = SOLICIT
    for hop in range(HOP_COUNT_LIMIT):
        msg = relay(msg, hops=hop)
    assert len(parse_dhcp6(msg).relays) == HOP_COUNT_LIMIT


def test_relay_nesting_1000_deep() -> None:
    msg = SOLICIT
    for _ in range(1000):
        msg = b"\x0c\x00" + bytes(32) + opt(9, msg)  # 38 bytes a level: 1000 levels fit in 64 KiB
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(msg)
    assert err.value.reason == "dhcp6.relay_too_deep"


def test_relay_without_relay_message() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(b"\x0d\x00" + bytes(32) + opt(18, b"x"))
    assert err.value.reason == "dhcp6.no_relay_message"


def test_option_length_overflowing() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(b"\x01\x00\x00\x01" + struct.pack("!HH", 1, 400) + b"\x00\x01")
    assert (err.value.reason, err.value.offset) == ("dhcp6.option_overflow", 4)


def test_vendor_class_item_overflowing() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(b"\x01\x00\x00\x01" + opt(16, struct.pack("!I", 311) + b"\x00\x30abc"))
    assert err.value.reason == "dhcp6.bad_vendor_class"


def test_option_flood_is_capped() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(b"\x01\x00\x00\x01" + opt(8, b"\x00\x00") * 300)
    assert err.value.reason == "dhcp6.too_many_options"


def test_truncated_header() -> None:
    with pytest.raises(DecodeError) as err:
        parse_dhcp6(b"\x01\x00")
    assert err.value.reason == "dhcp6.truncated"
