"""TLS ClientHello / ServerHello parsing: golden bytes, streaming, SSLv2, DTLS, hostile input."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.errors import DecodeError
from capture.protocols import tls
from capture.protocols.tls import (
    TLS_ENCRYPTED,
    TLS_MORE,
    TLS_NOT_RECORDS,
    looks_like_tls,
    parse_client_hello,
    parse_client_hello_handshake,
    parse_client_hellos,
    parse_dtls_client_hello,
    parse_server_hello,
    parse_server_hellos,
    records_until_encrypted,
)
from tests.capture.protocols import tls_golden as g

TLS_CLIENT_FIELDS = {
    "sni", "version", "supported_versions", "alpn", "ciphers", "extensions",
    "groups", "ec_point_formats", "sig_algs", "quic",
}  # fmt: skip
TLS_SERVER_FIELDS = {"version", "selected_version", "cipher", "extensions", "alpn"}


def test_golden_client_hello_field_by_field() -> None:
    hello = parse_client_hello(g.CLIENT_HELLO_RECORD)
    assert hello is not None
    assert hello.version == 0x0303
    assert hello.ciphers == g.CIPHERS  # GREASE kept in the raw list
    assert hello.extensions == g.EXTENSION_TYPES
    assert hello.sni == "example.com"
    assert hello.alpn == ("h2", "http/1.1")
    assert hello.groups == g.GROUPS
    assert hello.ec_point_formats == (0,)
    assert hello.sig_algs == g.SIG_ALGS
    assert hello.supported_versions == g.VERSIONS
    assert hello.quic is False
    fields = hello.fields()
    assert set(fields) == TLS_CLIENT_FIELDS
    assert fields["ciphers"] == list(g.CIPHERS) and fields["alpn"] == ["h2", "http/1.1"]


def test_golden_server_hello() -> None:
    hello = parse_server_hello(g.SERVER_HELLO_RECORD)
    assert hello is not None
    assert (hello.version, hello.selected_version, hello.cipher, hello.extensions) == (0x0303, 0x0304, 0x1301, (43, 51))
    assert set(hello.fields()) == TLS_SERVER_FIELDS


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_golden_client_hello_as_tshark_reads_it(tmp_path: Path) -> None:
    """Wireshark's dissector reads the same SNI, ciphers and JA3 string from the golden bytes."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from signatures.ja3 import ja3

    pcap = tmp_path / "hello.pcap"
    pkt = (
        Ether()
        / IP(src="192.0.2.1", dst="198.51.100.2")
        / TCP(sport=50000, dport=443, flags="PA", seq=1)
        / g.CLIENT_HELLO_RECORD
    )
    wrpcap(str(pcap), [pkt])
    fields = ["tls.handshake.extensions_server_name", "tls.handshake.ja3_full", "tls.handshake.ciphersuite"]
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    sni, ja3_full, suites = out.split("\t")
    hello = parse_client_hello(g.CLIENT_HELLO_RECORD)
    assert hello is not None
    assert sni == hello.sni
    assert ja3_full == ja3(hello)[0]
    assert [int(s, 16) for s in suites.split(",")] == list(hello.ciphers)


def test_client_hello_split_across_three_tcp_segments() -> None:
    data = g.CLIENT_HELLO_RECORD
    cuts = (3, 150)  # inside the record header, then inside the extensions
    for end in (*cuts, len(data) - 1):
        assert parse_client_hello(data[:end]) is None
    assert parse_client_hello(data) == parse_client_hello_handshake(g.CLIENT_HELLO_MSG)


@pytest.mark.parametrize("cut", [2, 4, 100, len(g.CLIENT_HELLO_MSG) - 1])
def test_client_hello_split_across_two_records(cut: int) -> None:
    data = g.records(g.CLIENT_HELLO_MSG, cut)
    expected = parse_client_hello_handshake(g.CLIENT_HELLO_MSG)
    assert parse_client_hello(data) == expected
    for end in range(len(data)):  # every prefix, records and segments cut anywhere
        assert parse_client_hello(data[:end]) is None


def test_hello_followed_by_more_data_is_read() -> None:
    assert parse_client_hello(g.CLIENT_HELLO_RECORD + b"\x14\x03\x03\x00\x01\x01") is not None


def test_empty_sni_and_alpn_extensions() -> None:
    data = g.client_hello(g.ext(0, b"") + g.ext(16, b""))
    hello = parse_client_hello(data)
    assert hello is not None
    assert (hello.sni, hello.alpn, hello.extensions) == (None, (), (0, 16))


def test_no_extensions_at_all() -> None:
    body = g.h("0301") + bytes(32) + g.h("00 0004 0005 000a 01 00")
    hello = parse_client_hello_handshake(b"\x01" + len(body).to_bytes(3, "big") + body)
    assert (hello.version, hello.ciphers, hello.extensions) == (0x0301, (5, 10), ())


def test_sslv2_compatible_client_hello() -> None:
    ciphers = g.h("010080 000035 00002f")  # SSL_CK_RC4_128_WITH_MD5, then two TLS suites
    body = g.h("01 0301") + g.h("0009 0000 0010") + ciphers + bytes(range(16))
    data = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    assert looks_like_tls(data)
    hello = parse_client_hello(data)
    assert hello is not None and hello.sslv2
    assert (hello.version, hello.ciphers) == (0x0301, (0x010080, 0x35, 0x2F))
    assert parse_client_hello(data[:-1]) is None


def test_server_alert_before_server_hello_is_skipped() -> None:
    data = g.h("15 0303 0002 0170") + g.SERVER_HELLO_RECORD  # warning unrecognized_name
    assert parse_server_hello(data) == parse_server_hello(g.SERVER_HELLO_RECORD)
    with pytest.raises(DecodeError) as err:
        parse_server_hello(g.h("15 0303 0002 0228") + g.SERVER_HELLO_RECORD)
    assert err.value.reason == "tls.alert"


def test_second_hellos_after_hello_retry_request() -> None:
    second = g.client_hello(g.ext(43, g.h("02 0304")))
    stream = g.CLIENT_HELLO_RECORD + g.h("14 0303 0001 01") + second + g.h("17 0303 0005") + bytes(5)
    hellos = parse_client_hellos(stream)
    assert len(hellos) == 2 and hellos[1].supported_versions == (0x0304,)
    servers = parse_server_hellos(g.SERVER_HELLO_RECORD + g.h("14 0303 0001 01") + g.SERVER_HELLO_RECORD)
    assert len(servers) == 2
    # TLS 1.2: a Finished encrypted after ChangeCipherSpec is not taken for a hello.
    assert len(parse_client_hellos(g.CLIENT_HELLO_RECORD + g.h("14 0303 0001 01 16 0303 0004 01000010"))) == 1


def test_tls_behind_http_connect() -> None:
    head = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    assert looks_like_tls(head)
    assert parse_client_hello(head[:20]) is None
    assert parse_client_hello(head + g.CLIENT_HELLO_RECORD) == parse_client_hello(g.CLIENT_HELLO_RECORD)
    reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert parse_server_hello(reply + g.SERVER_HELLO_RECORD) == parse_server_hello(g.SERVER_HELLO_RECORD)
    with pytest.raises(DecodeError) as err:
        parse_server_hello(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
    assert err.value.reason == "tls.tunnel_refused"


def test_draft_tls13_server_hello_layout() -> None:
    body = g.h("7f12") + bytes(32) + g.h("1301") + g.h("0006") + g.ext(0x28, g.h("0000"))
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    hello = parse_server_hello(g.records(msg, version=b"\x03\x01"))
    assert hello is not None and (hello.version, hello.cipher, hello.extensions) == (0x7F12, 0x1301, (0x28,))


def test_dtls_client_hello() -> None:
    body = g.h("fefd") + bytes(32) + g.h("00") + g.h("04 01020304") + g.h("0004 c02b 1301 0100")
    body += g.h("0004") + g.ext(0x17, b"")
    hs = b"\x01" + len(body).to_bytes(3, "big") + g.h("0000 000000") + len(body).to_bytes(3, "big") + body
    record = g.h("16 feff 0000 000000000000") + len(hs).to_bytes(2, "big") + hs
    hello = parse_dtls_client_hello(record)
    assert hello.dtls and (hello.version, hello.ciphers, hello.extensions) == (0xFEFD, (0xC02B, 0x1301), (0x17,))
    fragmented = record[:19] + b"\x00\x00\x10" + record[22:]
    with pytest.raises(DecodeError) as err:
        parse_dtls_client_hello(fragmented)
    assert err.value.reason == "tls.dtls_fragmented"


def _message(body: bytes) -> bytes:
    return g.records(b"\x01" + len(body).to_bytes(3, "big") + body)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (g.h("17 0303 0010") + bytes(16), "tls.not_handshake"),
        (g.h("16 0203 0010") + bytes(16), "tls.bad_record_version"),
        (g.h("16 0303 0000"), "tls.bad_record_length"),
        (g.h("16 0303 ffff"), "tls.bad_record_length"),
        (g.records(g.SERVER_HELLO_MSG), "tls.not_client_hello"),
        (g.records(b"\x01\xff\xff\xff" + bytes(10)), "tls.too_long"),
        # cipher_suites length runs past the handshake message
        (_message(g.h("0303") + bytes(32) + g.h("00 0100 0100")), "tls.bad_length"),
        # an extension whose length runs past the extension block
        (g.client_hello(g.h("0000 0010 000e")), "tls.bad_extension"),
        # SNI list length disagrees with the extension length
        (g.client_hello(g.ext(0, g.h("0020 00 0003") + b"a.b")), "tls.bad_extension"),
        # extensions block shorter than the message: 4 stray bytes after it
        (_message(g.h("0303") + bytes(32) + g.h("00 0002 1301 0100 0000 00000000")), "tls.bad_length"),
    ],
)
def test_hostile_hellos_raise_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        parse_client_hello(data)
    assert err.value.reason == reason


def test_record_claiming_more_than_the_buffer_waits() -> None:
    data = g.h("16 0303 4000") + g.CLIENT_HELLO_MSG  # record longer than what arrived
    assert parse_client_hello(data) is not None  # the message itself is complete
    assert parse_client_hello(g.h("16 0303 4000") + g.CLIENT_HELLO_MSG[:50]) is None


def test_ten_thousand_extensions_parse_in_linear_time() -> None:
    exts = b"".join(g.ext(0x1000 + i, b"") for i in range(10_000))
    data = g.client_hello(exts)
    started = time.perf_counter()
    hello = parse_client_hello(data)
    elapsed = time.perf_counter() - started
    assert hello is not None and len(hello.extensions) == 10_000
    assert elapsed < 1.0  # a generous bound: quadratic copying would take far longer
    # The uint16 extension-block length caps the count at 2^16 / 4; one more byte cannot be encoded.
    assert len(exts) < tls.MAX_CLIENT_HELLO_LEN


def test_looks_like_tls() -> None:
    assert looks_like_tls(g.CLIENT_HELLO_RECORD[:1])
    assert looks_like_tls(g.CLIENT_HELLO_RECORD)
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x16\x02")
    assert not looks_like_tls(b"")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_give_value_or_decode_error(data: bytes) -> None:
    for parse in (parse_client_hello, parse_server_hello, parse_client_hellos, parse_server_hellos):
        with contextlib.suppress(DecodeError):
            parse(data)
    with contextlib.suppress(DecodeError):
        parse_client_hello_handshake(data)
    with contextlib.suppress(DecodeError):
        parse_dtls_client_hello(data)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(g.CLIENT_HELLO_RECORD) - 1), st.integers(0, 255), st.integers(0, len(g.CLIENT_HELLO_RECORD)))
def test_mutated_golden_hello_gives_value_or_decode_error(pos: int, byte: int, cut: int) -> None:
    data = bytearray(g.CLIENT_HELLO_RECORD + g.SERVER_HELLO_RECORD)
    data[pos] = byte
    for blob in (bytes(data[:cut]), bytes(data)):
        for parse in (parse_client_hello, parse_client_hellos, parse_server_hello):
            with contextlib.suppress(DecodeError):
                parse(blob)


def test_records_until_encrypted_finds_the_switch_to_ciphertext() -> None:
    hello = bytes.fromhex("160303000401000000")  # a (tiny) handshake record
    ccs = bytes.fromhex("140303000101")
    app = bytes.fromhex("1703030002abcd")
    assert records_until_encrypted(hello, 0) == (9, TLS_MORE)
    assert records_until_encrypted(hello + ccs + app, 0) == (9, TLS_ENCRYPTED)
    assert records_until_encrypted(hello + app, 9) == (9, TLS_ENCRYPTED)
    # A record announced but not all here yet: the next header is past the bytes so far.
    assert records_until_encrypted(bytes.fromhex("1603030100") + b"\x01" * 10, 0) == (261, TLS_MORE)
    assert records_until_encrypted(hello[:4], 0) == (0, TLS_MORE)
    assert records_until_encrypted(b"GET / HTTP/1.1\r\n", 0) == (0, TLS_NOT_RECORDS)
    assert records_until_encrypted(bytes.fromhex("1602030000"), 0) == (0, TLS_NOT_RECORDS)


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=500))
def test_records_until_encrypted_any_bytes(data: bytes, off: int) -> None:
    end, outcome = records_until_encrypted(data, off)
    assert outcome in (TLS_MORE, TLS_ENCRYPTED, TLS_NOT_RECORDS)
    assert end >= off
    if outcome != TLS_MORE:
        assert end + 5 <= len(data)
