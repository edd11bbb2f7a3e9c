"""Matching one buffer against a rule's ordered content/pcre/bsize list (Suricata semantics).

Absolute contents search [offset, offset+depth); relative ones search
[prev_end+distance, prev_end+distance+within), where prev_end is the end of the previous match
in the same buffer. When a later relative item fails, the previous content is retried at its
next occurrence (Suricata's backtracking), bounded by `MAX_BACKTRACK` steps per buffer, as
Suricata bounds its inspection recursion. Pure functions over bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from signatures.rules.model import Bsize, Content, Matcher, Pcre

# Suricata's detect.inspection-recursion-limit default (suricata.yaml) is 3000.
MAX_BACKTRACK = 3000


class BufferProgram:
    """A buffer's matchers, precompiled for repeated evaluation."""

    __slots__ = ("items", "needs_lower", "rel_after")

    def __init__(self, items: Sequence[Matcher]) -> None:
        self.items = tuple(items)
        self.needs_lower = any(isinstance(m, Content) and m.nocase for m in self.items)
        # rel_after[i]: some item after i is positioned relative to an earlier match.
        rel: list[bool] = []
        later = False
        for m in reversed(self.items):
            rel.append(later)
            later = later or (isinstance(m, Content) and m.relative) or (isinstance(m, Pcre) and m.relative)
        self.rel_after = tuple(reversed(rel))

    def match(self, buf: bytes | bytearray) -> bool:
        """Whether the whole list matches `buf`."""
        low = buf.lower() if self.needs_lower else buf
        return _match(self, buf, low, 0, 0, [MAX_BACKTRACK])


def _match(prog: BufferProgram, buf: bytes | bytearray, low: bytes | bytearray, i: int, prev_end: int,
           budget: list[int]) -> bool:  # fmt: skip
    items = prog.items
    n = len(buf)
    while i < len(items):
        m = items[i]
        if isinstance(m, Content):
            plen = len(m.needle)
            if m.relative:
                start = prev_end + (m.distance or 0)
                end = start + m.within if m.within is not None else n
            else:
                start = m.offset or 0
                end = start + m.depth if m.depth is not None else n
                if m.startswith:
                    end = plen
            start = max(start, 0)
            end = min(end, n)
            hay = low if m.nocase else buf
            if m.endswith:
                pos = n - plen
                found = pos if pos >= start and n <= end and hay[pos:n] == m.needle else -1
            else:
                found = hay.find(m.needle, start, end) if end - start >= plen else -1
            if m.negated:
                if found >= 0:
                    return False
                i += 1
                continue
            if found < 0:
                return False
            if not prog.rel_after[i]:
                prev_end = found + plen
                i += 1
                continue
            while found >= 0:
                if _match(prog, buf, low, i + 1, found + plen, budget):
                    return True
                budget[0] -= 1
                if budget[0] <= 0 or m.endswith:
                    return False
                found = hay.find(m.needle, found + 1, end) if end - found - 1 >= plen else -1
            return False
        if isinstance(m, Pcre):
            if m.relative:
                base = max(prev_end, 0)
                hit = (m.regex.match if m.anchored else m.regex.search)(bytes(buf[base:]))
                hit_end = base + hit.end() if hit is not None else 0
            else:
                hit = (m.regex.match if m.anchored else m.regex.search)(buf)
                hit_end = hit.end() if hit is not None else 0
            if m.negated:
                if hit is not None:
                    return False
            else:
                if hit is None:
                    return False
                prev_end = hit_end
            i += 1
            continue
        if isinstance(m, Bsize) and not m.check.test(n):
            return False
        i += 1
    return True


def fast_pattern(items: Sequence[Matcher]) -> Content | None:
    """The content the prefilter looks for: the one marked fast_pattern, else the longest positive."""
    best: Content | None = None
    for m in items:
        if isinstance(m, Content) and not m.negated:
            if m.fast_pattern:
                return m
            if best is None or len(m.pattern) > len(best.pattern):
                best = m
    return best
