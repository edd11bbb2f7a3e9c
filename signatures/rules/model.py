"""Parsed rule values: immutable, built once by the parser, read by the engine.

A rule's payload and sticky-buffer keywords are grouped by buffer, each group keeping the
order it was written in (relative modifiers count from the previous match in the same buffer,
as in Suricata). Numeric keywords share one `NumCheck` (Suricata's integer keyword syntax:
comparisons, exclusive ranges, bitmasks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from signatures.rules.variables import AddressSet, PortSet


@dataclass(frozen=True, slots=True)
class NumCheck:
    """A numeric comparison from dsize, ttl, itype, icode, bsize, icmp_id, icmp_seq, ip_proto."""

    op: str  # "=", "!", "<", ">", "<=", ">=", "<>" and "!<>" (exclusive a..b), "&" and "!&" (mask a, value b)
    a: int
    b: int = 0

    def test(self, v: int) -> bool:
        op = self.op
        if op == "=":
            return v == self.a
        if op == "<":
            return v < self.a
        if op == ">":
            return v > self.a
        if op == "<>":
            return self.a < v < self.b
        if op == "!":
            return v != self.a
        if op == "<=":
            return v <= self.a
        if op == ">=":
            return v >= self.a
        if op == "!<>":
            return not self.a < v < self.b
        if op == "&":
            return v & self.a == self.b
        return v & self.a != self.b  # "!&"


@dataclass(frozen=True, slots=True)
class Content:
    """One `content` with its modifiers; `needle` is lower-cased when nocase."""

    pattern: bytes
    needle: bytes
    nocase: bool = False
    negated: bool = False
    offset: int | None = None
    depth: int | None = None
    distance: int | None = None
    within: int | None = None
    startswith: bool = False
    endswith: bool = False
    fast_pattern: bool = False

    @property
    def relative(self) -> bool:
        return self.distance is not None or self.within is not None


@dataclass(frozen=True, slots=True)
class Pcre:
    """One `pcre`; `relative` (/R) starts where the previous match in the buffer ended."""

    source: str
    regex: re.Pattern[bytes]
    negated: bool = False
    relative: bool = False
    anchored: bool = False


@dataclass(frozen=True, slots=True)
class Bsize:
    """`bsize`: the length of the whole buffer."""

    check: NumCheck


Matcher = Content | Pcre | Bsize


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """`flow`: direction (True to_server, False to_client, None either) and state."""

    to_server: bool | None = None
    established: bool | None = None
    stateless: bool = False


@dataclass(frozen=True, slots=True)
class FlagsCheck:
    """`flags`: mode "exact" (default), "plus" (+), "any" (*), "not" (!); `mask` bits ignored."""

    bits: int
    mode: str
    mask: int = 0xFF

    def test(self, flags: int) -> bool:
        f = flags & self.mask
        if self.mode == "exact":
            return f == self.bits
        if self.mode == "plus":
            return f & self.bits == self.bits
        if self.mode == "any":
            return f & self.bits != 0 if self.bits else f == 0
        return f & self.bits == 0 if self.bits else f != 0


@dataclass(frozen=True, slots=True)
class Threshold:
    """`threshold` (kind limit/threshold/both) or `detection_filter` (kind detection_filter)."""

    kind: str
    track: str  # by_src, by_dst, by_rule, by_both, by_flow
    count: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Flowbit:
    """`flowbits`: op set/unset/toggle/isset/isnotset; `any_of` for `a|b`, else all of `names`."""

    op: str
    names: tuple[str, ...]
    any_of: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule. `buffers` maps buffer name ("payload", "http.uri", ...) to matchers."""

    action: str
    proto: str
    src: AddressSet
    sport: PortSet
    dst: AddressSet
    dport: PortSet
    bidirectional: bool
    sid: int
    gid: int = 1
    rev: int = 0
    msg: str = ""
    classtype: str | None = None
    priority: int = 3
    references: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()
    buffers: tuple[tuple[str, tuple[Matcher, ...]], ...] = ()
    flow: FlowCheck | None = None
    flags: FlagsCheck | None = None
    dsize: NumCheck | None = None
    ttl: NumCheck | None = None
    ip_proto: NumCheck | None = None
    itype: NumCheck | None = None
    icode: NumCheck | None = None
    icmp_id: NumCheck | None = None
    icmp_seq: NumCheck | None = None
    threshold: Threshold | None = None
    detection_filter: Threshold | None = None
    flowbits: tuple[Flowbit, ...] = ()
    noalert: bool = False
    file: str = ""
    line: int = 0
    text: str = field(default="", repr=False)

    def buffer(self, name: str) -> tuple[Matcher, ...]:
        for n, ms in self.buffers:
            if n == name:
                return ms
        return ()
