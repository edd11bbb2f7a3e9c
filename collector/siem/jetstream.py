"""EVE records to NATS JetStream: subject `<prefix>.<site>.<event_type>`, message id `agent:seq:index`.

The message id is the event's place in what the agent sent (collector/export.py uses the same id for the
raw events), so JetStream's duplicate window drops a record re-published after an agent resent its batch or
two collectors ingested it. Publications are pipelined and awaited together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import nats
from nats.js.errors import NotFoundError

from collector.export import subject_token
from telemetry.eve import EveRecord

_encode = msgspec.json.Encoder().encode


class JetStreamEveSink:
    """Publishes EVE JSON to a JetStream stream (created when absent, subjects `<prefix>.>`)."""

    name = "jetstream"

    def __init__(self, url: str, stream: str = "VEILLE_EVE", prefix: str = "veille.eve", timeout: float = 5.0) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.timeout = timeout
        self._nc: Any = None
        self._js: Any = None
        self.sent = 0

    async def start(self) -> None:
        self._nc = await nats.connect(self.url, connect_timeout=self.timeout, max_reconnect_attempts=1)
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream(timeout=self.timeout)
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])

    def subject(self, record: EveRecord) -> str:
        site = str((record.get("veille") or {}).get("site") or "_")
        return f"{self.prefix}.{subject_token(site)}.{subject_token(str(record.get('event_type', '_')))}"

    async def send(self, items: Sequence[tuple[str, EveRecord]]) -> None:
        if self._js is None:
            raise RuntimeError("JetStream sink not started")
        futures = [
            await self._js.publish_async(self.subject(record), _encode(record), headers={"Nats-Msg-Id": msg_id})
            for msg_id, record in items
        ]
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
        self.sent += len(futures)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = self._js = None
