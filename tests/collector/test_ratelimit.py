"""Token buckets and the in-progress gate (pure: time is passed in)."""

from __future__ import annotations

from collector.ratelimit import Gate, RateLimiter, retry_after


def test_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a", 100.0)
    assert wait == 0.5  # one token comes back every 1/rate seconds
    assert limiter.take("b", 100.0) == 0.0  # buckets are per agent
    assert limiter.take("a", 100.5) == 0.0
    assert limiter.take("a", 100.5) > 0
    assert limiter.take("a", 200.0) == 0.0  # refilled, capped at the burst
    assert [limiter.take("a", 200.0) for _ in range(3)][-1] > 0


def test_zero_rate_disables_limiting() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    assert all(limiter.take("a", 1.0) == 0.0 for _ in range(1000))


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(x) for x in (0.01, 1.0, 1.2, 30.0)] == ["1", "1", "2", "30"]


def test_gate_counts_places() -> None:
    gate = Gate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    gate.leave()
    assert gate.try_enter()
