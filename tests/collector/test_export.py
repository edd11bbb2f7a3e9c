"""JetStream export against the real nats-server on 127.0.0.1:4222 (skipped with the reason if absent)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from pathlib import Path

import aiohttp
import nats
import pytest

from collector.app import run_collector
from collector.config import NatsExport
from collector.export import ExportError

from .conftest import Harness, alert, config_for, device, flow

NATS_URL = os.environ.get("VEILLE_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def nats_or_skip() -> object:
    try:
        nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
        await nc.jetstream().account_info()
    except Exception as exc:  # no server, or no JetStream: nothing to test against
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS JetStream required in CI but unreachable at {NATS_URL}: {exc}")
        pytest.skip(f"NATS JetStream unreachable at {NATS_URL}: {exc}")
    return nc


async def test_every_stored_event_is_published_once_with_its_id(tmp_path: Path) -> None:
    nc = await nats_or_skip()
    js = nc.jetstream()  # type: ignore[attr-defined]
    name = f"VTEST_{uuid.uuid4().hex[:8].upper()}"
    export = NatsExport(url=NATS_URL, stream=name, subject_prefix=f"vtest.{name.lower()}")
    config = dataclasses.replace(config_for(str(tmp_path / "c.db")), nats=export)
    try:
        async with run_collector(config) as running, aiohttp.ClientSession() as session:
            h = Harness(running, session, {})
            agent = await h.agent("school a.1")
            events = [flow(1), device("02:00:00:00:00:01"), alert(2)]
            _, body = h.batch_body(agent, events)
            assert (await h.post(agent, body))[0] == 200
            # Resent (lost acknowledgement): duplicate in the store, and JetStream drops the copies.
            status, payload, _ = await h.post(agent, body)
            assert status == 200 and payload["duplicate"]
        info = await js.stream_info(name)
        assert info.state.messages == len(events)
        sub = await js.pull_subscribe(f"{export.subject_prefix}.>", durable=None, stream=name)
        msgs = await sub.fetch(len(events), timeout=5)
        ids = sorted(m.headers["Nats-Msg-Id"] for m in msgs)
        assert ids == [f"{agent.agent_id}:1:{i}" for i in range(len(events))]
        subjects = sorted(m.subject for m in msgs)
        assert subjects == sorted(f"{export.subject_prefix}.school_a_1.{k}" for k in ("flow", "device", "alert"))
        first = json.loads(next(m.data for m in msgs if m.subject.endswith(".flow")))
        assert first["event"]["ts_start"] == events[0].ts_start and first["site"] == "school a.1"
        print(f"JetStream export: {info.state.messages} messages for {len(events)} events sent twice")
    finally:
        await js.delete_stream(name)
        await nc.close()  # type: ignore[attr-defined]


async def test_unreachable_nats_fails_start_up_quickly(tmp_path: Path) -> None:
    export = NatsExport(url="nats://127.0.0.1:1", stream="X", timeout=1.0)
    config = dataclasses.replace(config_for(str(tmp_path / "c.db")), nats=export)
    started = time.monotonic()
    with pytest.raises(ExportError, match="cannot connect to NATS"):
        async with run_collector(config):
            pass
    assert time.monotonic() - started < 10


async def test_failed_publication_is_a_503_and_the_resend_publishes(tmp_path: Path) -> None:
    nc = await nats_or_skip()
    js = nc.jetstream()  # type: ignore[attr-defined]
    name = f"VTEST_{uuid.uuid4().hex[:8].upper()}"
    export = NatsExport(url=NATS_URL, stream=name, subject_prefix=f"vtest.{name.lower()}", timeout=2.0)
    config = dataclasses.replace(config_for(str(tmp_path / "c.db")), nats=export)
    try:
        async with run_collector(config) as running, aiohttp.ClientSession() as session:
            h = Harness(running, session, {})
            agent = await h.agent("school-a")
            await js.delete_stream(name)  # JetStream loses the stream: publications get no acknowledgement
            _, body = h.batch_body(agent, [alert(1), alert(2)])
            status, payload, _ = await h.post(agent, body)
            assert (status, payload["error"]) == (503, "export_failed")
            # Stored already; the agent resends, the store answers duplicate and the events are published.
            await js.add_stream(name=name, subjects=[f"{export.subject_prefix}.>"])
            status, payload, _ = await h.post(agent, body)
            assert (status, payload["duplicate"]) == (200, True)
            rows = await running.store.fetch("SELECT COUNT(*) AS n FROM alerts")
            assert rows[0]["n"] == 2
        info = await js.stream_info(name)
        assert info.state.messages == 2
    finally:
        await js.delete_stream(name)
        await nc.close()  # type: ignore[attr-defined]
