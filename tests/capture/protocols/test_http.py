"""HTTP heads: golden requests and responses, incremental input, and the h11/aiohttp limits."""

from __future__ import annotations

import pytest

from capture.errors import DecodeError
from capture.protocols.http import (
    MAX_HEAD,
    MAX_HEADERS,
    MAX_LINE,
    looks_like_http_request,
    parse_http_request,
    parse_http_response,
)

REQUEST = (
    b"GET /update/check?v=2 HTTP/1.1\r\n"  # request line
    b"Host: updates.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n"
    b"accept: */*\r\n"  # lower-case name kept as sent
    b"X-Empty:\r\n"
    b"Cookie: a=1\r\n"
    b"Cookie: b=2\r\n"
    b"\r\n"
    b"body bytes that are not part of the head"
)


def test_golden_request() -> None:
    req = parse_http_request(REQUEST)
    assert req is not None
    assert req.fields() == {
        "method": "GET",
        "host": "updates.example.com",
        "uri": "/update/check?v=2",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "version": "HTTP/1.1",
    }
    assert req.headers == (
        ("Host", "updates.example.com"),
        ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        ("accept", "*/*"),
        ("X-Empty", ""),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
    )
    assert req.raw_headers == REQUEST[REQUEST.index(b"\r\n") + 2 : REQUEST.index(b"\r\n\r\n") + 2]
    assert REQUEST[req.head_len :] == b"body bytes that are not part of the head"
    assert req.header("ACCEPT") == "*/*"


def test_request_without_headers_and_absent_fields_are_none() -> None:
    req = parse_http_request(b"GET / HTTP/1.0\r\n\r\n")
    assert req is not None and req.headers == () and req.raw_headers == b""
    assert (req.host, req.user_agent) == (None, None)


def test_incomplete_head_returns_none_at_every_split() -> None:
    head_len = REQUEST.index(b"\r\n\r\n") + 4
    for cut in range(1, head_len):
        assert parse_http_request(REQUEST[:cut]) is None, cut
    assert parse_http_request(REQUEST[:head_len]) is not None


def test_bare_lf_and_obsolete_line_folding() -> None:
    req = parse_http_request(b"GET / HTTP/1.1\nHost: a\nX-Long: one\n  two\n\n")
    assert req is not None and req.headers == (("Host", "a"), ("X-Long", "one two"))


def test_latin1_header_bytes_never_raise() -> None:
    req = parse_http_request(b"GET / HTTP/1.1\r\nUser-Agent: caf\xe9 \xff\r\n\r\n")
    assert req is not None and req.user_agent == "caf\xe9 \xff"


def test_unencoded_space_ends_the_target_as_tshark_reads_it() -> None:
    req = parse_http_request(b"GET /Hello World HTTP/1.0\r\n\r\n")
    assert req is not None and (req.uri, req.version) == ("/Hello", "World HTTP/1.0")


def test_golden_response() -> None:
    resp = parse_http_response(b"HTTP/1.1 301 Moved Permanently\r\nServer: nginx/1.24.0\r\nLocation: /x\r\n\r\n")
    assert resp is not None
    assert (resp.version, resp.status, resp.reason, resp.server) == (
        "HTTP/1.1",
        301,
        "Moved Permanently",
        "nginx/1.24.0",
    )


def test_response_without_reason_and_incomplete() -> None:
    resp = parse_http_response(b"HTTP/1.1 200\r\n\r\n")
    assert resp is not None and (resp.status, resp.reason) == (200, "")
    assert parse_http_response(b"HTTP/1.1 200 OK\r\nServer: x") is None
    assert parse_http_response(b"HTT") is None


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"M-SEARCH * HTTP/1.1\r\n", True),
        (b"PROPFIND /dav HTTP/1.1\r\n", True),
        (b"GET", False),  # no space yet
        (b"get / HTTP/1.1\r\n", False),  # methods are case-sensitive
        (b"\x16\x03\x01\x02\x00", False),  # a TLS record
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),
        (b"", False),
    ],
)
def test_looks_like_http_request(buf: bytes, expected: bool) -> None:
    assert looks_like_http_request(buf) is expected


@pytest.mark.parametrize(
    "buf",
    [
        b"\x16\x03\x01\x02\x00\x01\x00",  # TLS ClientHello: never HTTP
        b"GET\x00/ HTTP/1.1\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",  # no version at the end
        b"GET /\r\n\r\n",  # HTTP/0.9 is not supported
        b" GET / HTTP/1.1\r\n",
    ],
)
def test_never_a_request(buf: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_request(buf)
    assert err.value.reason == "http.bad_request_line" and err.value.offset == 0


def test_not_a_response() -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_response(b"HTTP/1.1 abc\r\n\r\n")
    assert err.value.reason == "http.bad_status_line"
    with pytest.raises(DecodeError):
        parse_http_response(b"SSH-2.0-x\r\n")


# --- hostile input ---------------------------------------------------------------------------


def test_http_header_flood() -> None:
    buf = b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    with pytest.raises(DecodeError) as err:
        parse_http_request(buf)
    assert err.value.reason == "http.too_many_headers"
    ok = b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * MAX_HEADERS + b"\r\n"
    assert parse_http_request(ok) is not None


def test_huge_request_line() -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_request(b"GET /" + b"a" * (MAX_LINE + 10))
    assert err.value.reason == "http.line_too_long"


def test_huge_header_line() -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_request(b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_LINE + 10) + b"\r\n\r\n")
    assert err.value.reason == "http.line_too_long"


def test_head_that_never_ends() -> None:
    line = b"X-A: " + b"b" * 100 + b"\r\n"
    buf = b"GET / HTTP/1.1\r\n" + line * ((MAX_HEAD - 16) // len(line))
    assert len(buf) <= MAX_HEAD and parse_http_request(buf) is None
    with pytest.raises(DecodeError) as err:
        parse_http_request(buf + line)
    assert err.value.reason == "http.head_too_long"


def test_header_line_without_colon() -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_request(b"GET / HTTP/1.1\r\nHost example\r\n\r\n")
    assert (err.value.reason, err.value.offset) == ("http.bad_header", 16)


def test_space_before_colon_is_refused() -> None:
    with pytest.raises(DecodeError) as err:
        parse_http_request(b"GET / HTTP/1.1\r\nHost : example\r\n\r\n")
    assert err.value.reason == "http.bad_header"
