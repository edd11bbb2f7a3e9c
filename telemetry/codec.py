"""Encoding of a batch: MessagePack through one msgspec encoder/decoder, then zstd (gzip fallback).

`decode_batch` and `decompress` are the collector's input boundary: they return a value or raise a
`telemetry.errors` type (SchemaError naming the field path, EncodingError/BodyTooLarge for bodies), never
anything else. Decompression streams in chunks and stops as soon as the output passes the cap, so a zip
bomb costs at most `max_size` bytes of memory.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from typing import Final

import msgspec
import zstandard

from telemetry.errors import BodyTooLarge, EncodingError, SchemaError, UnsupportedEncoding
from telemetry.schema import (
    MAX_EVENTS,
    MAX_ITEMS,
    SCHEMA_VERSION,
    SUPPORTED_VERSIONS,
    AlertEvent,
    Batch,
    Event,
    ObservationEvent,
)

CONTENT_TYPE: Final = "application/msgpack"
# Where the shipper POSTs, relative to the collector URL of the agent config. The collector answers 200 with
# `{"status": "ok", "seq": N, "duplicate": bool}`, or a 4xx JSON body from `TelemetryError.as_json()`.
INGEST_PATH: Final = "/api/v1/ingest"
ZSTD: Final = "zstd"
GZIP: Final = "gzip"
IDENTITY: Final = "identity"
ENCODINGS: Final = (ZSTD, GZIP, IDENTITY)
# zstd level 9: measured by bench/wire_bytes.py on 5,000-flow batches, level 3 gives 30.8 B/flow at 4 ms/MB,
# level 9 27.2 B/flow at 27 ms/MB (~20 ms per full batch, in a worker thread, zstd releases the GIL), level
# 19 23.5 B/flow at 310 ms/MB. The uplink is the scarce resource on a mesh node, so 9. gzip 6 is zlib's
# default.
ZSTD_LEVEL: Final = 9
GZIP_LEVEL: Final = 6
# Default cap on a decompressed body: 5,000 events (the default batch) of at most ~1 KiB each on average,
# x4 headroom. Collectors pass their own.
MAX_BODY: Final = 32 * 1024 * 1024
_CHUNK: Final = 64 * 1024
# Open-ended values: replay observation fields nest at most 3 deep (dns answers: list of maps), and the
# longest text fields are TLS fingerprint strings (JA3/JA4_r strings of a large ClientHello, ~2 KiB).
MAX_OPEN_DEPTH: Final = 8
MAX_OPEN_TEXT: Final = 4096

_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Batch)
_EVENT_DECODER: Final = msgspec.msgpack.Decoder(Event)
_PATH = re.compile(r" - at `(\$[^`]*)`$")


def encode_batch(batch: Batch) -> bytes:
    """MessagePack body of a batch (uncompressed)."""
    return _ENCODER.encode(batch)


def decode_batch(data: bytes, max_events: int = MAX_EVENTS) -> Batch:
    """Decode and validate a MessagePack batch body; raise SchemaError naming the bad field path."""
    try:
        batch = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise _schema_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise SchemaError("$", f"not MessagePack: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SchemaError("$", f"a string is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise SchemaError("$", "nested too deeply") from None
    if batch.schema not in SUPPORTED_VERSIONS:
        raise SchemaError(
            "$.schema", f"unsupported schema version {batch.schema} (accepted: {sorted(SUPPORTED_VERSIONS)})"
        )
    if len(batch.events) > max_events:
        raise SchemaError("$.events", f"{len(batch.events)} events, more than the limit of {max_events}")
    for index, event in enumerate(batch.events):
        _check_event(event, f"$.events[{index}]")
    return batch


def validate_event(body: bytes) -> Event:
    """Decode and validate one MessagePack-encoded event: what the shipper checks on `submit`, so one bad
    event is refused alone instead of getting a whole batch rejected. Raises SchemaError (paths from `$`)."""
    try:
        event: Event = _EVENT_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise _schema_error(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SchemaError("$", f"not a MessagePack event: {exc}") from None
    _check_event(event, "$")
    return event


def _check_event(event: Event, path: str) -> None:
    if isinstance(event, ObservationEvent):
        _check_open(event.fields, f"{path}.fields", 0)
    elif isinstance(event, AlertEvent):
        _check_open(event.app_fields, f"{path}.app_fields", 0)


def _check_open(value: object, path: str, depth: int) -> None:
    """Open-ended values (`fields`, `app_fields`) must be JSON-like and capped: msgspec types them `Any`."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SchemaError(path, f"{value} is not a finite number (JSON has no NaN or infinity)")
        return
    if isinstance(value, str):
        if len(value) > MAX_OPEN_TEXT:
            raise SchemaError(path, f"string of {len(value)} characters, more than {MAX_OPEN_TEXT}")
        return
    if depth >= MAX_OPEN_DEPTH:
        raise SchemaError(path, f"nested deeper than {MAX_OPEN_DEPTH} levels")
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise SchemaError(path, f"list of {len(value)} items, more than {MAX_ITEMS}")
        for i, item in enumerate(value):
            _check_open(item, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise SchemaError(path, f"map of {len(value)} entries, more than {MAX_ITEMS}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(path, f"map key {key!r} is not a string")
            _check_open(item, f"{path}.{key}", depth + 1)
        return
    raise SchemaError(path, f"{type(value).__name__} is not allowed here (str, int, float, bool, null, list, map)")


def _schema_error(message: str) -> SchemaError:
    match = _PATH.search(message)
    if match is None:
        return SchemaError("$", message)
    return SchemaError(match.group(1), message[: match.start()])


def compress(body: bytes, encoding: str = ZSTD) -> bytes:
    """Compress a body for the given `Content-Encoding` (`zstd`, `gzip`, `identity`)."""
    if encoding == ZSTD:
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(body)
    if encoding == GZIP:
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    if encoding == IDENTITY:
        return body
    raise UnsupportedEncoding(f"unknown Content-Encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def decompress(body: bytes, encoding: str | None, max_size: int = MAX_BODY) -> bytes:
    """Undo `Content-Encoding`; stop with BodyTooLarge as soon as the output passes `max_size` bytes."""
    enc = (encoding or IDENTITY).strip().lower()
    if enc == IDENTITY:
        if len(body) > max_size:
            raise BodyTooLarge(f"body of {len(body)} bytes exceeds the limit of {max_size}")
        return body
    if enc == ZSTD:
        return _unzstd(body, max_size)
    if enc in (GZIP, "x-gzip"):
        return _gunzip(body, max_size)
    raise UnsupportedEncoding(f"unknown Content-Encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def _unzstd(body: bytes, max_size: int) -> bytes:
    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
        with reader:
            while True:
                chunk = reader.read(_CHUNK)
                if not chunk:
                    break
                out += chunk
                if len(out) > max_size:
                    raise BodyTooLarge(f"zstd body expands past the limit of {max_size} bytes")
    except zstandard.ZstdError as exc:
        raise EncodingError(f"corrupt zstd body: {exc}") from None
    return bytes(out)


def _gunzip(body: bytes, max_size: int) -> bytes:
    out = bytearray()
    dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = body
    try:
        while data:
            out += dec.decompress(data, max_size + 1 - len(out))
            if len(out) > max_size:
                raise BodyTooLarge(f"gzip body expands past the limit of {max_size} bytes")
            data = dec.unconsumed_tail
            if dec.eof:
                break
    except zlib.error as exc:
        raise EncodingError(f"corrupt gzip body: {exc}") from None
    if not dec.eof:
        raise EncodingError("truncated gzip body")
    if dec.unused_data:
        raise EncodingError(f"{len(dec.unused_data)} bytes after the gzip stream")
    return bytes(out)


def new_batch(agent_id: str, site: str, seq: int, created: float, events: list[Event]) -> Batch:
    """A current-version batch (values are validated when decoded, not here)."""
    return Batch(schema=SCHEMA_VERSION, agent_id=agent_id, site=site, seq=seq, created=created, events=events)
