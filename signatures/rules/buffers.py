"""Sticky-buffer contents taken from an `Observation`: HTTP request parts, DNS query, TLS/JA values.

Each buffer is a list of byte strings (a DNS message may ask several names; a rule matches when
any one matches). `http.uri` is normalised as Suricata's HTTP layer does by default: %-decoding
of the path, dot segments removed (RFC 3986 §5.2.4), repeated slashes compressed; `http.uri.raw`
is the request target as sent. `http.host` is lower-cased without the port.
"""

from __future__ import annotations

import re
from typing import Any

_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(rb"/{2,}")
# Observation fields copied into an alert's `app` object.
APP_FIELDS = {
    "http": ("method", "host", "uri", "user_agent"),
    "dns": ("query",),
    "tls_client": ("sni", "ja3", "ja4"),
    "tls_server": ("ja3s",),
    "ssh": ("banner",),
    "dhcp": ("msg_type_name", "hostname"),
}


_TLS_FIELDS = {"tls.sni": "sni", "ja3.hash": "ja3", "ja4.hash": "ja4", "ja3s.hash": "ja3s",
               "ja3.string": "ja3_string", "ja3s.string": "ja3s_string"}  # fmt: skip


def to_bytes(value: Any) -> bytes | None:
    """Observation text fields as the bytes on the wire (parsers decode them as latin-1)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _remove_dot_segments(path: bytes) -> bytes:
    out: list[bytes] = []
    segs = path.split(b"/")
    for i, seg in enumerate(segs):
        if seg == b".":
            if i == len(segs) - 1:
                out.append(b"")
            continue
        if seg == b"..":
            if len(out) > 1:
                out.pop()
            if i == len(segs) - 1:
                out.append(b"")
            continue
        out.append(seg)
    return b"/".join(out)


def normalise_uri(raw: bytes) -> bytes:
    """Suricata-like normalised URI: decoded, dot segments removed, `//` compressed in the path."""
    path, sep, query = raw.partition(b"?")
    path = _PCT.sub(lambda m: bytes([int(m.group(1), 16)]), path)
    path = _SLASHES.sub(b"/", path)
    if path.startswith(b"/"):
        path = _remove_dot_segments(path)
    return path + sep + query


def _http(name: str, fields: dict[str, Any], msg: Any) -> list[bytes]:
    if name in ("http.uri", "http.uri.raw"):
        raw = to_bytes(fields.get("uri"))
        if raw is None:
            return []
        return [normalise_uri(raw) if name == "http.uri" else raw]
    if name == "http.method":
        v = to_bytes(fields.get("method"))
    elif name in ("http.host", "http.host.raw"):
        v = to_bytes(fields.get("host"))
        if v is not None and name == "http.host":
            v = v.lower()
            if not v.startswith(b"[") and v.count(b":") == 1:
                v = v.split(b":", 1)[0]
    elif name == "http.user_agent":
        v = to_bytes(fields.get("user_agent"))
    else:
        headers = getattr(msg, "headers", None)
        if headers is None:
            return []
        if name == "http.header.raw":
            raw_headers = getattr(msg, "raw_headers", None)
            if raw_headers is not None:
                return [bytes(raw_headers)]
        v = b"".join((to_bytes(k) or b"") + b": " + (to_bytes(val) or b"") + b"\r\n" for k, val in headers)
    return [] if v is None else [v]


def observation_buffer(name: str, obs_type: str, fields: dict[str, Any], msg: Any) -> list[bytes]:
    """The values of buffer `name` in an observation (empty when it has none)."""
    if name.startswith("http."):
        return _http(name, fields, msg) if obs_type == "http" else []
    if name == "dns.query":
        if obs_type != "dns" or fields.get("response"):
            return []
        names = fields.get("queries") or ([fields["query"]] if fields.get("query") is not None else [])
        return [b for b in (to_bytes(n) for n in names) if b is not None]
    key = _TLS_FIELDS.get(name)
    if key is None:
        return []
    v = to_bytes(fields.get(key))
    return [] if v is None else [v]
