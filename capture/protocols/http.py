"""HTTP/1.x request and response heads (RFC 9112) from the start of a TCP byte stream.

Strategy, after h11: bytes in, a value out, no state. The head ends at the first empty line
(CRLF CRLF, or bare LF as h11 tolerates); until it is seen the parser returns None so the caller
can wait for more bytes, unless the head is already over the cap or cannot be HTTP, which is a
`DecodeError`. Header names and values keep their order and case; values are decoded as
latin-1 (RFC 9110 §5.5: bytes beyond ASCII are opaque), and the raw header block is kept for
the rule engine's raw buffers. Obsolete line folding is joined with one space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from capture.errors import DecodeError
from capture.protocols._util import boundary

# h11's DEFAULT_MAX_INCOMPLETE_EVENT_SIZE: a head that has not ended after 16 KiB is refused.
MAX_HEAD = 16 * 1024
# aiohttp's parser limits: max_headers=128, max_line_size=8190.
MAX_HEADERS = 128
MAX_LINE = 8190
# Longest method in the IANA HTTP method registry (UPDATEREDIRECTREF, 17) plus the space.
MAX_METHOD_PREFIX = 18

# IANA HTTP Method Registry (RFC 9110 §9, WebDAV RFC 4918/3253/5323, RFC 5789 PATCH), plus the
# UPnP/GENA methods (SUBSCRIBE, NOTIFY, UNSUBSCRIBE, M-SEARCH) seen on LANs.
KNOWN_METHODS = frozenset(
    {
        b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
        b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH",
        b"REPORT", b"MKACTIVITY", b"CHECKOUT", b"CHECKIN", b"MERGE", b"VERSION-CONTROL",
        b"UNCHECKOUT", b"MKWORKSPACE", b"UPDATE", b"LABEL", b"BASELINE-CONTROL", b"ACL",
        b"BIND", b"UNBIND", b"REBIND", b"MKCALENDAR", b"ORDERPATCH", b"MKREDIRECTREF",
        b"UPDATEREDIRECTREF", b"SUBSCRIBE", b"UNSUBSCRIBE", b"NOTIFY", b"M-SEARCH",
    }
)  # fmt: skip

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# The request target runs from the first space to the last one before the version: clients
# that leave spaces unencoded are seen as libhtp (Suricata) sees them, not cut at the space.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([^\x00\r\n]*[^\x00\s]) (HTTP/[0-9]\.[0-9])\r?$")
_RESPONSE_LINE = re.compile(rb"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\r?$")
_TOKEN_PREFIX = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]*(?: |$)")
_HEADER_NAME = re.compile(_TOKEN)
_OWS = b" \t"

Headers = tuple[tuple[str, str], ...]


def header_value(headers: Headers, name: str) -> str | None:
    """First value of header `name` (case-insensitive), or None."""
    low = name.lower()
    for k, v in headers:
        if k.lower() == low:
            return v
    return None


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    uri: str
    version: str
    headers: Headers
    raw_headers: bytes
    head_len: int

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def host(self) -> str | None:
        return header_value(self.headers, "host")

    @property
    def user_agent(self) -> str | None:
        return header_value(self.headers, "user-agent")

    def fields(self) -> dict[str, object]:
        """The `http` event's own fields (docs/events.md)."""
        return {
            "method": self.method,
            "host": self.host,
            "uri": self.uri,
            "user_agent": self.user_agent,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class HttpResponse:
    version: str
    status: int
    reason: str
    headers: Headers
    raw_headers: bytes
    head_len: int

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def server(self) -> str | None:
        return header_value(self.headers, "server")


def parse_header_lines(buf: bytes, off: int, end: int, proto: str) -> Headers:
    """Parse `name: value` lines in buf[off:end] (CRLF or LF separated, obs-fold joined)."""
    out: list[tuple[str, str]] = []
    while off < end:
        nl = buf.find(b"\n", off, end)
        stop = end if nl < 0 else nl
        line_end = stop - 1 if stop > off and buf[stop - 1] == 13 else stop
        if line_end - off > MAX_LINE:
            raise DecodeError(f"{proto}.line_too_long", f"header line over {MAX_LINE} bytes", off)
        if line_end == off:
            break
        if buf[off] in _OWS:
            if not out:
                raise DecodeError(f"{proto}.bad_header", "continuation line before any header", off)
            name, value = out[-1]
            extra = buf[off:line_end].strip(_OWS).decode("latin-1")
            out[-1] = (name, f"{value} {extra}" if value else extra)
        else:
            colon = buf.find(b":", off, line_end)
            if colon < 0 or _HEADER_NAME.fullmatch(buf, off, colon) is None:
                raise DecodeError(f"{proto}.bad_header", f"not a header line: {buf[off:line_end][:40]!r}", off)
            if len(out) >= MAX_HEADERS:
                raise DecodeError(f"{proto}.too_many_headers", f"more than {MAX_HEADERS} headers", off)
            raw_value = buf[colon + 1 : line_end].strip(_OWS)
            out.append((buf[off:colon].decode("latin-1"), raw_value.decode("latin-1")))
        off = stop + 1
    return tuple(out)


def _head(buf: bytes) -> tuple[int, int, int] | None:
    """(end of first line, end of header block, end of head) or None while incomplete."""
    m = _HEAD_END.search(buf, 0, MAX_HEAD + 4)
    first_nl = buf.find(b"\n", 0, MAX_LINE + 2)
    if first_nl < 0 and len(buf) > MAX_LINE + 1:
        raise DecodeError("http.line_too_long", f"first line over {MAX_LINE} bytes", 0)
    if m is None:
        if len(buf) > MAX_HEAD:
            raise DecodeError("http.head_too_long", f"no end of head within {MAX_HEAD} bytes", 0)
        return None
    return first_nl, buf.index(b"\n", m.start()) + 1, m.end()


def looks_like_http_request(buf: bytes) -> bool:
    """True when `buf` starts with a registered HTTP method and a space (a cheap first check)."""
    sp = buf.find(b" ", 0, MAX_METHOD_PREFIX)
    return sp > 0 and buf[:sp] in KNOWN_METHODS


@boundary("http")
def parse_http_request(buf: bytes) -> HttpRequest | None:
    """Parse the request head at the start of a client stream; None while it is incomplete."""
    buf = bytes(buf)
    if not buf:
        return None
    first = buf.find(b"\n", 0, MAX_LINE + 2)
    if first < 0:
        if _TOKEN_PREFIX.match(buf) is None:
            raise DecodeError("http.bad_request_line", f"not an HTTP method: {buf[:20]!r}", 0)
    elif _REQUEST_LINE.fullmatch(buf, 0, first) is None:
        raise DecodeError("http.bad_request_line", f"not a request line: {buf[: min(first, 60)]!r}", 0)
    head = _head(buf)
    if head is None:
        return None
    first, block_end, head_len = head
    m = _REQUEST_LINE.fullmatch(buf, 0, first)
    if m is None:
        raise DecodeError("http.bad_request_line", f"not a request line: {buf[: min(first, 60)]!r}", 0)
    headers = parse_header_lines(buf, first + 1, block_end, "http")
    method, uri, version = (g.decode("latin-1") for g in m.groups())
    if " " in uri:
        # An unencoded space ends the request target, as tshark reads it ("GET /a b HTTP/1.0" is
        # "/a" with a malformed version); the rest stays visible in `version`.
        uri, rest = uri.split(" ", 1)
        version = f"{rest} {version}"
    return HttpRequest(method, uri, version, headers, buf[first + 1 : block_end], head_len)


@boundary("http")
def parse_http_response(buf: bytes) -> HttpResponse | None:
    """Parse the response head at the start of a server stream; None while it is incomplete."""
    buf = bytes(buf)
    if len(buf) < 5:
        if not b"HTTP/".startswith(buf):
            raise DecodeError("http.bad_status_line", f"not an HTTP response: {buf!r}", 0)
        return None
    if not buf.startswith(b"HTTP/"):
        raise DecodeError("http.bad_status_line", f"not an HTTP response: {buf[:20]!r}", 0)
    first = buf.find(b"\n", 0, MAX_LINE + 2)
    if first >= 0 and _RESPONSE_LINE.fullmatch(buf, 0, first) is None:
        raise DecodeError("http.bad_status_line", f"not a status line: {buf[: min(first, 60)]!r}", 0)
    head = _head(buf)
    if head is None:
        return None
    first, block_end, head_len = head
    m = _RESPONSE_LINE.fullmatch(buf, 0, first)
    if m is None:
        raise DecodeError("http.bad_status_line", f"not a status line: {buf[: min(first, 60)]!r}", 0)
    headers = parse_header_lines(buf, first + 1, block_end, "http")
    version = m.group(1).decode("latin-1")
    reason = (m.group(3) or b"").decode("latin-1")
    return HttpResponse(version, int(m.group(2)), reason, headers, buf[first + 1 : block_end], head_len)
