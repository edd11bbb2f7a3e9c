"""What each side holds: the collectors' stores (SQLite or PostgreSQL), the agents' spools and event
files, and a rogue client that sends what no agent would.

Reads are independent of the collector process (sqlite3 read-only, a fresh asyncpg connection), so
they work while a collector is dead. Spool files are decoded here byte for byte (never through
`telemetry.spool.Spool`, whose start-up recovery would move files).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from telemetry.codec import INGEST_PATH, compress, decode_batch, decompress, encode_batch, new_batch
from telemetry.schema import AlertEvent, Batch, ObservationEvent
from telemetry.signing import sign

_SPOOL_NAME: Final = re.compile(r"^(\d{20})\.([adfho]*)\.(zst|gz|mp)$")
_ENCODING: Final = {"zst": "zstd", "gz": "gzip", "mp": "identity"}


class Store:
    """Read-only SQL on a collector's database: a SQLite path or a `postgresql://...?schema=` URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql://")

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of `sql` (written with `?` placeholders)."""
        if not self.postgres:
            with sqlite3.connect(f"file:{self.url}?mode=ro", uri=True, timeout=30) as con:
                return list(con.execute(sql, args))
        return asyncio.run(self._pg(sql, args))

    async def _pg(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import asyncpg

        from collector.store.postgres import split_url

        dsn, schema = split_url(self.url)
        n = iter(range(1, 1000))
        text = re.sub(r"\?", lambda _m: f"${next(n)}", sql)
        con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            return [tuple(r) for r in await con.fetch(text, *args)]
        finally:
            await con.close()

    def batches(self, agent_id: str) -> dict[int, tuple[int, float]]:
        """seq -> (events, received) for `agent_id`."""
        rows = self.query("SELECT seq, events, received FROM batches WHERE agent_id = ?", agent_id)
        return {int(s): (int(e), float(r)) for s, e, r in rows}

    def last_received(self, agent_id: str) -> float:
        """When the newest batch of `agent_id` was stored (0 when none)."""
        rows = self.query("SELECT MAX(received) FROM batches WHERE agent_id = ?", agent_id)
        return float(rows[0][0] or 0.0)

    def alerts(self, agent_id: str) -> Counter[tuple[Any, ...]]:
        """Alert identities (ts, sid, src, sport, dst, dport) with how often each is stored."""
        rows = self.query("SELECT ts, sid, src, sport, dst, dport FROM alerts WHERE agent_id = ?", agent_id)
        return Counter((round(float(r[0]), 6), *r[1:]) for r in rows)

    def observations(self, agent_id: str) -> Counter[tuple[Any, ...]]:
        """Observation identities (kind, ts, src, dst) with how often each is stored."""
        rows = self.query("SELECT kind, ts, src, dst FROM observations WHERE agent_id = ?", agent_id)
        return Counter((r[0], round(float(r[1]), 6), r[2], r[3]) for r in rows)

    def flows(self, site: str, mac: str) -> int:
        """Flow summaries rolled up for `mac` at `site` (each flow counts once per end)."""
        rows = self.query("SELECT COALESCE(SUM(flows), 0) FROM flow_hourly WHERE site = ? AND mac = ?", site, mac)
        return int(rows[0][0])

    def devices(self, site: str) -> set[str]:
        """MACs of the site's devices."""
        return {str(r[0]) for r in self.query("SELECT mac FROM devices WHERE site = ?", site)}

    def health(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's health events in sequence order."""
        rows = self.query("SELECT data FROM health WHERE agent_id = ? ORDER BY seq, idx", agent_id)
        return [json.loads(r[0]) for r in rows]


@dataclass(frozen=True, slots=True)
class SpoolFile:
    """One pending spool file as found on disk."""

    path: Path
    seq: int
    events: int
    kinds: dict[str, int]
    alerts: tuple[tuple[Any, ...], ...]
    observations: tuple[tuple[Any, ...], ...] = ()


def read_spool(spool_dir: Path) -> tuple[list[SpoolFile], list[str]]:
    """Decode every file in `spool_dir/pending`; returns the files and the problems met."""
    out: list[SpoolFile] = []
    problems: list[str] = []
    pending = spool_dir / "pending"
    if not pending.is_dir():
        return out, problems
    for path in sorted(pending.iterdir()):
        m = _SPOOL_NAME.match(path.name)
        if m is None:
            continue
        try:
            batch = decode_batch(decompress(path.read_bytes(), _ENCODING[m.group(3)]))
        except Exception as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        kinds = Counter(_kind(e) for e in batch.events)
        alerts = tuple(
            (round(e.ts, 6), e.sid, e.src, e.sport, e.dst, e.dport) for e in batch.events if isinstance(e, AlertEvent)
        )
        observations = tuple(
            (e.kind, round(e.ts, 6), e.src, e.dst) for e in batch.events if isinstance(e, ObservationEvent)
        )
        out.append(SpoolFile(path, batch.seq, len(batch.events), dict(kinds), alerts, observations))
    return out, problems


def _kind(event: Any) -> str:
    kind = type(event).__name__.removesuffix("Event").lower()
    if kind == "observation":
        return str(event.kind)
    return kind


def corrupt_file(path: Path, rng: random.Random) -> str:
    """Damage a spool file in place (flip bytes in its middle, or cut it); returns what was done."""
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5 and len(data) > 16:
        cut = rng.randrange(4, len(data) // 2)
        path.write_bytes(bytes(data[:cut]))
        return f"cut to {cut} of {len(data)} bytes"
    for _ in range(8):
        i = rng.randrange(len(data))
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return f"8 bytes flipped in {len(data)}"


@dataclass
class RogueResult:
    """Answers a rogue client received, by HTTP status and error reason."""

    statuses: Counter[int]
    reasons: Counter[str]
    server_errors: int
    sent: int


async def _post(
    session: Any, url: str, agent_id: str, secret: str, body: bytes, enc: str, now: float
) -> tuple[int, str]:
    headers = {"Content-Type": "application/msgpack", **sign(agent_id, secret, body, now)}
    if enc:
        headers["Content-Encoding"] = enc
    async with session.post(url + INGEST_PATH, data=body, headers=headers) as r:
        text = await r.text()
        try:
            reason = str(json.loads(text).get("error", ""))
        except (ValueError, AttributeError):
            reason = text[:40]
        return r.status, reason


def _valid_batch(agent_id: str, site: str, seq: int) -> Batch:
    alert = AlertEvent(ts=time.time(), sid=1, msg="soak rogue", src="192.0.2.250", dst="198.51.100.1")
    return new_batch(agent_id, site, seq, time.time(), [alert])


def _malformed(agent_id: str, site: str, rng: random.Random, i: int) -> tuple[bytes, str]:
    """One hostile body: random bytes, a corrupt zstd frame, a schema error, a wrong agent or site."""
    good = encode_batch(_valid_batch(agent_id, site, 1_000_000 + i))
    choice = i % 6
    if choice == 0:
        return os.urandom(rng.randrange(1, 4096)), "zstd"
    if choice == 1:
        z = bytearray(compress(good, "zstd"))
        z[len(z) // 2] ^= 0xFF
        return bytes(z), "zstd"
    if choice == 2:
        return compress(b"\x85" + os.urandom(64), "gzip"), "gzip"
    if choice == 3:
        wrong = encode_batch(_valid_batch(agent_id, "other-site", 2_000_000 + i))
        return compress(wrong, "zstd"), "zstd"
    if choice == 4:
        return good, "br"
    return compress(good.replace(b"soak rogue", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6"), "zstd"), "zstd"


async def rogue_flood(url: str, agent_id: str, secret: str, site: str, count: int, seed: int) -> RogueResult:
    """Send `count` signed but malformed batches; every answer must be a 4xx."""
    import aiohttp

    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    reasons: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for i in range(count):
            body, enc = _malformed(agent_id, site, rng, i)
            try:
                status, reason = await _post(session, url, agent_id, secret, body, enc, time.time())
            except aiohttp.ClientError as exc:
                status, reason = 0, type(exc).__name__
            statuses[status] += 1
            reasons[reason] += 1
    errors = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
    return RogueResult(statuses, reasons, errors, count)


async def skewed_request(url: str, agent_id: str, secret: str, site: str, skew: float) -> tuple[int, str]:
    """A well-formed batch signed `skew` seconds away from now; the collector must refuse it."""
    import aiohttp

    body = compress(encode_batch(_valid_batch(agent_id, site, 3_000_000)), "zstd")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        return await _post(session, url, agent_id, secret, body, "zstd", time.time() + skew)
