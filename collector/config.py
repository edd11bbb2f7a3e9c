"""Collector configuration: defaults that work with nothing set, a TOML file, command-line overrides.

Every number a collector enforces (limits, retention, skew) lives here with its default and the reason
for it; the rest of the collector reads a frozen `CollectorConfig`. A bad file is refused with the key path
(`limits.max_events`) and what was wrong.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DB = "veille-collector.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

# Retention in days per kind of data. Flow roll-ups, health and raw observations are operational data
# (one month is enough to investigate an incident); alerts, device evidence and inventory are kept a year;
# the audit log and the batch ledger (which makes ingest idempotent) a little more than a year, because
# provider access traceability is a yearly contract review.
DEFAULT_RETENTION_DAYS: dict[str, float] = {
    "flows": 30,
    "health": 30,
    "observations": 14,
    "alerts": 365,
    "evidence": 365,
    "devices": 365,
    "audit": 400,
    "batches": 400,
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied to every ingest request."""

    # Compressed body: a 5,000-event batch (the shipper's default close) is ~200 KB compressed; 8 MiB
    # leaves room for device-heavy batches and is aiohttp's client_max_size ballpark for uploads.
    max_body: int = 8 * 1024 * 1024
    # Decompressed body: the schema caps a batch at 20,000 events; at ~1 KiB per large event that is ~20 MiB.
    max_decompressed: int = 32 * 1024 * 1024
    # Events per batch; the schema's own cap is telemetry.schema.MAX_EVENTS (20,000).
    max_events: int = 20_000
    # Per-agent request rate (token bucket). A shipper sends at most a few batches a second in steady
    # state and drains its spool in bursts after an outage.
    rate: float = 20.0
    burst: int = 60
    # Signed timestamps further than this from our clock are refused (replay window), seconds.
    max_skew: float = 300.0
    # Ingest requests handled at once; more are answered 503 + Retry-After. Bounds memory: each may hold
    # up to max_decompressed bytes (64 x 32 MiB worst case, ~20 MB typical with 5,000-event batches).
    max_inflight: int = 64
    # Seconds allowed to receive a request body: the shipper's own request timeout (telemetry.config
    # DEFAULT_REQUEST_TIMEOUT); a client trickling bytes is answered 408 instead of holding a slot.
    read_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class NatsExport:
    """Optional JetStream export of every stored event."""

    url: str = ""
    stream: str = "VEILLE"
    subject_prefix: str = "veille.events"
    # When true, a batch whose events cannot be published is answered 503 so the agent resends it;
    # JetStream de-duplicates by message id, so a resend never publishes twice.
    required: bool = True
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Everything a collector needs to run."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: str = DEFAULT_DB
    tls_cert: str = ""
    tls_key: str = ""
    public_url: str = ""
    dashboard: bool = True
    limits: Limits = field(default_factory=Limits)
    retention_days: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    # How often the retention job runs, seconds.
    retention_interval: float = 3600.0
    nats: NatsExport = field(default_factory=NatsExport)
    siem: dict[str, Any] = field(default_factory=dict)  # the [siem] table (docs/siem.md)
    fleet_public_key: str = ""  # [fleet] public_key: where bundle signatures are checked (docs/fleet.md)

    @property
    def url(self) -> str:
        """The base URL operators and agents use (public_url when set)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_listen(text: str) -> tuple[str, int]:
    """Split `HOST:PORT` (`[::1]:8080` for IPv6) into its parts."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"listen: expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or DEFAULT_HOST
    return host, int(port_text)


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a table")
    return value


def _typed(table: dict[str, Any], prefix: str, key: str, kind: type, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{prefix}.{key}: expected {kind.__name__}, got {value!r}")
    if isinstance(value, int | float) and value < 0:
        raise ConfigError(f"{prefix}.{key}: must not be negative, got {value!r}")
    return value


def _check_keys(table: dict[str, Any], prefix: str, known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")


def _dataclass_from(table: dict[str, Any], prefix: str, cls: type[Any]) -> Any:
    defaults = cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(table, prefix, set(fields))
    values = {
        name: _typed(table, prefix, name, type(getattr(defaults, name)), getattr(defaults, name)) for name in fields
    }
    return cls(**values)


def _siem(table: dict[str, Any]) -> dict[str, Any]:
    from collector.siem import SiemConfig, SiemConfigError

    try:
        SiemConfig.from_mapping(table)  # validated here so a bad [siem] table fails at start, by key
    except SiemConfigError as exc:
        raise ConfigError(str(exc)) from None
    return table


def _fleet(table: dict[str, Any]) -> dict[str, Any]:
    _check_keys(table, "fleet", {"public_key"})
    return table


def load_config(path: str | Path | None = None, **overrides: Any) -> CollectorConfig:
    """Read a TOML config (optional) and apply keyword overrides (`host`, `port`, `db`, ...)."""
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    _check_keys(doc, "(top)", {"server", "database", "limits", "retention", "nats", "siem", "fleet"})
    server = _section(doc, "server")
    _check_keys(server, "server", {"listen", "tls_cert", "tls_key", "public_url", "dashboard"})
    host, port = parse_listen(_typed(server, "server", "listen", str, f"{DEFAULT_HOST}:{DEFAULT_PORT}"))
    database = _section(doc, "database")
    _check_keys(database, "database", {"url", "retention_interval"})
    retention = _section(doc, "retention")
    _check_keys(retention, "retention", set(DEFAULT_RETENTION_DAYS))
    days = dict(DEFAULT_RETENTION_DAYS)
    for kind in DEFAULT_RETENTION_DAYS:
        days[kind] = _typed(retention, "retention", kind, float, days[kind])
    config = CollectorConfig(
        host=host,
        port=port,
        db=_typed(database, "database", "url", str, DEFAULT_DB),
        tls_cert=_typed(server, "server", "tls_cert", str, ""),
        tls_key=_typed(server, "server", "tls_key", str, ""),
        public_url=_typed(server, "server", "public_url", str, ""),
        dashboard=_typed(server, "server", "dashboard", bool, True),
        limits=_dataclass_from(_section(doc, "limits"), "limits", Limits),
        retention_days=days,
        retention_interval=_typed(database, "database", "retention_interval", float, 3600.0),
        nats=_dataclass_from(_section(doc, "nats"), "nats", NatsExport),
        siem=_siem(_section(doc, "siem")),
        fleet_public_key=_typed(_fleet(_section(doc, "fleet")), "fleet", "public_key", str, ""),
    )
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key must be set together")
    if overrides:
        config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return config
