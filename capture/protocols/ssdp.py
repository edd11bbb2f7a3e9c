"""SSDP messages (UPnP Device Architecture 2.0 §1): HTTP over UDP, one message per datagram.

Strategy: the start line says which of the three kinds it is (M-SEARCH request, NOTIFY
request, or an `HTTP/1.1 200` search response); the header lines are parsed by the HTTP
module's line parser and looked up case-insensitively. A datagram is complete by itself, so
the end of the payload also ends the head (some devices omit the final empty line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from capture.errors import DecodeError
from capture.protocols._util import boundary
from capture.protocols.http import MAX_LINE, Headers, header_value, parse_header_lines

_START = re.compile(rb"(?:(M-SEARCH|NOTIFY) (\S+) HTTP/[0-9]\.[0-9]|HTTP/[0-9]\.[0-9] ([0-9]{3})(?: [^\r\n]*)?)\r?")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class SsdpMessage:
    method: str
    uri: str | None
    status: int | None
    headers: Headers

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def fields(self) -> dict[str, object]:
        """The `ssdp` event's own fields (docs/events.md)."""
        h = self.headers
        return {
            "method": self.method,
            "st": header_value(h, "st"),
            "nt": header_value(h, "nt"),
            "nts": header_value(h, "nts"),
            "usn": header_value(h, "usn"),
            "server": header_value(h, "server"),
            "user_agent": header_value(h, "user-agent"),
            "location": header_value(h, "location"),
        }


@boundary("ssdp")
def parse_ssdp(payload: bytes) -> SsdpMessage:
    """Parse an SSDP datagram: `M-SEARCH`, `NOTIFY`, or a response (method `HTTP`)."""
    buf = bytes(payload)
    first = buf.find(b"\n", 0, MAX_LINE + 2)
    if first < 0:
        raise DecodeError("ssdp.bad_start_line", f"no complete start line in {buf[:40]!r}", 0)
    m = _START.fullmatch(buf, 0, first)
    if m is None:
        raise DecodeError("ssdp.bad_start_line", f"not an SSDP start line: {buf[: min(first, 60)]!r}", 0)
    method, uri, status = m.groups()
    head_end = _HEAD_END.search(buf, first)
    end = len(buf) if head_end is None else buf.index(b"\n", head_end.start()) + 1
    headers = parse_header_lines(buf, first + 1, end, "ssdp")
    return SsdpMessage(
        method.decode("ascii") if method else "HTTP",
        uri.decode("latin-1") if uri else None,
        int(status) if status else None,
        headers,
    )
