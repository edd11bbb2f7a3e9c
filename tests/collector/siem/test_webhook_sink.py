"""Webhook sink against real aiohttp servers on loopback: retried until delivered, or dead-lettered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from collector.siem.webhook import WebhookSink


@pytest.fixture
async def hook() -> AsyncIterator[Callable[[list[int]], Any]]:
    servers: list[TestServer] = []

    async def make(statuses: list[int]) -> tuple[str, list[tuple[dict[str, Any], str]]]:
        """A server answering `statuses` in turn (the last one repeated); returns its URL and what it got."""
        got: list[tuple[dict[str, Any], str]] = []

        async def receive(request: web.Request) -> web.Response:
            got.append((await request.json(), request.headers.get("Idempotency-Key", "")))
            return web.Response(status=statuses[min(len(got), len(statuses)) - 1])

        app = web.Application()
        app.router.add_post("/hook", receive)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/hook")), got

    yield make
    for server in servers:
        await server.close()


def _alerts(records: list[tuple[str, dict[str, Any]]], severity: int) -> list[tuple[str, dict[str, Any]]]:
    return [(i, r) for i, r in records if r["event_type"] == "alert" and r["alert"]["severity"] == severity]


async def test_retries_then_delivers(hook, tmp_path: Path, lan_records) -> None:  # type: ignore[no-untyped-def]
    url, got = await hook([503, 502, 200])
    sink = WebhookSink(url, str(tmp_path / "dead.jsonl"), max_severity=1, backoff=0.01)
    await sink.start()
    msg_id, record = _alerts(lan_records, 1)[0]
    assert await sink.deliver(msg_id, record)
    await sink.close()
    assert len(got) == 3 and sink.retries == 2 and sink.delivered == 1
    assert all(body == json.loads(json.dumps(record)) and key == msg_id for body, key in got)
    assert not (tmp_path / "dead.jsonl").exists()


async def test_always_failing_goes_to_dead_letter(hook, tmp_path: Path, lan_records) -> None:  # type: ignore[no-untyped-def]
    url, got = await hook([500])
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(url, str(dead), max_severity=1, attempts=3, backoff=0.01)
    await sink.start()
    high = _alerts(lan_records, 1)
    await sink.send(lan_records)  # every record: only severity-1 alerts are for the webhook
    await sink.close()
    assert len(got) == 3 * len(high)
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [line["msg_id"] for line in lines] == [i for i, _ in high]
    assert all(line["reason"] == "HTTP 500" and line["url"] == url for line in lines)
    assert lines[0]["record"] == json.loads(json.dumps(high[0][1]))


async def test_client_error_is_not_retried(hook, tmp_path: Path, lan_records) -> None:  # type: ignore[no-untyped-def]
    url, got = await hook([400])
    sink = WebhookSink(url, str(tmp_path / "dead.jsonl"), max_severity=1, backoff=0.01)
    await sink.start()
    msg_id, record = _alerts(lan_records, 1)[0]
    assert not await sink.deliver(msg_id, record)
    await sink.close()
    assert len(got) == 1 and sink.dead == 1


async def test_unreachable_server_dead_letters(tmp_path: Path, lan_records) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        sink = WebhookSink(f"http://127.0.0.1:{port}/hook", str(tmp_path / "dead.jsonl"), attempts=2, backoff=0.01)
        await sink.start()
        msg_id, record = _alerts(lan_records, 1)[0]
        assert not await sink.deliver(msg_id, record)
        await sink.close()
    line = json.loads((tmp_path / "dead.jsonl").read_text())
    assert line["reason"].startswith("ClientConnectorError")
