"""GREASE values (RFC 8701): reserved code points that clients sprinkle to keep peers honest.

Cipher suites, extensions, groups, signature algorithms and versions all use the 16 values
0x0A0A, 0x1A1A, ... 0xFAFA. Fingerprints drop them so that one client keeps one fingerprint.
"""

from __future__ import annotations

GREASE: frozenset[int] = frozenset(0x0A0A + 0x1010 * i for i in range(16))  # RFC 8701 §2


def is_grease(value: int) -> bool:
    """True for one of the 16 RFC 8701 GREASE code points."""
    return value in GREASE


def strip_grease(values: tuple[int, ...] | list[int]) -> list[int]:
    """The values in order with the GREASE code points removed."""
    return [v for v in values if v not in GREASE]
