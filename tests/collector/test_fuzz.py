"""Fuzz the ingest endpoint of a real collector (own thread and event loop, real SQLite file).

Invariant, as h11's fuzzer states it for its parser: every request gets a 2xx or a 4xx with a JSON body
naming the problem, never a 5xx; and a refused batch stores nothing (the batch ledger only grows on 200).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import run_collector
from collector.auth import hash_token, new_token
from telemetry.codec import encode_batch, new_batch
from telemetry.signing import generate_secret, sign

from .conftest import T0, alert, config_for, device, drop_pg_schema, flow, health, new_pg_url, require_pg

AGENT, SITE = "agent-fuzz", "school-a"
SECRET = generate_secret()


class Server:
    def __init__(self, db: str) -> None:
        self.db = db
        self.port = 0
        self.token = ""
        self.store: Any = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_collector(config_for(self.db, rate=0.0)) as running:
            await running.store.add_agent(AGENT, SITE, SECRET, time.time())
            token_id, self.token = new_token()
            await running.store.add_token(token_id, "fuzz", "viewer", [SITE], hash_token(self.token), time.time())
            self.port = running.port
            self.store = running.store
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def post(
        self, body: bytes, encoding: str, signed: bool = True, extra: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Encoding": encoding, "Content-Type": "application/msgpack"}
        if signed:
            headers.update(sign(AGENT, SECRET, body, time.time()))
        headers.update(extra or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/api/v1/ingest", body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(raw) if raw else None

    def get(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(raw) if raw else None

    def batches(self) -> int:
        assert self._loop is not None and self.store is not None
        rows = asyncio.run_coroutine_threadsafe(self.store.fetch("SELECT COUNT(*) AS n FROM batches"), self._loop)
        return int(rows.result(30)[0]["n"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if request.param == "sqlite":
        with Server(str(tmp_path_factory.mktemp("fuzz") / "c.db")) as srv:
            yield srv
        return
    require_pg()
    url = new_pg_url()
    try:
        with Server(url) as srv:
            yield srv
    finally:
        asyncio.run(drop_pg_schema(url))


def wire(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    if encoding == "gzip":
        return gzip.compress(body)
    return body


def check(server: Server, body: bytes, encoding: str, **kw: Any) -> int:
    before = server.batches()
    status, payload = server.post(body, encoding, **kw)
    assert status < 500, payload
    if status == 200:
        assert payload["status"] == "ok"
    else:
        assert 400 <= status < 500 and isinstance(payload["error"], str) and payload["detail"]
        assert server.batches() == before, payload
    return status


# Sequence numbers past 2**32 all encode in 9 bytes, so examples replay identically (hypothesis).
_SEQ = iter(range(10**12, 10**13))
VALID = encode_batch(new_batch(AGENT, SITE, 0, T0, [flow(1), device("02:00:00:00:00:01"), alert(2), health()]))
ENCODINGS = st.sampled_from(["zstd", "gzip", "identity", "br", "x-gzip", "", "ZSTD", "compress"])
# VEILLE_FUZZ_EXAMPLES raises the number of examples for a longer run (default 150 per test).
FUZZ = settings(
    max_examples=int(os.environ.get("VEILLE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(body=st.binary(max_size=4096), encoding=ENCODINGS, compress_it=st.booleans())
def test_random_bodies(server: Server, body: bytes, encoding: str, compress_it: bool) -> None:
    check(server, wire(body, encoding) if compress_it else body, encoding)


@FUZZ
@given(data=st.data(), encoding=st.sampled_from(["zstd", "gzip", "identity"]))
def test_mutated_valid_batches(server: Server, data: st.DataObject, encoding: str) -> None:
    raw = bytearray(msgpack.packb({**msgpack.unpackb(VALID), "seq": next(_SEQ)}))
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and raw:
            del raw[pos : pos + data.draw(st.integers(1, 16))]
        elif op == "truncate":
            del raw[pos:]
    check(server, wire(bytes(raw), encoding), encoding)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EVENT_KEYS = [
    "type",
    "ts",
    "sid",
    "msg",
    "mac",
    "first_seen",
    "last_seen",
    "evidence",
    "t0",
    "t1",
    "p",
    "s",
    "sp",
    "d",
    "dp",
    "kind",
    "fields",
    "app_fields",
    "names",
    "os",
    "severity",
]


@FUZZ
@given(
    events=st.lists(
        st.dictionaries(st.sampled_from(EVENT_KEYS), VALUES, max_size=8).map(
            lambda d: {"type": "alert", **d} if "type" not in d else d
        ),
        max_size=6,
    ),
    envelope=st.dictionaries(st.sampled_from(["schema", "agent_id", "site", "seq", "created"]), VALUES, max_size=3),
)
def test_structured_random_batches(server: Server, events: list[dict[str, Any]], envelope: dict[str, Any]) -> None:
    doc = {"schema": 2, "agent_id": AGENT, "site": SITE, "seq": next(_SEQ), "created": T0, "events": events}
    doc.update(envelope)
    try:
        body = msgpack.packb(doc)
    except (OverflowError, ValueError, TypeError):
        return
    check(server, wire(body, "zstd"), "zstd")


def test_huge_values_and_wrong_encodings(server: Server) -> None:
    base = msgpack.unpackb(VALID)
    huge_msg = {**base, "seq": next(_SEQ), "events": [{"type": "alert", "ts": 1.0, "sid": 1, "msg": "x" * 100_000}]}
    assert check(server, wire(msgpack.packb(huge_msg), "zstd"), "zstd") == 422
    many = {**base, "seq": next(_SEQ), "events": [{"type": "alert", "ts": 1.0, "sid": 1, "msg": "x"}] * 20_001}
    assert check(server, wire(msgpack.packb(many), "zstd"), "zstd") == 422
    # 100,000 nested one-element arrays (msgpack's own packer refuses to build this, so splice it in).
    nested = {**base, "seq": next(_SEQ), "events": [{"type": "obs", "ts": 1.0, "kind": "x", "fields": {"a": "DEEP"}}]}
    deep = msgpack.packb(nested).replace(msgpack.packb("DEEP"), b"\x91" * 100_000 + b"\xc0")
    assert check(server, wire(deep, "zstd"), "zstd") == 422
    # Compressed with one codec, announced as another; a zstd frame announced as identity.
    assert check(server, wire(VALID, "gzip"), "zstd") == 400
    assert check(server, wire(VALID, "zstd"), "gzip") == 400
    assert check(server, wire(VALID, "zstd"), "identity") == 422
    assert check(server, wire(VALID, "zstd"), "br") == 415
    # Unsigned and badly signed requests are refused before the body is looked at.
    assert check(server, wire(VALID, "zstd"), "zstd", signed=False) == 401
    assert check(server, b"\xff" * 100, "zstd", extra={"X-Veille-Agent": "a" * 1000}) == 401
    # A body larger than the compressed cap (8 MiB default).
    assert check(server, b"\x00" * (9 * 1024 * 1024), "identity") == 413


PATHS = st.sampled_from(
    [
        "/api/v1/devices",
        "/api/v1/alerts",
        "/api/v1/agents",
        "/api/v1/sites",
        "/api/v1/audit",
        f"/api/v1/sites/{SITE}/top-talkers",
        f"/api/v1/agents/{AGENT}/health",
        f"/api/v1/devices/{SITE}/x",
    ]
)
PARAMS = st.sampled_from(
    [
        "limit",
        "offset",
        "site",
        "type",
        "vendor",
        "os",
        "randomized",
        "since",
        "until",
        "q",
        "sort",
        "sid",
        "severity",
        "mac",
        "token_id",
    ]
)
PARAM_VALUES = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(str), st.text(max_size=300))


@FUZZ
@given(path=PATHS, params=st.dictionaries(PARAMS, PARAM_VALUES, max_size=5))
def test_query_parameters_never_cause_a_server_error(server: Server, path: str, params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    status, payload = server.get(f"{path}?{urlencode(params)}")
    assert status < 500, payload
    if status >= 400:
        assert payload["error"] in {"bad_parameter", "forbidden", "not_found"}, payload


def test_out_of_range_numbers_are_bad_parameters(server: Server) -> None:
    for query in (f"offset={2**70}", f"sid={2**64}", "since=1e400", "limit=-1", "since=nan", "until=inf"):
        status, payload = server.get(f"/api/v1/alerts?{query}")
        assert (status, payload["error"]) == (400, "bad_parameter"), (query, payload)


def test_integers_past_bigint_are_schema_errors(server: Server) -> None:
    base = msgpack.unpackb(VALID)
    big = 2**64 - 1
    cases = {
        "$.seq": {**base, "seq": big},
        "$.events[0]": {**base, "seq": next(_SEQ), "events": [{"type": "alert", "ts": 1.0, "sid": big, "msg": "x"}]},
        "$.events": {
            **base,
            "seq": next(_SEQ),
            "events": [
                {
                    "type": "flow",
                    "t0": 1.0,
                    "t1": 2.0,
                    "p": "tcp",
                    "s": "192.0.2.1",
                    "sp": 1,
                    "d": "192.0.2.2",
                    "dp": 2,
                    "bf": 2**62 + i,
                }
                for i in range(3)
            ],
        },
    }
    for field, doc in cases.items():
        before = server.batches()
        status, payload = server.post(wire(msgpack.packb(doc), "zstd"), "zstd")
        assert (status, payload["error"], payload["field"]) == (422, "schema", field), payload
        assert server.batches() == before
