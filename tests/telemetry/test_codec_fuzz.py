"""Property tests: decode_batch on random and mutated bytes raises SchemaError only; decompress raises
EncodingError (or its subclasses) only; whatever is accepted re-encodes to a batch plain msgpack reads."""

from __future__ import annotations

import contextlib

import msgpack
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.codec import compress, decode_batch, decompress, encode_batch, new_batch
from telemetry.errors import EncodingError, SchemaError

from .test_codec import sample_events

VALID = encode_batch(new_batch("agent-1", "school-a", 9, 1732270006.0, sample_events()))
FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def check(data: bytes) -> None:
    try:
        batch = decode_batch(data)
    except SchemaError as exc:
        assert exc.path.startswith("$")
        return
    # Accepted: re-encoded (what a collector stores or forwards) it round-trips and plain msgpack reads it.
    # (The input itself may hold unknown keys msgspec skips unread, e.g. with invalid UTF-8.)
    again = encode_batch(batch)
    assert msgpack.unpackb(again)["seq"] == batch.seq
    assert encode_batch(decode_batch(again)) == again  # (bytes, not ==: a NaN in a float field is allowed)
    msgspec.json.encode(batch)  # and a collector can store it as JSON: no bytes, ext or non-str keys


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.data())
def test_mutated_batches(data: st.DataObject) -> None:
    body = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del body[pos:]
        elif op == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif body:
            del body[pos : pos + data.draw(st.integers(1, 8))]
    check(bytes(body))


ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(ANY_VALUE)
def test_structured_garbage(value) -> None:
    check(msgpack.packb({"schema": 2, "agent_id": "a", "site": "s", "seq": 1, "created": 1.0, "events": [value]}))


@FUZZ
@given(st.dictionaries(st.text(max_size=6), ANY_VALUE, max_size=4))
def test_open_fields(fields) -> None:
    for event in (
        {"type": "obs", "ts": 1.0, "kind": "x", "fields": fields},
        {"type": "alert", "ts": 1.0, "sid": 1, "msg": "m", "app_fields": fields},
    ):
        check(msgpack.packb({"schema": 2, "agent_id": "a", "site": "s", "seq": 1, "created": 1.0, "events": [event]}))


def test_deep_nesting() -> None:
    deep = b"\x91" * 100_000 + b"\xc0"  # 100,000 nested one-element arrays
    check(deep)
    check(b"\x81\xa6events" + deep)


@FUZZ
@given(st.binary(max_size=256), st.sampled_from(["zstd", "gzip", "identity"]))
def test_decompress_random(data: bytes, encoding: str) -> None:
    with contextlib.suppress(EncodingError):
        decompress(data, encoding, 4096)


@FUZZ
@given(st.data(), st.sampled_from(["zstd", "gzip"]))
def test_decompress_mutated(data: st.DataObject, encoding: str) -> None:
    body = bytearray(compress(VALID, encoding))
    pos = data.draw(st.integers(0, len(body) - 1))
    body[pos] ^= data.draw(st.integers(1, 255))
    try:
        out = decompress(bytes(body), encoding, 1 << 20)
    except EncodingError:
        return
    check(out)
