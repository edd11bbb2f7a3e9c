"""High-severity alerts to a webhook: one JSON POST per EVE alert, retried with backoff, then dead-lettered.

Only `alert` records whose `alert.severity` is at most `max_severity` (1 is the most severe, as in
Suricata's classification priorities) are sent. A POST answered 2xx is delivered; a network error, a
timeout, 429 or 5xx is retried after `backoff * 2**n` seconds (capped at `max_backoff`), up to `attempts`
tries; any other status, or the last failed try, appends the record with the reason to the dead-letter
JSONL file (fsynced), so an operator can replay it. Requests go through one aiohttp ClientSession.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from telemetry.eve import EveRecord

_encode = msgspec.json.Encoder().encode
# Statuses worth retrying: the server is overloaded or failing (RFC 9110 15.6, RFC 6585 4 for 429).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookSink:
    """POSTs alerts of severity <= `max_severity` to `url`; failures end in `dead_letter` (JSON lines)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        dead_letter: str,
        max_severity: int = 1,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.dead_letter = Path(dead_letter)
        self.max_severity = max_severity
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.dead = 0
        self.retries = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    def wants(self, record: Mapping[str, Any]) -> bool:
        """True for an alert at or above the configured severity."""
        if record.get("event_type") != "alert":
            return False
        severity = (record.get("alert") or {}).get("severity")
        return isinstance(severity, int) and severity <= self.max_severity

    async def send(self, items: Sequence[tuple[str, EveRecord]]) -> None:
        for msg_id, record in items:
            if self.wants(record):
                await self.deliver(msg_id, record)

    async def deliver(self, msg_id: str, record: EveRecord) -> bool:
        """POST one record with retries; False when it went to the dead-letter file."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        body = _encode(record)
        headers = {"Content-Type": "application/json", "Idempotency-Key": msg_id, **self.headers}
        reason = ""
        for attempt in range(self.attempts):
            if attempt:
                self.retries += 1
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            try:
                async with self._session.post(self.url, data=body, headers=headers) as resp:
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        return True
                    reason = f"HTTP {resp.status}"
                    if resp.status not in RETRY_STATUSES:
                        break
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
        await asyncio.to_thread(self._dead_letter, msg_id, record, reason)
        return False

    def _dead_letter(self, msg_id: str, record: EveRecord, reason: str) -> None:
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        line = _encode(
            {"failed_at": time.time(), "msg_id": msg_id, "url": self.url, "reason": reason, "record": record}
        )
        with open(self.dead_letter, "ab") as handle:
            handle.write(line + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.dead += 1

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
