"""One small error tree for everything that reads bytes from the outside world.

Parsers raise `DecodeError` and nothing else: the boundary that calls them converts
low-level failures (IndexError, struct.error, ValueError, UnicodeDecodeError) with
`DECODE_EXCEPTIONS`, as python-zeroconf does. `reason` is a short stable slug
("dns.compression_loop", "tcp.bad_offset") used as a counter key in `stats`.
"""

from __future__ import annotations

import struct


class VeilleError(Exception):
    """Root of the project's errors."""


class DecodeError(VeilleError):
    """A packet or message that cannot be decoded; `reason` is a counter key."""

    def __init__(self, reason: str, detail: str = "", offset: int | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}{': ' + detail if detail else ''}")


class CaptureFileError(VeilleError):
    """A capture file that is not a capture, or is cut mid-record."""

    def __init__(self, path: str, offset: int, message: str) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        super().__init__(f"{path}: offset {offset}: {message}")


# Low-level failures that inside-parser code may raise while indexing freely.
DECODE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    IndexError,
    struct.error,
    ValueError,
    UnicodeDecodeError,
    RecursionError,
    OverflowError,
)
