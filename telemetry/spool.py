"""Crash-safe on-disk spool of batches waiting for the collector, and the never-reused sequence counter.

Layout under the spool folder:
    seq                                  highest reserved sequence number (text), replaced atomically
    pending/<seq:020d>.<kinds>.<ext>     one compressed batch body per file, exactly as it will be sent;
                                         `kinds` lists the event types inside (f=flow d=device a=alert
                                         h=health o=obs) so shedding needs no decoding to pick a file
    rejected/<name> + <name>.reason.json batches the collector refused as invalid: kept, never deleted
    corrupt/<name> + <name>.reason.json  files that could not be read back: moved aside, counted

Every write goes to a temp name, is fsynced, renamed, then the folder is fsynced: after a crash a file is
either complete or absent (temp leftovers are removed on open). Sequence numbers are reserved in blocks:
the counter file always holds a number above every one handed out, so a crash skips numbers but never
reuses one. When a new batch does not fit under `max_bytes`, events are shed in `SHED_ORDER` (flow
summaries and observations first, alerts last), first from the incoming batch, then from spooled batches
oldest first; what is shed is counted per kind. Synchronous and blocking: the shipper calls it from a
worker thread.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from telemetry.codec import GZIP, IDENTITY, MAX_BODY, ZSTD, compress, decode_batch, decompress, encode_batch
from telemetry.errors import TelemetryError
from telemetry.schema import Batch, Event, event_type

SHED_ORDER: Final = ("obs", "flow", "health", "device", "alert")
_LETTER: Final = {"flow": "f", "device": "d", "alert": "a", "health": "h", "obs": "o"}
_EXT: Final = {ZSTD: "zst", GZIP: "gz", IDENTITY: "mp"}
_ENCODING_OF: Final = {ext: enc for enc, ext in _EXT.items()}
_NAME: Final = re.compile(r"^(\d{20})\.([adfho]*)\.(zst|gz|mp)$")
# 64 numbers per counter write: one fsync per 64 batches, at most 64 numbers skipped per crash.
SEQ_BLOCK: Final = 64


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A batch read back from the spool, ready to send."""

    seq: int
    body: bytes
    encoding: str
    events: int


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    path: Path
    size: int
    kinds: frozenset[str]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that after a crash the file is either the old one or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # e.g. ENOSPC: leave no half file behind
        raise
    _fsync_dir(path.parent)


class SeqCounter:
    """Per-agent batch sequence numbers, persisted in blocks so none is ever handed out twice."""

    def __init__(self, path: Path, floor: int = 1, block: int = SEQ_BLOCK) -> None:
        self._path = path
        self._block = block
        stored = 0
        try:
            text = path.read_text(encoding="ascii").strip()
            stored = int(text) if text.isdigit() else 0
        except (OSError, UnicodeDecodeError):
            stored = 0
        self._next = self._reserved = max(stored, floor)

    def next(self) -> int:
        """The next sequence number; writes and fsyncs the counter once per block."""
        if self._next >= self._reserved:
            self._reserved = self._next + self._block
            write_atomic(self._path, f"{self._reserved}\n".encode())
        seq = self._next
        self._next += 1
        return seq


class Spool:
    """The bounded spool folder; see the module docstring."""

    def __init__(self, root: Path, max_bytes: int, encoding: str = ZSTD, max_body: int = MAX_BODY) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.encoding = encoding
        self.max_body = max_body
        self.pending_dir = root / "pending"
        self.rejected_dir = root / "rejected"
        self.corrupt_dir = root / "corrupt"
        for folder in (self.pending_dir, self.rejected_dir, self.corrupt_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.shed: Counter[str] = Counter()
        self.corrupt = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self._bytes = 0
        self._recover()
        highest = max(self._all_seqs(), default=0)
        self.seq = SeqCounter(root / "seq", floor=highest + 1)

    # -- recovery -------------------------------------------------------------------------------------
    def _recover(self) -> None:
        for path in sorted(self.pending_dir.iterdir()):
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                continue
            match = _NAME.match(path.name)
            if match is None:
                self._move_aside(path, "file name is not <seq>.<kinds>.<ext>")
                continue
            seq = int(match.group(1))
            entry = _Entry(seq, path, path.stat().st_size, frozenset(match.group(2)))
            old = self._entries.get(seq)
            if old is not None:
                # A crash between writing a shed copy and removing the original: keep the smaller (shed).
                keep, drop = (old, entry) if old.size <= entry.size else (entry, old)
                drop.path.unlink(missing_ok=True)
                entry = keep
            self._add(entry)
        _fsync_dir(self.pending_dir)

    def _all_seqs(self) -> Iterable[int]:
        yield from self._entries
        for folder in (self.rejected_dir, self.corrupt_dir):
            for path in folder.iterdir():
                match = _NAME.match(path.name)
                if match:
                    yield int(match.group(1))

    def _move_aside(self, path: Path, reason: str) -> None:
        self.corrupt += 1
        target = self.corrupt_dir / path.name
        os.replace(path, target)
        write_atomic(
            self.corrupt_dir / (path.name + ".reason.json"),
            json.dumps({"reason": reason, "time": time.time()}).encode(),
        )
        _fsync_dir(self.pending_dir)

    # -- state ----------------------------------------------------------------------------------------
    @property
    def bytes_used(self) -> int:
        """Bytes of batch files waiting in `pending/`."""
        return self._bytes

    def _add(self, entry: _Entry) -> None:
        self._remove(entry.seq)
        self._entries[entry.seq] = entry
        self._bytes += entry.size

    def _remove(self, seq: int) -> _Entry | None:
        entry = self._entries.pop(seq, None)
        if entry is not None:
            self._bytes -= entry.size
        return entry

    def pending(self) -> list[int]:
        """Sequence numbers waiting, oldest first."""
        with self._lock:
            return sorted(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def next_seq(self) -> int:
        """Reserve the next sequence number (see SeqCounter)."""
        with self._lock:
            return self.seq.next()

    # -- writing --------------------------------------------------------------------------------------
    def _encode(self, batch: Batch) -> bytes:
        return compress(encode_batch(batch), self.encoding)

    def _write(self, batch: Batch, body: bytes) -> _Entry:
        kinds = frozenset(_LETTER[event_type(e)] for e in batch.events)
        name = f"{batch.seq:020d}.{''.join(sorted(kinds))}.{_EXT[self.encoding]}"
        path = self.pending_dir / name
        write_atomic(path, body)
        return _Entry(batch.seq, path, len(body), kinds)

    def put(self, batch: Batch) -> bool:
        """Store a batch, shedding events if the spool is full; False if nothing of it could be kept.

        Raises OSError when the disk refuses the write (the caller counts the batch as shed).
        """
        with self._lock:
            body = self._encode(batch)
            free = self.max_bytes - self.bytes_used
            if len(body) > free:
                kept = self._make_room(batch, len(body))
                if kept is None:
                    return False
                batch, body = kept
            if not batch.events:
                return False
            self._add(self._write(batch, body))
            return True

    def _make_room(self, batch: Batch, size: int) -> tuple[Batch, bytes] | None:
        body = b""
        for kind in SHED_ORDER:
            letter = _LETTER[kind]
            if any(event_type(e) == kind for e in batch.events):
                batch = self._drop(batch, kind)
                body = self._encode(batch)
                size = len(body)
                if not batch.events:
                    return None
                if size <= self.max_bytes - self.bytes_used:
                    return batch, body
            for entry in sorted((e for e in self._entries.values() if letter in e.kinds), key=lambda e: e.seq):
                self._shed_entry(entry, kind)
                if size <= self.max_bytes - self.bytes_used:
                    return batch, body or self._encode(batch)
        for event in batch.events:
            self.shed[event_type(event)] += 1
        return None

    def _drop(self, batch: Batch, kind: str) -> Batch:
        kept: list[Event] = [e for e in batch.events if event_type(e) != kind]
        self.shed[kind] += len(batch.events) - len(kept)
        return Batch(batch.schema, batch.agent_id, batch.site, batch.seq, batch.created, kept)

    def _shed_entry(self, entry: _Entry, kind: str) -> None:
        read = self._read(entry)
        if read is None:
            return
        smaller = self._drop(read[0], kind)
        if smaller.events:
            new = self._write(smaller, self._encode(smaller))
            self._add(new)
            if new.path != entry.path:
                entry.path.unlink(missing_ok=True)
        else:
            self._remove(entry.seq)
            entry.path.unlink(missing_ok=True)
        _fsync_dir(self.pending_dir)

    # -- reading and retiring -------------------------------------------------------------------------
    def _read(self, entry: _Entry) -> tuple[Batch, bytes] | None:
        """The batch and its body as stored; None (file moved to corrupt/) if it does not decode.

        An OSError reading it propagates: a failing disk is not a corrupt file.
        """
        raw = entry.path.read_bytes()
        try:
            batch = decode_batch(decompress(raw, _ENCODING_OF[entry.path.suffix.lstrip(".")], self.max_body))
            if batch.seq != entry.seq:
                raise TelemetryError(f"holds seq {batch.seq}, its name says {entry.seq}")
        except TelemetryError as exc:
            self._remove(entry.seq)
            self._move_aside(entry.path, str(exc))
            return None
        return batch, raw

    def load(self, seq: int) -> SpooledBatch | None:
        """Read a spooled batch back; a corrupt file is moved to `corrupt/`, counted, and None returned."""
        with self._lock:
            entry = self._entries.get(seq)
            if entry is None:
                return None
            read = self._read(entry)
            if read is None:
                return None
            batch, body = read
            return SpooledBatch(seq, body, _ENCODING_OF[entry.path.suffix.lstrip(".")], len(batch.events))

    def ack(self, seq: int) -> None:
        """The collector stored this batch: remove it."""
        with self._lock:
            entry = self._remove(seq)
            if entry is not None:
                entry.path.unlink(missing_ok=True)
                _fsync_dir(self.pending_dir)

    def reject(self, seq: int, status: int, reason: str, detail: str) -> None:
        """The collector refused this batch as invalid: move it to `rejected/` with the reason."""
        with self._lock:
            entry = self._remove(seq)
            if entry is None:
                return
            self.rejected += 1
            target = self.rejected_dir / entry.path.name
            os.replace(entry.path, target)
            info = {"seq": seq, "status": status, "reason": reason, "detail": detail, "time": time.time()}
            write_atomic(self.rejected_dir / (entry.path.name + ".reason.json"), json.dumps(info).encode())
            _fsync_dir(self.pending_dir)
