"""The collector's aiohttp application and ways to run it (in-process, as a task, or `serve`).

`create_app(config)` builds the app; its `cleanup_ctx` opens the store (applying migrations), starts the
retention job and the optional JetStream exporter, and closes them in reverse order. `run_collector(config)`
is an async context manager that serves the app on the configured address (port 0 picks a free one) and
yields a `RunningCollector` with the real URL: what tests, the bench and `veille demo` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from collector import api, ingest
from collector.config import CollectorConfig
from collector.dashboard import setup_dashboard
from collector.export import JetStreamExporter
from collector.fleet import setup_fleet
from collector.keys import CONFIG, EXPORTER, GATE, LIMITER, METRICS, STORE
from collector.metrics import CONTENT_TYPE, CollectorMetrics
from collector.ratelimit import Gate, RateLimiter
from collector.siem import setup_siem
from collector.store import SqlStore, StoreError, make_store

log = logging.getLogger("veille.collector")
# aiohttp would otherwise decompress request bodies itself, before the handler: the signature covers the
# bytes as sent and decompression must run under our cap. Pass these to any runner/TestServer of the app.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False}


async def healthz(request: web.Request) -> web.Response:
    """Liveness and store reachability (no authentication, no data)."""
    try:
        await request.app[STORE].fetch("SELECT 1 AS ok")
    except Exception as exc:  # any store failure means "not healthy"; the reason goes to the log
        log.warning("health check failed: %s", exc)
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def retention_loop(store: SqlStore, config: CollectorConfig, metrics_: CollectorMetrics) -> None:
    """Apply retention now and then every `retention_interval` seconds."""
    while True:
        started = time.perf_counter()
        try:
            deleted = await store.apply_retention(time.time(), config.retention_days)
            if any(deleted.values()):
                log.info("retention deleted %s", {k: v for k, v in deleted.items() if v})
        except StoreError as exc:
            log.error("retention job failed: %s", exc)
        metrics_.db.labels("retention").observe(time.perf_counter() - started)
        await asyncio.sleep(config.retention_interval)


def create_app(config: CollectorConfig, store: SqlStore | None = None) -> web.Application:
    """The collector application; `store` (unopened) overrides the one named by `config.db`.

    Serve it with `SERVER_OPTIONS` (auto_decompress off), as `run_collector` does.
    """
    app = web.Application(middlewares=[api.auth_middleware])
    app[CONFIG] = config
    app[METRICS] = CollectorMetrics()
    app[LIMITER] = RateLimiter(config.limits.rate, config.limits.burst)
    app[GATE] = Gate(config.limits.max_inflight)
    app[STORE] = store if store is not None else make_store(config.db)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        the_store = app[STORE]
        await the_store.open()
        exporter: JetStreamExporter | None = None
        if config.nats.url:
            exporter = JetStreamExporter(config.nats)
            try:
                await exporter.start()
            except BaseException:
                await the_store.close()
                raise
            app[EXPORTER] = exporter
        retention = asyncio.create_task(retention_loop(the_store, config, app[METRICS]))
        yield
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention
        if exporter is not None:
            await exporter.close()
        await the_store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(api.INGEST_PATH, ingest.handle_ingest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    api.add_routes(app)
    setup_dashboard(app)
    setup_fleet(app, config.fleet_public_key or None)
    setup_siem(app, config.siem)
    return app


@dataclass(frozen=True, slots=True)
class RunningCollector:
    """A collector serving on `url`, with its app and store (for tests and the demo)."""

    url: str
    app: web.Application
    store: SqlStore
    host: str
    port: int


def _ssl_context(config: CollectorConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


@contextlib.asynccontextmanager
async def run_collector(config: CollectorConfig, app: web.Application | None = None) -> AsyncIterator[RunningCollector]:
    """Serve a collector until the block exits; port 0 binds a free port (see `.url`)."""
    app = app if app is not None else create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **SERVER_OPTIONS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=_ssl_context(config))
        await site.start()
        addresses = runner.addresses
        port = int(addresses[0][1]) if addresses else config.port
        scheme = "https" if config.tls_cert else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        url = config.public_url.rstrip("/") if config.public_url else f"{scheme}://{host}:{port}"
        yield RunningCollector(url=url, app=app, store=app[STORE], host=config.host, port=port)
    finally:
        await runner.cleanup()


async def serve(config: CollectorConfig, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGINT or SIGTERM; prints the URL once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_collector(config) as running:
        print(f"veille collector listening on {running.url} (database: {config.db})", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
