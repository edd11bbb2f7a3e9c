"""Multi-pattern prefilter: which rules' fast patterns occur in a buffer, in one pass.

Hyperscan (each pattern reported once per scan) when its module imports; else one caseless
pyahocorasick automaton over ASCII-lowered data, latin-1 mapped so every byte is one character
(case-sensitive patterns over-select there; candidates are always verified by the rule).
Distinct (pattern, nocase) pairs are compiled once and map to the rules that chose them, so
10,000 rules cost one scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

try:
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform's wheel
    HAVE_HYPERSCAN = False

import ahocorasick


class Prefilter:
    """Built from (pattern, nocase, rule_index) triples; `scan(data)` -> set of rule indices."""

    def __init__(self, entries: Iterable[tuple[bytes, bool, int]], backend: str | None = None) -> None:
        keys: dict[tuple[bytes, bool], int] = {}
        owners: list[list[int]] = []
        for pattern, nocase, rule in entries:
            key = (pattern.lower() if nocase else pattern, nocase)
            idx = keys.get(key)
            if idx is None:
                idx = keys[key] = len(owners)
                owners.append([])
            owners[idx].append(rule)
        self.owners: tuple[tuple[int, ...], ...] = tuple(tuple(o) for o in owners)
        self.patterns: tuple[tuple[bytes, bool], ...] = tuple(keys)
        self.max_len = max((len(p) for p, _ in self.patterns), default=0)
        self.backend = backend or ("hyperscan" if HAVE_HYPERSCAN else "ahocorasick")
        self._hs: Any = None
        self._scratch: Any = None
        self._ac: Any = None
        if not self.patterns:
            return
        if self.backend == "hyperscan":
            self._build_hyperscan()
        else:
            self._build_ahocorasick()

    def __len__(self) -> int:
        return len(self.patterns)

    def _build_hyperscan(self) -> None:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        flags = [
            hyperscan.HS_FLAG_SINGLEMATCH | (hyperscan.HS_FLAG_CASELESS if nocase else 0) for _, nocase in self.patterns
        ]
        # Patterns go in as regexes with every byte escaped: the literal API of the binding
        # takes C strings and stops at a NUL byte, which content patterns often hold.
        db.compile(
            expressions=[_hs_escape(p) for p, _ in self.patterns],
            ids=list(range(len(self.patterns))),
            elements=len(self.patterns),
            flags=flags,
        )
        self._hs = db
        self._scratch = hyperscan.Scratch(db)

    def _build_ahocorasick(self) -> None:
        # One caseless automaton (all patterns lower-cased, data lower-cased): case-sensitive
        # patterns then over-select, which is safe since every candidate rule is verified, and it
        # halves the passes of a library that runs at tens of MB/s.
        auto = ahocorasick.Automaton()
        for idx, (pattern, _) in enumerate(self.patterns):
            word = pattern.lower().decode("latin-1")
            if word in auto:
                auto.get(word).append(idx)
            else:
                auto.add_word(word, [idx])
        auto.make_automaton()
        self._ac = auto

    def scan(self, data: bytes | bytearray) -> set[int]:
        """Indices of the rules whose fast pattern occurs in `data`."""
        if not data or not self.patterns:
            return set()
        hits: list[int] = []
        if self._hs is not None:
            add = hits.append

            def on_match(pid: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
                add(pid)

            self._hs.scan(data, match_event_handler=on_match, scratch=self._scratch)
        else:
            for _, ids in self._ac.iter(bytes(data).lower().decode("latin-1")):
                hits.extend(ids)
        out: set[int] = set()
        owners = self.owners
        for pid in set(hits):
            out.update(owners[pid])
        return out


_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _hs_escape(pattern: bytes) -> bytes:
    return b"".join(bytes([c]) if c in _SAFE else b"\\x%02x" % c for c in pattern)


def build(entries: Sequence[tuple[bytes, bool, int]], backend: str | None = None) -> Prefilter:
    """A prefilter over the given (pattern, nocase, rule index) triples."""
    return Prefilter(entries, backend)
