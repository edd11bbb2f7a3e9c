"""Ingest through a real aiohttp server on loopback into real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import time

import msgpack
import zstandard

from telemetry.codec import compress

from .conftest import Harness, alert, device, flow, health


async def counts(h: Harness) -> dict[str, int]:
    out = {}
    for table in ("batches", "alerts", "health", "devices", "evidence", "observations"):
        rows = await h.store.fetch(f"SELECT COUNT(*) AS n FROM {table}")
        out[table] = int(rows[0]["n"])
    rows = await h.store.fetch("SELECT COALESCE(SUM(flows), 0) AS n FROM flow_hourly")
    out["flows"] = int(rows[0]["n"])
    return out


async def test_signed_batch_is_stored_once_and_duplicate_is_ignored(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    events = [flow(i) for i in range(50)] + [device("02:00:00:00:00:01"), alert(1), alert(2), health()]
    seq, body = harness.batch_body(agent, events)
    status, payload, _ = await harness.post(agent, body)
    assert status == 200, payload
    assert payload == {"status": "ok", "seq": seq, "duplicate": False, "events": 54}
    first = await counts(harness)
    # 50 flows, each counted for the source device and for the gateway MAC.
    assert first == {
        "batches": 1,
        "alerts": 2,
        "health": 1,
        "devices": 1,
        "evidence": 2,
        "observations": 0,
        "flows": 100,
    }
    status, payload, _ = await harness.post(agent, body, encoding="gzip")
    assert status == 200
    assert payload["duplicate"] is True
    assert await counts(harness) == first
    rows = await harness.store.fetch("SELECT batches, events, last_seq, version FROM agents")
    assert rows == [{"batches": 1, "events": 54, "last_seq": seq, "version": "0.1.0"}]


async def test_identity_and_gzip_encodings_are_accepted(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    for encoding in ("identity", "gzip", "zstd"):
        _, body = harness.batch_body(agent, [alert(1)])
        status, payload, _ = await harness.post(agent, body, encoding=encoding)
        assert (status, payload["duplicate"]) == (200, False), (encoding, payload)
    assert (await counts(harness))["alerts"] == 3


async def test_refusals_name_the_problem(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    _, body = harness.batch_body(agent, [alert(1)])
    status, payload, _ = await harness.post(agent, body, secret="not-the-secret")
    assert (status, payload["error"]) == (401, "bad_signature")
    stranger = type(agent)("agent-unknown", "school-a", "whatever")
    status, payload, _ = await harness.post(stranger, body)
    assert (status, payload["error"]) == (401, "unknown_agent")
    status, payload, _ = await harness.post(agent, body, now=time.time() - 3600)
    assert (status, payload["error"]) == (401, "clock_skew")
    status, payload, _ = await harness.post(agent, body, headers={"X-Veille-Signature": "zz"})
    assert (status, payload["error"]) == (401, "malformed_header")
    assert await harness.store.revoke_agent(agent.agent_id, time.time())
    status, payload, _ = await harness.post(agent, body)
    assert (status, payload["error"]) == (403, "revoked_agent")
    assert (await counts(harness))["batches"] == 0


async def test_schema_error_names_the_field(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    raw = {
        "schema": 2,
        "agent_id": agent.agent_id,
        "site": "school-a",
        "seq": 1,
        "created": 1.0,
        "events": [{"type": "alert", "ts": 1.0, "sid": 1, "msg": "x"}] * 3
        + [{"type": "alert", "ts": 1.0, "sid": "one", "msg": "x"}],
    }
    status, payload, _ = await harness.post(agent, msgpack.packb(raw))
    assert status == 422
    assert payload["error"] == "schema"
    assert payload["field"] == "$.events[3].sid"
    rows = await harness.store.fetch("SELECT rejected, last_reject FROM agents")
    assert rows == [{"rejected": 1, "last_reject": "schema"}]
    assert (await counts(harness))["batches"] == 0


async def test_batch_for_another_site_or_agent_is_refused(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    await harness.agent("school-b", "agent-b")
    _, body = harness.batch_body(agent, [alert(1)], site="school-b")
    status, payload, _ = await harness.post(agent, body)
    assert (status, payload["error"], payload["field"]) == (422, "site_mismatch", "$.site")
    raw = msgpack.unpackb(harness.batch_body(agent, [alert(1)])[1])
    raw["agent_id"] = "agent-b"
    status, payload, _ = await harness.post(agent, msgpack.packb(raw))
    assert (status, payload["error"]) == (422, "agent_mismatch")
    assert (await counts(harness))["alerts"] == 0


async def test_zip_bomb_is_refused_without_expanding(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    agent = await h.agent("school-a")
    bomb_plain = b"\x00" * (64 * 1024 * 1024)  # 64 MiB of zeros, twice the decompressed cap
    for encoding, wire in (
        ("zstd", zstandard.ZstdCompressor(level=19).compress(bomb_plain)),
        ("gzip", gzip.compress(bomb_plain, 9)),
    ):
        assert len(wire) < 100_000
        status, payload, _ = await h.post(agent, wire, encoding=encoding, compressed=True)
        assert (status, payload["error"]) == (413, "too_large"), encoding
    assert (await counts(h))["batches"] == 0


async def test_oversized_body_and_too_many_events(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from collector.app import run_collector

    from .conftest import config_for

    config = config_for(str(tmp_path / "c.db"), max_body=4096, max_events=10)
    async with run_collector(config) as running, aiohttp.ClientSession() as session:
        h = Harness(running, session, {})
        agent = await h.agent("school-a")
        _, body = h.batch_body(agent, [flow(i) for i in range(11)])
        status, payload, _ = await h.post(agent, body)
        assert (status, payload["error"], payload["field"]) == (422, "schema", "$.events")
        big = compress(b"\x01" * 10_000, "identity")
        status, payload, _ = await h.post(agent, big, encoding="identity", compressed=True)
        assert (status, payload["error"]) == (413, "too_large")
        assert (await counts(h))["batches"] == 0


async def test_per_agent_rate_limit_answers_429_with_retry_after(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from collector.app import run_collector

    from .conftest import config_for

    config = config_for(str(tmp_path / "c.db"), rate=1.0, burst=3)
    async with run_collector(config) as running, aiohttp.ClientSession() as session:
        h = Harness(running, session, {})
        agent = await h.agent("school-a")
        other = await h.agent("school-b")
        statuses = []
        for _ in range(5):
            _, body = h.batch_body(agent, [alert(1)])
            status, payload, headers = await h.post(agent, body)
            statuses.append(status)
        assert statuses[:3] == [200, 200, 200]
        assert 429 in statuses[3:]
        assert payload["error"] == "rate_limited"
        assert int(headers["Retry-After"]) >= 1
        _, body = h.batch_body(other, [alert(1)])
        assert (await h.post(other, body))[0] == 200


async def test_device_updates_merge_latest_classification(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    mac = "02:00:00:00:00:01"
    await harness.send(agent, [device(mac, last_seen=1_700_000_100.0, device_type="tablet", evidence_value="dhcp-new")])
    # An older update arriving later must not overwrite the newer classification, but adds its evidence.
    await harness.send(agent, [device(mac, last_seen=1_700_000_050.0, device_type="phone", evidence_value="dhcp-old")])
    found = await harness.store.device("school-a", mac)
    assert found["device_type"] == "tablet"
    assert found["last_seen"] == 1_700_000_100.0
    assert {e["value"] for e in found["evidence"] if e["source"] == "dhcp"} == {"dhcp-new", "dhcp-old"}


async def test_metrics_count_events_and_rejects(sqlite_harness: Harness) -> None:
    h = sqlite_harness
    agent = await h.agent("school-a")
    await h.send(agent, [flow(i) for i in range(7)] + [alert(1)])
    _, body = h.batch_body(agent, [alert(1)])
    await h.post(agent, body, secret="wrong")
    async with h.session.get(f"{h.url}/metrics") as resp:
        text = await resp.text()
    assert 'veille_ingest_events_total{type="flow"} 7.0' in text
    assert 'veille_ingest_rejects_total{reason="bad_signature"} 1.0' in text
    assert "veille_ingest_latency_seconds_count 2.0" in text
    assert 'veille_db_seconds_count{op="ingest"}' in text
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200


async def test_previous_schema_version_is_accepted(harness: Harness) -> None:
    agent = await harness.agent("school-a")
    v1 = {
        "schema": 1,
        "agent_id": agent.agent_id,
        "site": "school-a",
        "seq": 1,
        "created": 1_700_000_000.0,
        "events": [
            {
                "type": "flow",
                "t0": 1_700_000_000.0,
                "t1": 1_700_000_001.0,
                "p": "udp",
                "s": "192.0.2.1",
                "sp": 68,
                "d": "192.0.2.255",
                "dp": 67,
                "bf": 300,
                "sm": "02:00:00:00:00:01",
            },
            {"type": "alert", "ts": 1_700_000_000.0, "sid": 1, "msg": "v1 alert"},
        ],
    }
    status, payload, _ = await harness.post(agent, msgpack.packb(v1))
    assert (status, payload["duplicate"]) == (200, False), payload
    rows = await harness.store.fetch("SELECT schema_v, events FROM batches")
    assert rows == [{"schema_v": 1, "events": 2}]


async def test_nul_characters_in_text_are_stored_not_refused(harness: Harness) -> None:
    # Devices do send NUL-terminated DHCP host names; PostgreSQL text cannot hold U+0000.
    agent = await harness.agent("school-a")
    raw = {
        "schema": 2,
        "agent_id": agent.agent_id,
        "site": "school-a",
        "seq": 1,
        "created": 1.0,
        "events": [
            {"type": "alert", "ts": 1.0, "sid": 7, "msg": "bad\x00host"},
            {
                "type": "device",
                "mac": "02:00:00:00:00:01",
                "first_seen": 1.0,
                "last_seen": 2.0,
                "vendor": "Acme\x00",
                "names": [{"name": "ipad\x00"}],
            },
        ],
    }
    status, payload, _ = await harness.post(agent, msgpack.packb(raw))
    assert status == 200, payload
    rows = await harness.store.fetch("SELECT msg FROM alerts")
    assert rows[0]["msg"] in ("bad\x00host", "bad\ufffdhost")
    found = await harness.store.device("school-a", "02:00:00:00:00:01")
    assert found["vendor"] in ("Acme\x00", "Acme\ufffd")


async def _open_slow_request(port: int, length: int = 1000) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        "Content-Encoding: zstd\r\n\r\n".encode()
        + b"x" * 10
    )
    await writer.drain()
    return reader, writer


async def test_slow_body_is_a_408_and_a_full_gate_a_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from collector.app import run_collector

    from .conftest import config_for

    config = config_for(str(tmp_path / "c.db"), read_timeout=0.5, max_inflight=1)
    async with run_collector(config) as running, aiohttp.ClientSession() as session:
        h = Harness(running, session, {})
        agent = await h.agent("school-a")
        reader, writer = await _open_slow_request(running.port)
        await asyncio.sleep(0.1)
        _, body = h.batch_body(agent, [alert(1)])
        status, payload, headers = await h.post(agent, body)  # the slow request holds the only place
        assert (status, payload["error"], headers["Retry-After"]) == (503, "busy", "1")
        answer = (await asyncio.wait_for(reader.read(4096), 5)).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 408") and '"timeout"' in answer
        status, payload, _ = await h.post(agent, body)  # the place is free again
        assert status == 200, payload
