"""DHCPv4 messages (RFC 2131 over the BOOTP layout of RFC 951, options of RFC 2132).

Strategy: the fixed 236-octet BOOTP header is read with one `struct.unpack_from`, then the
options after the magic cookie are walked by offset. When option 52 (overload, RFC 2132 §9.3)
is present in the options field, the `file` and then `sname` fields are walked too, in the
order RFC 2131 §4.1 gives; option 52 inside those fields is ignored, so overload cannot loop.
Repeated codes are concatenated (RFC 3396 long options). Values kept as text are decoded with
replacement characters and lose trailing NULs (as Wireshark shows them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capture.errors import DecodeError
from capture.protocols._util import boundary, ipv4_text, mac_text

# RFC 2131 §2: op..file is 236 octets, then the options field starting with the magic cookie.
BOOTP_LEN = 236
MAGIC_COOKIE = b"\x63\x82\x53\x63"
OPTIONS_OFF = BOOTP_LEN + len(MAGIC_COOKIE)
SNAME_OFF, SNAME_LEN = 44, 64
FILE_OFF, FILE_LEN = 108, 128
# RFC 2132 §2: option codes are one octet, so at most 254 distinct codes besides pad and end;
# more occurrences than that in one field only come from hostile or broken senders.
MAX_OPTIONS = 254

OPT_PAD = 0
OPT_END = 255
OPT_HOSTNAME = 12
OPT_REQUESTED_IP = 50
OPT_OVERLOAD = 52
OPT_MSG_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMS = 55
OPT_MAX_MSG_SIZE = 57
OPT_VENDOR_CLASS = 60
OPT_CLIENT_ID = 61
OPT_CLIENT_FQDN = 81

# RFC 2132 §9.6, RFC 3203 (forcerenew), RFC 4388 (leasequery), RFC 6926 (bulk leasequery),
# RFC 7724 (active leasequery).
MSG_TYPE_NAMES = {
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
    9: "forcerenew",
    10: "leasequery",
    11: "leaseunassigned",
    12: "leaseunknown",
    13: "leaseactive",
    14: "bulkleasequery",
    15: "leasequerydone",
    16: "activeleasequery",
    17: "leasequerystatus",
    18: "tls",
}

_BOOTP = struct.Struct("!4BI2H4s4s4s4s16s")


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    op: int
    htype: int
    hlen: int
    xid: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: bytes
    options: tuple[int, ...]
    values: tuple[tuple[int, bytes], ...]

    def option(self, code: int) -> bytes | None:
        """Value of option `code` (concatenated when repeated), or None."""
        for c, v in self.values:
            if c == code:
                return v
        return None

    @property
    def msg_type(self) -> int | None:
        v = self.option(OPT_MSG_TYPE)
        return v[0] if v else None

    @property
    def msg_type_name(self) -> str | None:
        t = self.msg_type
        return None if t is None else MSG_TYPE_NAMES.get(t, str(t))

    @property
    def client_mac(self) -> str | None:
        """chaddr cut to hlen (at most the field's 16 octets); None when hlen is 0."""
        return mac_text(self.chaddr[: min(self.hlen, 16)]) if self.hlen else None

    @property
    def hostname(self) -> str | None:
        return _text(self.option(OPT_HOSTNAME))

    @property
    def params(self) -> list[int]:
        v = self.option(OPT_PARAMS)
        return list(v) if v is not None else []

    @property
    def vendor_class(self) -> str | None:
        return _text(self.option(OPT_VENDOR_CLASS))

    @property
    def client_id(self) -> str | None:
        v = self.option(OPT_CLIENT_ID)
        return v.hex() if v is not None else None

    @property
    def requested_ip(self) -> str | None:
        return _ip(self.option(OPT_REQUESTED_IP))

    @property
    def server_id(self) -> str | None:
        return _ip(self.option(OPT_SERVER_ID))

    @property
    def max_msg_size(self) -> int | None:
        v = self.option(OPT_MAX_MSG_SIZE)
        return (v[0] << 8) | v[1] if v is not None and len(v) == 2 else None

    @property
    def client_fqdn(self) -> str | None:
        """Option 81 domain name (RFC 4702 §2): wire format when the E flag is set, else ASCII."""
        v = self.option(OPT_CLIENT_FQDN)
        if v is None or len(v) < 3:
            return None
        if v[0] & 0x04:
            labels: list[str] = []
            off = 3
            while off < len(v) and v[off] != 0:
                n = v[off]
                labels.append(v[off + 1 : off + 1 + n].decode("utf-8", "replace"))
                off += 1 + n
            return ".".join(labels)
        return _text(v[3:])

    def fields(self) -> dict[str, object]:
        """The `dhcp` event's own fields (docs/events.md)."""
        return {
            "msg_type": self.msg_type,
            "msg_type_name": self.msg_type_name,
            "client_mac": self.client_mac,
            "hostname": self.hostname,
            "params": self.params,
            "vendor_class": self.vendor_class,
            "client_id": self.client_id,
            "requested_ip": self.requested_ip,
            "server_id": self.server_id,
            "max_msg_size": self.max_msg_size,
            "options": list(self.options),
            "yiaddr": self.yiaddr,
            "ciaddr": self.ciaddr,
        }


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.rstrip(b"\x00").decode("utf-8", "replace")


def _ip(v: bytes | None) -> str | None:
    return ipv4_text(v) if v is not None and len(v) == 4 else None


def _walk(buf: bytes, off: int, end: int, order: list[int], values: dict[int, bytes], overload: bool) -> int:
    """Walk one options area; return the overload value (0 when absent or not honoured)."""
    flag = 0
    while off < end:
        code = buf[off]
        if code == OPT_PAD:
            off += 1
            continue
        if code == OPT_END:
            break
        if off + 1 >= end:
            raise DecodeError("dhcp.option_overflow", f"option {code} has no length", off)
        length = buf[off + 1]
        stop = off + 2 + length
        if stop > end:
            raise DecodeError("dhcp.option_overflow", f"option {code} of {length} bytes runs past its field", off)
        if len(order) >= MAX_OPTIONS:
            raise DecodeError("dhcp.too_many_options", f"more than {MAX_OPTIONS} options", off)
        order.append(code)
        value = buf[off + 2 : stop]
        prev = values.get(code)
        values[code] = value if prev is None else prev + value
        if overload and code == OPT_OVERLOAD and length == 1:
            flag = value[0]
        off = stop
    return flag


@boundary("dhcp")
def parse_dhcp(payload: bytes) -> DhcpMessage:
    """Parse a DHCPv4 message (a BOOTP packet with the DHCP magic cookie) from a UDP payload."""
    buf = bytes(payload)
    if len(buf) < OPTIONS_OFF:
        raise DecodeError("dhcp.truncated", f"{len(buf)} bytes, BOOTP header needs {OPTIONS_OFF}", 0)
    if buf[BOOTP_LEN:OPTIONS_OFF] != MAGIC_COOKIE:
        raise DecodeError("dhcp.bad_cookie", f"magic cookie {buf[BOOTP_LEN:OPTIONS_OFF].hex()}", BOOTP_LEN)
    op, htype, hlen, _hops, xid, _secs, _flags, ciaddr, yiaddr, siaddr, giaddr, chaddr = _BOOTP.unpack_from(buf, 0)
    order: list[int] = []
    values: dict[int, bytes] = {}
    overload = _walk(buf, OPTIONS_OFF, len(buf), order, values, True)
    if overload & 1:
        _walk(buf, FILE_OFF, FILE_OFF + FILE_LEN, order, values, False)
    if overload & 2:
        _walk(buf, SNAME_OFF, SNAME_OFF + SNAME_LEN, order, values, False)
    return DhcpMessage(
        op,
        htype,
        hlen,
        xid,
        ipv4_text(ciaddr),
        ipv4_text(yiaddr),
        ipv4_text(siaddr),
        ipv4_text(giaddr),
        chaddr,
        tuple(order),
        tuple(values.items()),
    )
