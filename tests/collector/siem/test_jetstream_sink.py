"""JetStream sink against the real nats-server on 127.0.0.1:4222 (skipped with the reason when absent)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import nats
import pytest

from collector.siem.jetstream import JetStreamEveSink

NATS_URL = os.environ.get("VEILLE_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _connect_or_skip() -> Any:
    try:
        return await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception as exc:  # no server to test against
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS required in CI but unreachable at {NATS_URL}: {exc}")
        pytest.skip(f"NATS unreachable at {NATS_URL}: {exc}")


async def test_records_published_once_with_agent_seq_index_ids(lan_records: list[tuple[str, dict[str, Any]]]) -> None:
    nc = await _connect_or_skip()
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"EVE_{tag}", f"veille.eve{tag}"
    sink = JetStreamEveSink(NATS_URL, stream=stream, prefix=prefix)
    try:
        await sink.start()
        items = lan_records[:50]
        await sink.send(items)
        await sink.send(items)  # a resent batch: same message ids, dropped by JetStream
        info = await js.stream_info(stream)
        assert info.state.messages == len(items)
        sub = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream)
        msgs = await sub.fetch(len(items), timeout=5)
        assert [m.headers["Nats-Msg-Id"] for m in msgs] == [i for i, _ in items]
        for m, (_, record) in zip(msgs, items, strict=True):
            assert json.loads(m.data) == json.loads(json.dumps(record))
            assert m.subject == f"{prefix}.school-a.{record['event_type']}"
    finally:
        await sink.close()
        try:
            await js.delete_stream(stream)
        finally:
            await nc.close()
