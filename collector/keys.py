"""Typed application state shared by the collector's handlers (aiohttp `AppKey`s)."""

from __future__ import annotations

from aiohttp import web

from collector.config import CollectorConfig
from collector.export import JetStreamExporter
from collector.metrics import CollectorMetrics
from collector.ratelimit import Gate, RateLimiter
from collector.store import SqlStore

STORE = web.AppKey("store", SqlStore)
CONFIG = web.AppKey("config", CollectorConfig)
METRICS = web.AppKey("metrics", CollectorMetrics)
LIMITER = web.AppKey("limiter", RateLimiter)
GATE = web.AppKey("gate", Gate)
EXPORTER = web.AppKey("exporter", JetStreamExporter)
