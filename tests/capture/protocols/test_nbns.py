"""NBNS: golden bytes built field by field (RFC 1002 layouts) and bad name encodings."""

from __future__ import annotations

import struct

import pytest

from capture.errors import DecodeError
from capture.protocols.nbns import parse_nbns


def encode(name: bytes, suffix: int, pad: bytes = b" ") -> bytes:
    """RFC 1001 §14.1 first-level encoding, written independently of the parser."""
    raw = name.ljust(15, pad) + bytes([suffix])
    return b"\x20" + b"".join(bytes([0x41 + (b >> 4), 0x41 + (b & 0xF)]) for b in raw)


def test_encoding_helper_matches_rfc1001_example() -> None:
    # RFC 1001 §14.1: "FRED" padded with spaces, suffix 0x20.
    assert encode(b"FRED", 0x20)[1:] == b"EGFCEFEECACACACACACACACACACACACA"


QUERY = b"".join(
    [
        b"\x82\x28",  # NAME_TRN_ID
        b"\x01\x10",  # flags: opcode 0 query, RD, B (broadcast)
        b"\x00\x01\x00\x00\x00\x00\x00\x00",  # QDCOUNT 1
        encode(b"WORKSTATION1", 0x00) + b"\x00",  # QUESTION_NAME, no scope
        b"\x00\x20",  # NB
        b"\x00\x01",  # IN
    ]
)


def test_golden_name_query() -> None:
    m = parse_nbns(QUERY)
    assert m.fields() == {"name": "WORKSTATION1", "suffix": 0, "response": False, "opcode": 0}
    assert m.id == 0x8228 and m.scope == ""


def test_golden_registration_with_scope_and_pointer() -> None:
    reg = b"".join(
        [
            b"\x00\x01",  # NAME_TRN_ID
            b"\x29\x10",  # flags: opcode 5 registration, RD, B
            b"\x00\x01\x00\x00\x00\x00\x00\x01",  # QD 1, AR 1
            encode(b"WORKGROUP", 0x1D) + b"\x07example\x00",  # name with scope "example"
            b"\x00\x20\x00\x01",  # NB IN
            b"\xc0\x0c",  # RR_NAME: pointer to the question name
            b"\x00\x20\x00\x01\x00\x04\x93\xe0\x00\x06",  # NB IN, TTL, RDLENGTH 6
            b"\x00\x00\xc0\x00\x02\x0a",  # NB_FLAGS, NB_ADDRESS 192.0.2.10
        ]
    )
    m = parse_nbns(reg)
    assert (m.name, m.suffix, m.opcode, m.response, m.scope) == ("WORKGROUP", 0x1D, 5, False, "example")


def test_golden_positive_response_uses_answer_name() -> None:
    resp = b"\x82\x28\x85\x00\x00\x00\x00\x01\x00\x00\x00\x00" + encode(b"PRINTER", 0x20) + b"\x00"
    resp += b"\x00\x20\x00\x01\x00\x00\x00\x00\x00\x06\x00\x00\xc6\x33\x64\x05"
    m = parse_nbns(resp)
    assert (m.name, m.suffix, m.response) == ("PRINTER", 0x20, True)


def test_wildcard_name_padded_with_nuls() -> None:
    m = parse_nbns(
        b"\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + encode(b"*", 0, b"\x00") + b"\x00\x00\x21\x00\x01"
    )
    assert (m.name, m.suffix) == ("*", 0)


@pytest.mark.parametrize(
    "label",
    [
        b"\x20" + b"Q" * 32,  # characters outside 'A'..'P'
        b"\x20" + b"a" * 32,  # lower case is not in the alphabet either
        b"\x10" + b"A" * 16,  # 16 characters instead of 32
        b"\xc0\x0c",  # a pointer where the encoded name must be
    ],
)
def test_nbns_bad_encoding(label: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        parse_nbns(b"\x00\x01\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00" + label + b"\x00\x00\x20\x00\x01")
    assert err.value.reason == "nbns.bad_name" and err.value.offset == 12


def test_nbns_label_past_the_end() -> None:
    with pytest.raises(DecodeError) as err:
        parse_nbns(b"\x00\x01\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00\x20EGFC")
    assert err.value.reason == "nbns.bad_name"


def test_nbns_no_name_at_all() -> None:
    with pytest.raises(DecodeError) as err:
        parse_nbns(struct.pack("!6H", 1, 0, 0, 0, 0, 0))
    assert err.value.reason == "nbns.no_name"


def test_nbns_scope_compression_loop() -> None:
    with pytest.raises(DecodeError) as err:
        parse_nbns(b"\x00\x01\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00" + encode(b"X", 0) + b"\xc0\x0c")
    assert err.value.reason == "nbns.compression_loop"
