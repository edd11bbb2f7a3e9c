"""Per-agent token buckets: `rate` requests per second on average, bursts of `burst`.

Pure: callers pass a monotonic `now`. The table is bounded by the number of enrolled agents (a bucket is
created only after a request authenticated), and idle full buckets are dropped when it grows past `MAX_KEYS`.
"""

from __future__ import annotations

import math

# Far above any deployment (a city has hundreds of sites); past it, full buckets are forgotten.
MAX_KEYS = 100_000


class RateLimiter:
    """Token buckets keyed by agent id."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> float:
        """Consume one token; returns 0 when allowed, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_KEYS:
                self._forget_full(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]


def retry_after(seconds: float) -> str:
    """`Retry-After` value (whole seconds, at least 1: RFC 9110 section 10.2.3 delay-seconds)."""
    return str(max(1, math.ceil(seconds)))


class Gate:
    """At most `limit` holders at once (ingest requests in progress); not a queue: a full gate says no."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.inside = 0

    def try_enter(self) -> bool:
        """Take a place if one is free."""
        if self.inside >= self.limit:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1
