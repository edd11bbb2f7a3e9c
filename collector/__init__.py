"""The central collector: signed batch ingest, storage (SQLite or PostgreSQL), query API, audit, metrics.

Start with `collector.app` (the aiohttp application and `run_collector`), `collector.cli` (`veille collector
...`), `collector.ingest` and `collector.store`; docs/collector.md describes configuration and the API.
"""
