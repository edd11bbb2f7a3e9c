"""Rule header addresses and ports: variables, lists, ranges, negation, as interval sets.

Every address or port expression is flattened at load time into sorted disjoint integer
intervals (one list per IP family), so a packet check is a `bisect`, whatever the nesting
(`[10.0.0.0/8,![10.1.0.0/16,$DMZ]]`). Semantics follow Suricata: a list is the union of its
positive members minus the union of its negated ones; a list of negations alone starts from
`any`.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

from signatures.rules.errors import RuleError

V4_MAX = (1 << 32) - 1
V6_MAX = (1 << 128) - 1
PORT_MAX = 65535  # RFC 793 / RFC 768: 16-bit port numbers
# Nesting of variables inside variables; Suricata refuses loops, we cap the depth.
MAX_VAR_DEPTH = 16

Intervals = tuple[tuple[int, int], ...]


def _normalise(spans: list[tuple[int, int]]) -> Intervals:
    spans.sort()
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(iv: Intervals, top: int) -> Intervals:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in iv:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= top:
        out.append((nxt, top))
    return tuple(out)


def _subtract(a: Intervals, b: Intervals, top: int) -> Intervals:
    nb = _complement(b, top)
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(nb):
        lo = max(a[i][0], nb[j][0])
        hi = min(a[i][1], nb[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < nb[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _contains(iv: Intervals, starts: tuple[int, ...], value: int) -> bool:
    i = bisect_right(starts, value) - 1
    return i >= 0 and value <= iv[i][1]


@dataclass(frozen=True, slots=True)
class AddressSet:
    """A set of IPv4 and IPv6 addresses; `any` when it covers both families entirely."""

    v4: Intervals
    v6: Intervals
    is_any: bool
    _s4: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _s6: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_s4", tuple(lo for lo, _ in self.v4))
        object.__setattr__(self, "_s6", tuple(lo for lo, _ in self.v6))

    def contains(self, addr: bytes) -> bool:
        """Whether a raw 4- or 16-byte address is in the set."""
        if self.is_any:
            return True
        if len(addr) == 4:
            return _contains(self.v4, self._s4, int.from_bytes(addr, "big"))
        if len(addr) == 16:
            return _contains(self.v6, self._s6, int.from_bytes(addr, "big"))
        return False


@dataclass(frozen=True, slots=True)
class PortSet:
    """A set of ports; `any` when it covers 0..65535."""

    spans: Intervals
    is_any: bool
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(lo for lo, _ in self.spans))

    def contains(self, port: int) -> bool:
        """Whether a port is in the set."""
        return self.is_any or _contains(self.spans, self._starts, port)


def split_list(text: str, what: str) -> list[str]:
    """Split the inside of a `[...]` list on top-level commas."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise RuleError(what, f"unbalanced ']' in {text!r}")
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise RuleError(what, f"unbalanced '[' in {text!r}")
    items.append("".join(cur).strip())
    if any(not it for it in items):
        raise RuleError(what, f"empty member in list {text!r}")
    return items


class _AddrParser:
    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables

    def parse(self, text: str, depth: int = 0) -> tuple[Intervals, Intervals]:
        text = text.strip()
        if depth > MAX_VAR_DEPTH:
            raise RuleError("address", f"variables nested deeper than {MAX_VAR_DEPTH}")
        if not text:
            raise RuleError("address", "empty address")
        if text.startswith("!"):
            v4, v6 = self.parse(text[1:], depth + 1)
            return _complement(v4, V4_MAX), _complement(v6, V6_MAX)
        if text.startswith("["):
            if not text.endswith("]"):
                raise RuleError("address", f"list not closed: {text!r}")
            pos4: list[tuple[int, int]] = []
            pos6: list[tuple[int, int]] = []
            neg4: list[tuple[int, int]] = []
            neg6: list[tuple[int, int]] = []
            any_pos = False
            for item in split_list(text[1:-1], "address"):
                negated = item.startswith("!")
                v4, v6 = self.parse(item[1:] if negated else item, depth + 1)
                if negated:
                    neg4 += v4
                    neg6 += v6
                else:
                    any_pos = True
                    pos4 += v4
                    pos6 += v6
            b4 = _normalise(pos4) if any_pos else ((0, V4_MAX),)
            b6 = _normalise(pos6) if any_pos else ((0, V6_MAX),)
            return _subtract(b4, _normalise(neg4), V4_MAX), _subtract(b6, _normalise(neg6), V6_MAX)
        if text.startswith("$"):
            name = text[1:]
            if name not in self.variables:
                raise RuleError("address", f"undefined variable ${name}")
            return self.parse(self.variables[name], depth + 1)
        if text == "any":
            return ((0, V4_MAX),), ((0, V6_MAX),)
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise RuleError("address", f"not an address or network: {text!r}") from None
        span = ((int(net.network_address), int(net.broadcast_address)),)
        return (span, ()) if net.version == 4 else ((), span)


def parse_addresses(text: str, variables: Mapping[str, str]) -> AddressSet:
    """Parse a header address expression (`any`, `$HOME_NET`, `!1.2.3.4`, `[a,b,!c]`)."""
    v4, v6 = _AddrParser(variables).parse(text)
    return AddressSet(v4, v6, v4 == ((0, V4_MAX),) and v6 == ((0, V6_MAX),))


def _port_spans(text: str, variables: Mapping[str, str], depth: int) -> Intervals:
    text = text.strip()
    if depth > MAX_VAR_DEPTH:
        raise RuleError("port", f"variables nested deeper than {MAX_VAR_DEPTH}")
    if not text:
        raise RuleError("port", "empty port")
    if text.startswith("!"):
        return _complement(_port_spans(text[1:], variables, depth + 1), PORT_MAX)
    if text.startswith("["):
        if not text.endswith("]"):
            raise RuleError("port", f"list not closed: {text!r}")
        pos: list[tuple[int, int]] = []
        neg: list[tuple[int, int]] = []
        any_pos = False
        for item in split_list(text[1:-1], "port"):
            if item.startswith("!"):
                neg += _port_spans(item[1:], variables, depth + 1)
            else:
                any_pos = True
                pos += _port_spans(item, variables, depth + 1)
        base = _normalise(pos) if any_pos else ((0, PORT_MAX),)
        return _subtract(base, _normalise(neg), PORT_MAX)
    if text.startswith("$"):
        name = text[1:]
        if name not in variables:
            raise RuleError("port", f"undefined variable ${name}")
        return _port_spans(variables[name], variables, depth + 1)
    if text == "any":
        return ((0, PORT_MAX),)
    lo_s, sep, hi_s = text.partition(":")
    try:
        lo = int(lo_s) if lo_s else 0
        hi = (int(hi_s) if hi_s else PORT_MAX) if sep else lo
    except ValueError:
        raise RuleError("port", f"not a port or range: {text!r}") from None
    if not (0 <= lo <= hi <= PORT_MAX):
        raise RuleError("port", f"port out of range 0..{PORT_MAX}: {text!r}")
    return ((lo, hi),)


def parse_ports(text: str, variables: Mapping[str, str]) -> PortSet:
    """Parse a header port expression (`any`, `80`, `1024:`, `!22`, `[80,8080:8090]`, `$HTTP_PORTS`)."""
    spans = _port_spans(text, variables, 0)
    return PortSet(spans, spans == ((0, PORT_MAX),))
