"""DHCPv6 messages (RFC 8415), with relay messages unwrapped to the client/server message inside.

Strategy: options are walked by offset (2-octet code, 2-octet length). A RELAY-FORW or
RELAY-REPL message is replaced by the content of its Relay Message option (9), iteratively and
at most HOP_COUNT_LIMIT times, so nesting cannot recurse or loop. The client's DUID (option 1)
is split by type (LLT, EN, LL, UUID; RFC 8415 §11 and RFC 6355) to find the link-layer address
that names the device.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capture.errors import DecodeError
from capture.protocols._util import boundary, ipv6_text, mac_text

# RFC 8415 §7.6: HOP_COUNT_LIMIT 8 relays, so at most 8 relay headers wrap a message.
HOP_COUNT_LIMIT = 8
# RFC 8415 §8 (client/server header: type + transaction id) and §9 (relay header: type,
# hop-count, link-address, peer-address).
CLIENT_HEADER_LEN = 4
RELAY_HEADER_LEN = 34
# Option codes are 16 bits (RFC 8415 §21.1); a message is one UDP datagram, and every option
# takes at least 4 octets, so a 65,507-octet payload holds at most 16,376 of them. We stop far
# earlier: 256 options is more than any client or server sends (RFC 8415 lists ~100 codes).
MAX_OPTIONS = 256

RELAY_FORW = 12
RELAY_REPL = 13

OPT_CLIENTID = 1
OPT_SERVERID = 2
OPT_ORO = 6
OPT_RELAY_MSG = 9
OPT_VENDOR_CLASS = 16
OPT_CLIENT_FQDN = 39

DUID_LLT = 1
DUID_EN = 2
DUID_LL = 3
DUID_UUID = 4

# RFC 8415 §7.3 and the IANA DHCPv6 message type registry.
MSG_TYPE_NAMES = {
    1: "solicit",
    2: "advertise",
    3: "request",
    4: "confirm",
    5: "renew",
    6: "rebind",
    7: "reply",
    8: "release",
    9: "decline",
    10: "reconfigure",
    11: "information-request",
    12: "relay-forw",
    13: "relay-repl",
    14: "leasequery",
    15: "leasequery-reply",
    16: "leasequery-done",
    17: "leasequery-data",
    18: "reconfigure-request",
    19: "reconfigure-reply",
    20: "dhcpv4-query",
    21: "dhcpv4-response",
}

_HH = struct.Struct("!HH")
_I = struct.Struct("!I")


OPT_IA_NA = 3  # RFC 8415 §21.4
OPT_IAADDR = 5  # RFC 8415 §21.6
# Addresses kept per message: RFC 8415 allows several IA_NAs; a client asks for one or two.
MAX_ADDRESSES = 8


@dataclass(frozen=True, slots=True)
class Dhcp6Message:
    msg_type: int
    transaction_id: int
    relays: tuple[int, ...]
    options: tuple[int, ...]
    duid: bytes | None
    oro: tuple[int, ...]
    vendor_class: str | None
    enterprise: int | None
    fqdn: str | None
    server_duid: bytes | None = None
    addresses: tuple[str, ...] = ()

    @property
    def msg_type_name(self) -> str:
        return MSG_TYPE_NAMES.get(self.msg_type, str(self.msg_type))

    @property
    def duid_type(self) -> int | None:
        d = self.duid
        return (d[0] << 8) | d[1] if d is not None and len(d) >= 2 else None

    @property
    def duid_mac(self) -> str | None:
        """Link-layer address carried by the client's DUID-LLT or DUID-LL."""
        return duid_link_layer(self.duid)

    def fields(self) -> dict[str, object]:
        """The `dhcp6` event's own fields (docs/events.md)."""
        return {
            "msg_type": self.msg_type,
            "msg_type_name": self.msg_type_name,
            "duid": self.duid.hex() if self.duid is not None else None,
            "duid_type": self.duid_type,
            "duid_mac": self.duid_mac,
            "oro": list(self.oro),
            "vendor_class": self.vendor_class,
            "enterprise": self.enterprise,
            "fqdn": self.fqdn,
            "options": list(self.options),
            "addresses": list(self.addresses),
        }


def duid_link_layer(duid: bytes | None) -> str | None:
    """Link-layer address of a DUID-LLT or DUID-LL (RFC 8415 §11.2, §11.4), else None."""
    if duid is None or len(duid) < 2:
        return None
    kind = (duid[0] << 8) | duid[1]
    if kind == DUID_LLT and len(duid) > 8:
        return mac_text(duid[8:])
    if kind == DUID_LL and len(duid) > 4:
        return mac_text(duid[4:])
    return None


def _fqdn(buf: bytes, off: int, end: int) -> str:
    """RFC 4704 §4: flags octet, then an uncompressed (possibly partial) wire-format name."""
    labels: list[str] = []
    off += 1
    while off < end:
        n = buf[off]
        if n == 0:
            break
        if n > 63 or off + 1 + n > end:
            raise DecodeError("dhcp6.bad_fqdn", f"label of {n} bytes", off)
        labels.append(buf[off + 1 : off + 1 + n].decode("utf-8", "replace"))
        off += 1 + n
    return ".".join(labels)


def _vendor_class(buf: bytes, off: int, end: int) -> tuple[int, str]:
    """RFC 8415 §21.16: enterprise number, then 2-octet-length-prefixed opaque items."""
    enterprise = _I.unpack_from(buf, off)[0]
    off += 4
    items: list[str] = []
    while off < end:
        n = (buf[off] << 8) | buf[off + 1]
        if off + 2 + n > end:
            raise DecodeError("dhcp6.bad_vendor_class", f"item of {n} bytes runs past the option", off)
        items.append(buf[off + 2 : off + 2 + n].decode("utf-8", "replace"))
        off += 2 + n
    return enterprise, ",".join(items)


@boundary("dhcp6")
def parse_dhcp6(payload: bytes) -> Dhcp6Message:
    """Parse a DHCPv6 message from a UDP payload; relay messages yield the message they carry."""
    buf = bytes(payload)
    start, end = 0, len(buf)
    relays: list[int] = []
    while True:
        if end - start < 1:
            raise DecodeError("dhcp6.truncated", "empty message", start)
        msg_type = buf[start]
        if msg_type not in (RELAY_FORW, RELAY_REPL):
            break
        if len(relays) >= HOP_COUNT_LIMIT:
            raise DecodeError("dhcp6.relay_too_deep", f"more than {HOP_COUNT_LIMIT} relay headers", start)
        off = start + RELAY_HEADER_LEN
        if off > end:
            raise DecodeError("dhcp6.truncated", "relay header cut short", start)
        inner = None
        count = 0
        while off < end:
            code, length = _HH.unpack_from(buf, off)
            stop = off + 4 + length
            if stop > end:
                raise DecodeError("dhcp6.option_overflow", f"option {code} of {length} bytes", off)
            count += 1
            if count > MAX_OPTIONS:
                raise DecodeError("dhcp6.too_many_options", f"more than {MAX_OPTIONS} options", off)
            if code == OPT_RELAY_MSG and inner is None:
                inner = (off + 4, stop)
            off = stop
        if inner is None:
            raise DecodeError("dhcp6.no_relay_message", "relay message without option 9", start)
        start, end = inner
        relays.append(msg_type)
    if end - start < CLIENT_HEADER_LEN:
        raise DecodeError("dhcp6.truncated", f"{end - start} bytes, header needs {CLIENT_HEADER_LEN}", start)
    xid = int.from_bytes(buf[start + 1 : start + 4], "big")
    order: list[int] = []
    duid: bytes | None = None
    server_duid: bytes | None = None
    oro: tuple[int, ...] = ()
    vendor_class: str | None = None
    enterprise: int | None = None
    fqdn: str | None = None
    addresses: list[str] = []
    off = start + CLIENT_HEADER_LEN
    while off < end:
        code, length = _HH.unpack_from(buf, off)
        vstart = off + 4
        stop = vstart + length
        if stop > end:
            raise DecodeError("dhcp6.option_overflow", f"option {code} of {length} bytes runs past the end", off)
        if len(order) >= MAX_OPTIONS:
            raise DecodeError("dhcp6.too_many_options", f"more than {MAX_OPTIONS} options", off)
        order.append(code)
        if code == OPT_CLIENTID and duid is None:
            duid = buf[vstart:stop]
        elif code == OPT_SERVERID and server_duid is None:
            server_duid = buf[vstart:stop]
        elif code == OPT_ORO:
            oro = struct.unpack_from(f"!{length // 2}H", buf, vstart)
        elif code == OPT_VENDOR_CLASS and vendor_class is None:
            enterprise, vendor_class = _vendor_class(buf, vstart, stop)
        elif code == OPT_CLIENT_FQDN and fqdn is None:
            fqdn = _fqdn(buf, vstart, stop)
        elif code == OPT_IA_NA and len(addresses) < MAX_ADDRESSES:
            _ia_addresses(buf, vstart + 12, stop, addresses)
        off = stop
    return Dhcp6Message(
        msg_type, xid, tuple(relays), tuple(order), duid, oro, vendor_class, enterprise, fqdn, server_duid,
        tuple(addresses),
    )  # fmt: skip


def _ia_addresses(buf: bytes, off: int, end: int, out: list[str]) -> None:
    """IAADDR options (RFC 8415 §21.6) inside an IA_NA's options area: the addresses assigned."""
    while off + 4 <= end and len(out) < MAX_ADDRESSES:
        code, length = _HH.unpack_from(buf, off)
        stop = off + 4 + length
        if stop > end:
            raise DecodeError("dhcp6.option_overflow", f"IA_NA sub-option {code} of {length} bytes", off)
        if code == OPT_IAADDR and length >= 24:
            out.append(ipv6_text(buf[off + 4 : off + 20]))
        off = stop
