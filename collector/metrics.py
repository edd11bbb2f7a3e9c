"""Prometheus metrics of one collector, in a registry of its own (several apps may share a process).

Events per second is `rate(veille_ingest_events_total[1m])`; batch latency is the histogram of the whole
ingest request (verify, decompress, decode, store); DB timings are per operation.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Buckets from 1 ms (a small batch into SQLite) to 10 s (a 20,000-event batch into a busy PostgreSQL).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CollectorMetrics:
    """The counters and histograms a collector exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter("veille_ingest_events", "Events stored, by type", ["type"], registry=self.registry)
        self.batches = Counter(
            "veille_ingest_batches", "Batches answered 200, by result", ["result"], registry=self.registry
        )
        self.rejects = Counter(
            "veille_ingest_rejects", "Ingest requests refused, by reason", ["reason"], registry=self.registry
        )
        self.latency = Histogram(
            "veille_ingest_latency_seconds",
            "Time to answer an ingest request",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.db = Histogram(
            "veille_db_seconds",
            "Time spent in the store, by operation",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.api = Counter("veille_api_requests", "Query API requests, by status", ["status"], registry=self.registry)
        self.exported = Counter("veille_export_events", "Events published to JetStream", registry=self.registry)
        self.export_errors = Counter(
            "veille_export_errors", "Batches whose JetStream publication failed", registry=self.registry
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
