"""Optional export of every stored event to NATS JetStream, for SIEM pipelines.

Each event is published as JSON (`{"agent_id", "site", "seq", "index", "event": {...}}`, event fields by
their long names) on `<prefix>.<site>.<type>` with the JetStream message id `agent:seq:index`. JetStream drops
a message whose id it has already seen (within the stream's duplicate window), so a batch resent by an agent,
or ingested by two collectors, is published once. Publications are pipelined (`publish_async`) and awaited
together before the agent gets its answer.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import nats
from nats.js.errors import NotFoundError

from collector.config import NatsExport
from telemetry.schema import Batch, event_type

_SUBJECT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")
_json = msgspec.json.Encoder()


def subject_token(text: str) -> str:
    """A site name made safe as one NATS subject token (no dots, spaces or wildcards)."""
    return _SUBJECT_TOKEN.sub("_", text) or "_"


def event_messages(batch: Batch, prefix: str) -> list[tuple[str, bytes, str]]:
    """(subject, JSON payload, message id) for every event of a batch."""
    site = subject_token(batch.site)
    out = []
    for index, event in enumerate(batch.events):
        kind = event_type(event)
        body = {"type": kind, **msgspec.structs.asdict(event)}
        payload = _json.encode(
            {"agent_id": batch.agent_id, "site": batch.site, "seq": batch.seq, "index": index, "event": body}
        )
        out.append((f"{prefix}.{site}.{kind}", payload, f"{batch.agent_id}:{batch.seq}:{index}"))
    return out


class ExportError(Exception):
    """The export target cannot be reached or set up."""


class JetStreamExporter:
    """One NATS connection and JetStream context, created at start-up."""

    def __init__(self, config: NatsExport) -> None:
        self.config = config
        self._nc: Any = None
        self._js: Any = None

    async def start(self) -> None:
        """Connect and make sure the stream exists (subjects `<prefix>.>`)."""
        # nats-py retries the first connection like a reconnection (60 x 2 s by default); a collector
        # configured to export should fail to start quickly instead, then reconnect forever once running.
        try:
            self._nc = await nats.connect(
                self.config.url,
                connect_timeout=self.config.timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
            )
        except Exception as exc:  # nats-py raises OSError, its own errors or timeouts
            raise ExportError(f"cannot connect to NATS at {self.config.url}: {exc}") from exc
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream(timeout=self.config.timeout)
        try:
            await self._js.stream_info(self.config.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.config.stream, subjects=[f"{self.config.subject_prefix}.>"])

    async def publish(self, batch: Batch) -> int:
        """Publish every event of a batch and wait for JetStream's acknowledgements; returns the count."""
        if self._js is None:
            raise RuntimeError("exporter not started")
        futures = [
            await self._js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id})
            for subject, payload, msg_id in event_messages(batch, self.config.subject_prefix)
        ]
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self.config.timeout)
        return len(futures)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None
