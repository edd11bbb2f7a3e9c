"""EVE JSON lines to a file, rotated by size and by age, as Suricata's eve.json is rotated by logrotate.

The current file is `path`; on rotation it becomes `path.1`, older ones shift up to `path.<keep>` and the
oldest is deleted, so a SIEM shipper (Filebeat, Fluent Bit, rsyslog imfile) that follows `path` by name
picks up the new file. Writes are appended and flushed per call, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from telemetry.eve import EveRecord

_encode = msgspec.json.Encoder().encode


class EveFileSink:
    """Appends EVE records as JSON lines to `path`, rotating at `max_bytes` or every `max_age` seconds."""

    name = "file"

    def __init__(
        self,
        path: str,
        max_bytes: int = 100 * 1024 * 1024,
        max_age: float = 86400.0,
        keep: int = 7,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.keep = keep
        self._clock = clock
        self._handle: IO[bytes] | None = None
        self._opened = 0.0
        self._size = 0
        self.rotations = 0

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
        self._size = self._handle.tell()
        self._opened = self._clock()

    def _rotate(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        if oldest.exists():
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{n}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        self._open()

    def write_lines(self, records: Sequence[EveRecord]) -> None:
        """Append records (blocking; `send` runs this in a thread)."""
        if self._handle is None:
            self._open()
        for record in records:
            line = _encode(record) + b"\n"
            aged = self.max_age > 0 and self._clock() - self._opened >= self.max_age and self._size > 0
            if aged or (self._size > 0 and self._size + len(line) > self.max_bytes):
                self._rotate()
            assert self._handle is not None
            self._handle.write(line)
            self._size += len(line)
        assert self._handle is not None
        self._handle.flush()

    async def send(self, items: Sequence[tuple[str, EveRecord]]) -> None:
        await asyncio.to_thread(self.write_lines, [record for _, record in items])

    async def close(self) -> None:
        if self._handle is not None:
            await asyncio.to_thread(self._handle.close)
            self._handle = None

    def stats(self) -> dict[str, Any]:
        return {"rotations": self.rotations, "bytes": self._size}
