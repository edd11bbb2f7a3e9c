"""`POST /api/v1/ingest`: signed, compressed MessagePack batches from agents.

Order of checks, cheapest and least revealing first: body size (from Content-Length, then while reading),
signature (telemetry.signing.verify, over the bytes as sent, before anything is decompressed), per-agent
rate, decompression with a cap (telemetry.codec.decompress: a zip bomb stops at the cap), schema validation
(telemetry.codec.decode_batch, errors name the field path), then the batch must name the agent that signed
it and that agent's enrolled site (else 422 `agent_mismatch`/`site_mismatch`: the batch itself is wrong,
so the shipper sets it aside instead of retrying it forever). Only then is it stored, in one transaction;
a sequence number already stored is answered like a fresh one with `"duplicate": true` and writes nothing.

Every refusal is a 4xx JSON body `{"error": reason, "detail": ..., "field": "$.events[3].sid"}`; refusals
after authentication are counted on the agent (`rejected`). A store failure is a 503 (the agent retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from collector.keys import CONFIG, EXPORTER, GATE, LIMITER, METRICS, STORE
from collector.ratelimit import retry_after
from collector.siem import publish_batch
from collector.store import AgentRecord, StoreError
from collector.store.base import InvalidData
from collector.store.rows import batch_rows
from telemetry.codec import decode_batch, decompress
from telemetry.errors import SchemaError, TelemetryError
from telemetry.signing import AGENT_ID_RE, HEADER_AGENT, AgentCredential, verify

log = logging.getLogger("veille.collector.ingest")
_LEAKED_DECODE_ERRORS = (ValueError, RecursionError)
# Read size per chunk while enforcing the body cap.
_CHUNK = 64 * 1024


def refusal(status: int, reason: str, detail: str, field: str | None = None, **extra: Any) -> web.Response:
    """A JSON error response."""
    body: dict[str, Any] = {"error": reason, "detail": detail}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return web.json_response(body, status=status)


def _telemetry_refusal(exc: TelemetryError) -> web.Response:
    body: dict[str, Any] = dict(exc.as_json())
    if isinstance(exc, SchemaError):
        body["field"] = exc.path
    return web.json_response(body, status=exc.status)


async def _read_body(request: web.Request, cap: int) -> bytes | web.Response:
    length = request.content_length
    if length is not None and length > cap:
        return refusal(413, "too_large", f"body of {length} bytes exceeds the limit of {cap}")
    body = bytearray()
    while True:
        chunk = await request.content.read(min(_CHUNK, cap + 1 - len(body)))
        if not chunk:
            break
        body += chunk
        if len(body) > cap:
            return refusal(413, "too_large", f"body exceeds the limit of {cap} bytes")
    return bytes(body)


async def handle_ingest(request: web.Request) -> web.Response:
    """Verify, decode and store one batch."""
    metrics, gate = request.app[METRICS], request.app[GATE]
    started = time.perf_counter()
    if gate.try_enter():
        try:
            response, reason = await _ingest(request)
        finally:
            gate.leave()
    else:
        response = refusal(503, "busy", f"more than {gate.limit} batches in progress, retry later")
        response.headers["Retry-After"] = "1"
        reason = "busy"
    metrics.latency.observe(time.perf_counter() - started)
    if reason is not None:
        metrics.rejects.labels(reason).inc()
    return response


async def _ingest(request: web.Request) -> tuple[web.Response, str | None]:
    app = request.app
    config, store, metrics = app[CONFIG], app[STORE], app[METRICS]
    limits = config.limits
    try:
        async with asyncio.timeout(limits.read_timeout):
            body = await _read_body(request, limits.max_body)
    except TimeoutError:
        return _tag(refusal(408, "timeout", f"body not received within {limits.read_timeout:g} s"), "timeout")
    if isinstance(body, web.Response):
        return _tag(body, "too_large" if body.status == 413 else "bad_body")

    agent: AgentRecord | None = None
    claimed = request.headers.get(HEADER_AGENT, "")
    if AGENT_ID_RE.match(claimed):
        try:
            agent = await store.get_agent(claimed)
        except StoreError as exc:
            log.error("agent lookup failed: %s", exc)
            return _tag(refusal(503, "unavailable", "store unavailable, retry later"), "unavailable")

    def lookup(agent_id: str) -> AgentCredential | None:
        if agent is None or agent.agent_id != agent_id:
            return None
        return AgentCredential(agent.secret.encode("utf-8"), revoked=agent.revoked_at is not None)

    now = time.time()
    try:
        agent_id = verify(request.headers, body, lookup, now, limits.max_skew)
    except TelemetryError as exc:
        return _tag(_telemetry_refusal(exc), exc.reason)
    assert agent is not None

    wait = app[LIMITER].take(agent_id, time.monotonic())
    if wait > 0:
        response = refusal(429, "rate_limited", f"more than {limits.rate:g} requests/s for this agent")
        response.headers["Retry-After"] = retry_after(wait)
        return _tag(response, "rate_limited")

    try:
        data = decompress(body, request.headers.get("Content-Encoding"), limits.max_decompressed)
        batch = decode_batch(data, limits.max_events)
    except TelemetryError as exc:
        await _note_rejected(request, agent_id, exc.reason, now)
        return _tag(_telemetry_refusal(exc), exc.reason)
    except _LEAKED_DECODE_ERRORS as exc:
        # decode_batch lets msgspec's UnicodeDecodeError (invalid UTF-8 in a string) through; still the
        # client's fault, so still a 422.
        await _note_rejected(request, agent_id, "schema", now)
        return _tag(_telemetry_refusal(SchemaError("$", f"undecodable value: {exc}")), "schema")
    if batch.agent_id != agent_id:
        await _note_rejected(request, agent_id, "agent_mismatch", now)
        return _tag(
            refusal(
                422,
                "agent_mismatch",
                f"batch names agent {batch.agent_id!r}, signed by {agent_id!r}",
                "$.agent_id",
            ),
            "agent_mismatch",
        )
    if batch.site != agent.site:
        await _note_rejected(request, agent_id, "site_mismatch", now)
        return _tag(
            refusal(
                422,
                "site_mismatch",
                f"agent is enrolled for site {agent.site!r}, batch names {batch.site!r}",
                "$.site",
            ),
            "site_mismatch",
        )

    try:
        rows = batch_rows(batch, now)
    except SchemaError as exc:
        await _note_rejected(request, agent_id, exc.reason, now)
        return _tag(_telemetry_refusal(exc), exc.reason)
    db_started = time.perf_counter()
    try:
        stored = await store.ingest(rows)
    except InvalidData as exc:
        await _note_rejected(request, agent_id, "schema", now)
        return _tag(refusal(422, "schema", f"refused by the database: {exc}", "$"), "schema")
    except Exception as exc:  # the store's own failure, never the client's: the agent keeps and resends
        log.error("storing batch %s:%s failed: %s", agent_id, batch.seq, exc)
        return _tag(refusal(503, "unavailable", "store unavailable, retry later"), "unavailable")
    metrics.db.labels("ingest").observe(time.perf_counter() - db_started)

    exporter = app.get(EXPORTER)
    if exporter is not None:
        try:
            metrics.exported.inc(await exporter.publish(batch))
        except Exception as exc:  # NATS down or slow: the batch is stored; resending re-publishes it
            metrics.export_errors.inc()
            log.warning("JetStream export of %s:%s failed: %s", agent_id, batch.seq, exc)
            if config.nats.required:
                return _tag(refusal(503, "export_failed", "event export unavailable, retry later"), "export_failed")

    if stored:
        publish_batch(app, batch)  # SIEM export: only enqueues, never blocks ingest
        metrics.batches.labels("stored").inc()
        for kind, count in rows.counts.items():
            if count:
                metrics.events.labels(kind).inc(count)
    else:
        metrics.batches.labels("duplicate").inc()
    return web.json_response(
        {"status": "ok", "seq": batch.seq, "duplicate": not stored, "events": len(batch.events)}
    ), None


def _tag(response: web.Response, reason: str) -> tuple[web.Response, str]:
    return response, reason


async def _note_rejected(request: web.Request, agent_id: str, reason: str, now: float) -> None:
    try:
        await request.app[STORE].note_rejected(agent_id, reason, now)
    except StoreError as exc:
        log.warning("could not count rejected batch of %s: %s", agent_id, exc)
