"""A real aiohttp ingest endpoint on loopback for the shipper tests, built on the contract's own functions.

It verifies signatures with `telemetry.signing.verify`, decompresses with the cap, decodes with
`decode_batch`, and stores each (agent, seq) once, counting duplicates and sequence reuse (the same seq
arriving with different events). Switches let a test take it down (connection refused or 503), reject a
seq, or tamper with bodies in transit.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

from telemetry.codec import INGEST_PATH, decode_batch, decompress
from telemetry.errors import SchemaError, TelemetryError
from telemetry.schema import Batch
from telemetry.signing import AgentCredential, verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    secrets: dict[str, AgentCredential] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    max_skew: float = 300.0
    unavailable: bool = False  # answer 503 + Retry-After
    retry_after: str | None = "1"
    reject_seqs: set[int] = field(default_factory=set)
    tamper: bool = False
    lose_ack: set[int] = field(default_factory=set)  # store these seqs, then answer 503 once
    ssl_context: object | None = None
    batches: dict[tuple[str, int], Batch] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)
    duplicates: int = 0
    reused: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    requests: list[float] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(time.monotonic())
        body = await request.read()
        if self.unavailable:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response({"error": "unavailable"}, status=503, headers=headers)
        if self.tamper and body:
            body = bytes([body[0] ^ 1]) + body[1:]
        try:
            agent = verify(request.headers, body, self.secrets.get, time.time(), self.max_skew)
            batch = decode_batch(decompress(body, request.headers.get("Content-Encoding"), 8 << 20))
            if batch.agent_id != agent:
                raise SchemaError("$.agent_id", "does not match the signing agent")
            if batch.seq in self.reject_seqs:
                raise SchemaError("$.events[0].sid", "test rejects this seq")
        except TelemetryError as exc:
            self.refused[exc.reason] = self.refused.get(exc.reason, 0) + 1
            return web.json_response(exc.as_json(), status=exc.status)
        key = (batch.agent_id, batch.seq)
        old = self.batches.get(key)
        if old is not None:
            self.duplicates += 1
            if old.events != batch.events:
                self.reused += 1
            return web.json_response({"status": "ok", "seq": batch.seq, "duplicate": True})
        self.batches[key] = batch
        self.order.append(key)
        if batch.seq in self.lose_ack:
            self.lose_ack.discard(batch.seq)
            return web.json_response({"error": "unavailable"}, status=503)
        return web.json_response({"status": "ok", "seq": batch.seq, "duplicate": False})

    async def start(self) -> None:
        app = web.Application(client_max_size=16 << 20)
        app.router.add_post(INGEST_PATH, self.handle)
        self._runner = web.AppRunner(app, auto_decompress=False)  # we verify the body as sent
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True)
        for _ in range(50):
            try:
                await site.start()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"port {self.port} stays busy")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def events(self, agent: str | None = None) -> list:
        """Stored events in the order their batches were first stored."""
        return [e for key in self.order if agent in (None, key[0]) for e in self.batches[key].events]
