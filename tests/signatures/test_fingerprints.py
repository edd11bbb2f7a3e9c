"""JA3 / JA3S / JA4 / HASSH on hand-built hellos: the specifications' own examples and edge rules."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.protocols.ssh import parse_ssh_kexinit
from capture.protocols.tls import ClientHello, ServerHello, parse_client_hello
from signatures.grease import GREASE, is_grease
from signatures.hassh import hassh, hassh_server
from signatures.ja3 import ja3, ja3s
from signatures.ja4 import ja4
from tests.capture.protocols import ssh_golden, tls_golden


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _golden() -> ClientHello:
    hello = parse_client_hello(tls_golden.CLIENT_HELLO_RECORD)
    assert hello is not None
    return hello


def test_grease_values_are_rfc_8701() -> None:
    assert len(GREASE) == 16 and is_grease(0x0A0A) and is_grease(0xFAFA) and not is_grease(0x0A1A)


def test_ja3_of_golden_excludes_grease() -> None:
    text, digest = ja3(_golden())
    assert text == "771,4865-4866-49195-255,0-23-10-11-13-16-43-51,29-23-24,0"
    assert digest == _md5(text)


def test_ja3s_of_golden_server_hello() -> None:
    server = ServerHello(0x0303, 0x0304, 0x1301, (0x2B, 0x33, 0x3A3A), ())
    assert ja3s(server) == ("771,4865,43-51", _md5("771,4865,43-51"))


def test_ja4_of_golden() -> None:
    fingerprint, raw = ja4(_golden())
    ciphers = "00ff,1301,1302,c02b"
    exts = "000a,000b,000d,0017,002b,0033"
    sigs = "0403,0804,0401,0503"
    assert fingerprint == f"t13d0408h2_{_sha12(ciphers)}_{_sha12(exts + '_' + sigs)}"
    assert raw == f"t13d0408h2_{ciphers}_{exts}_{sigs}"


def test_ja4_specification_example() -> None:
    """The worked example of FoxIO's JA4 specification (technical_details/JA4.md)."""
    ciphers = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014]
    ciphers += [0x009C, 0x009D, 0x002F, 0x0035]
    exts = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012]
    exts += [0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]
    sigs = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
    hello = ClientHello(
        0x0303, (0x0A0A, *ciphers), (0x0A0A, *exts), "example.com", ("h2", "http/1.1"), (), (), sigs, (0x0304, 0x0303)
    )
    fingerprint, raw = ja4(hello)
    assert fingerprint == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert raw == (
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
        "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
        "0403,0804,0401,0503,0805,0501,0806,0601"
    )
    # Without signature algorithms the string ends without an underscore (spec: 6d807ffa2a79).
    assert ja4(replace(hello, sig_algs=()))[0].endswith("_6d807ffa2a79")


@pytest.mark.parametrize(
    ("alpn", "expected"),
    [
        ((), "00"),
        (("",), "00"),
        (("h2",), "h2"),
        (("http/1.1",), "h1"),
        (("h",), "hh"),  # a single character is both first and last
        (("\xab",), "ab"),  # the specification's hex examples
        (("\xab\xcd",), "ad"),
        (("0\xab",), "3b"),
        (("01\xab\xcd",), "3d"),
        (("0\xab\xcd1",), "01"),
    ],
)
def test_ja4_alpn_characters(alpn: tuple[str, ...], expected: str) -> None:
    assert ja4(replace(_golden(), alpn=alpn))[0][8:10] == expected


@pytest.mark.parametrize(
    ("versions", "legacy", "quic", "expected"),
    [
        ((0x0A0A, 0x0303, 0x0304), 0x0303, False, "t13"),  # highest, GREASE ignored
        ((), 0x0301, False, "t10"),
        ((), 0x0300, False, "ts3"),
        ((), 0x0002, False, "ts2"),
        ((), 0x7F12, False, "t00"),
        ((0x0304,), 0x0303, True, "q13"),
    ],
)
def test_ja4_version_and_transport(versions: tuple[int, ...], legacy: int, quic: bool, expected: str) -> None:
    hello = replace(_golden(), supported_versions=versions, version=legacy, quic=quic)
    assert ja4(hello)[0][:3] == expected


def test_ja4_sni_counts_and_empty_lists() -> None:
    no_sni = replace(_golden(), extensions=(13, 43), sni=None)
    assert ja4(no_sni)[0][3] == "i"
    empty_sni = replace(_golden(), extensions=(0, 13), sni=None)  # extension present, no name
    assert ja4(empty_sni)[0][3] == "d"
    many = replace(_golden(), ciphers=tuple(range(1, 150)), extensions=tuple(range(100, 250)))
    assert ja4(many)[0][4:8] == "9999"
    bare = ClientHello(0x0303, (), (), None, (), (), (), (), ())
    assert ja4(bare) == ("t12i000000_000000000000_000000000000", "t12i000000__")


def test_hassh_of_golden_kexinit() -> None:
    stream = ssh_golden.kexinit()
    kex = parse_ssh_kexinit(stream, 0)
    assert kex is not None
    lists = ssh_golden.NAME_LISTS
    client = ";".join((lists[0], lists[2], lists[4], lists[6]))
    server = ";".join((lists[0], lists[3], lists[5], lists[7]))
    assert hassh(kex) == (client, _md5(client))
    assert hassh_server(kex) == (server, _md5(server))


_U16 = st.integers(0, 0xFFFF)
_JA4 = re.compile(r"^[tqd](13|12|11|10|s3|s2|d1|d2|d3|00)[di]\d{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$")
_JA3 = re.compile(r"^\d+,[\d-]*,[\d-]*,[\d-]*,[\d-]*$")


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        ClientHello,
        version=_U16,
        ciphers=st.lists(_U16, max_size=120).map(tuple),
        extensions=st.lists(_U16, max_size=120).map(tuple),
        sni=st.none() | st.text(max_size=20),
        alpn=st.lists(st.text(alphabet=st.characters(max_codepoint=255), max_size=10), max_size=3).map(tuple),
        groups=st.lists(_U16, max_size=10).map(tuple),
        ec_point_formats=st.lists(st.integers(0, 255), max_size=4).map(tuple),
        sig_algs=st.lists(_U16, max_size=10).map(tuple),
        supported_versions=st.lists(_U16, max_size=5).map(tuple),
        quic=st.booleans(),
    )
)
def test_fingerprints_are_well_formed_for_any_hello(hello: ClientHello) -> None:
    fingerprint, raw = ja4(hello)
    assert _JA4.match(fingerprint), fingerprint
    assert raw[:10] == fingerprint[:10]
    text, digest = ja3(hello)
    assert _JA3.match(text) and len(digest) == 32
    assert not any(str(g) in text.split(",")[1].split("-") for g in GREASE)


def test_ja4_of_sslv2_cipher_specs_keeps_every_digit_and_caches_only_16_bit_values() -> None:
    from signatures import ja4 as ja4_module

    hello = ClientHello(0x0301, (0x010080, 0x35, 0x2F), (), None, (), (), (), (), (), sslv2=True)
    _, raw = ja4(hello)
    assert raw.split("_")[1] == "002f,0035,10080"  # at least four digits, as for 16-bit values
    assert ja4(hello)[1] == raw  # the second time from the cache, same answer
    assert 0x35 in ja4_module._HEX4 and 0x010080 not in ja4_module._HEX4


def _changed(value: object) -> object:
    """A different value of the same kind, for each kind of ClientHello field."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value ^ 1
    if isinstance(value, tuple):
        return (*value, value[0] if value else 1)
    return (value or "") + "x"


def test_fingerprint_key_covers_every_field_but_the_sni_name() -> None:
    """The pipeline remembers JA3/JA4 by `fingerprint_key()`: a field left out of the key (a field added
    to ClientHello later, say) would hand one hello another's fingerprints. This fails when that happens."""
    from dataclasses import fields

    hello = _golden()
    key = hello.fingerprint_key()
    for f in fields(ClientHello):
        other = replace(hello, **{f.name: _changed(getattr(hello, f.name))})
        if f.name == "sni":
            assert other.fingerprint_key() == key
            assert (ja3(other), ja4(other)) == (ja3(hello), ja4(hello))  # only the key's fields matter
        else:
            assert other.fingerprint_key() != key, f.name


def test_server_hello_fingerprint_key_covers_every_field() -> None:
    from dataclasses import fields

    hello = ServerHello(0x0303, 0x0304, 0x1301, (43, 51), ("h2",))
    key = hello.fingerprint_key()
    for f in fields(ServerHello):
        assert replace(hello, **{f.name: _changed(getattr(hello, f.name))}).fingerprint_key() != key, f.name
