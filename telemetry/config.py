"""The shipper's configuration: the `[collector]` table of an agent config (TOML).

Keys (what `veille collector agent add --config-out FILE` writes; docs/wire.md):
url, agent_id, secret | secret_file, site, ca_file, client_cert, client_key, allow_insecure, spool_dir,
spool_max_bytes, batch_max_events, batch_max_bytes, batch_max_age; optional `encoding` and `request_timeout`.
Relative paths resolve against the config file's folder. Every error names the key path (`collector.url`).
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from telemetry.codec import ENCODINGS, ZSTD
from telemetry.errors import ConfigError
from telemetry.signing import AGENT_ID_RE

TABLE: Final = "collector"
# Defaults. A batch closes at 5,000 events, 1 MiB of MessagePack or 5 s, whichever first: at ~33 B per
# compressed flow a full batch is ~165 KiB on the wire, small enough to retry whole on a flaky mesh link,
# and 5 s bounds what a power cut can lose from memory. 64 MiB of spool holds ~2 million flow summaries
# (about a day of a busy school site), a small share of a gateway's SD card.
DEFAULT_BATCH_MAX_EVENTS: Final = 5_000
DEFAULT_BATCH_MAX_BYTES: Final = 1024 * 1024
DEFAULT_BATCH_MAX_AGE: Final = 5.0
DEFAULT_SPOOL_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_SPOOL_DIR: Final = "/var/lib/veille/spool"
DEFAULT_REQUEST_TIMEOUT: Final = 30.0
# Backoff: from 1 s doubling up to 5 min (AWS "exponential backoff and jitter", full jitter).
DEFAULT_BACKOFF_INITIAL: Final = 1.0
DEFAULT_BACKOFF_MAX: Final = 300.0
# A secret file larger than this is not a secret (generate_secret() makes 43 chars).
_MAX_SECRET_FILE: Final = 4096


@dataclass(frozen=True, slots=True)
class ShipperConfig:
    """Where and how the shipper sends batches; see the module docstring for the TOML keys."""

    url: str
    agent_id: str
    secret: str = field(repr=False)
    site: str
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    allow_insecure: bool = False
    spool_dir: Path = Path(DEFAULT_SPOOL_DIR)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    batch_max_age: float = DEFAULT_BATCH_MAX_AGE
    encoding: str = ZSTD
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX

    def __post_init__(self) -> None:
        _check_url(self.url, self.allow_insecure, f"{TABLE}.url")
        if not AGENT_ID_RE.match(self.agent_id):
            raise ConfigError(f"{TABLE}.agent_id: {self.agent_id!r} is not 1-64 of [A-Za-z0-9._-]")
        if not self.secret:
            raise ConfigError(f"{TABLE}.secret: empty")
        if not 1 <= len(self.site) <= 64:
            raise ConfigError(f"{TABLE}.site: must be 1-64 characters")
        if self.client_key is not None and self.client_cert is None:
            raise ConfigError(f"{TABLE}.client_key: given without client_cert")
        for name in ("spool_max_bytes", "batch_max_events", "batch_max_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{TABLE}.{name}: must be a positive integer")
        for name in ("batch_max_age", "request_timeout", "backoff_initial", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{TABLE}.{name}: must be positive")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"{TABLE}.encoding: {self.encoding!r} is not one of {', '.join(ENCODINGS)}")

    @classmethod
    def from_toml(cls, path: str | Path) -> ShipperConfig:
        """Load the `[collector]` table of a TOML file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        table = data.get(TABLE)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: no [{TABLE}] table")
        try:
            return cls.from_mapping(table, base=path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.detail}") from None

    @classmethod
    def from_mapping(cls, table: dict[str, Any], base: Path | None = None) -> ShipperConfig:
        """Build from a parsed `[collector]` table; relative paths resolve against `base`."""
        known = set(cls.__dataclass_fields__) | {"secret_file"}
        for key in table:
            if key not in known:
                raise ConfigError(f"{TABLE}.{key}: unknown key (known: {', '.join(sorted(known))})")
        args: dict[str, Any] = {}
        for key in ("url", "agent_id", "site", "encoding"):
            if key in table:
                args[key] = _typed(table, key, str)
        for key in ("url", "agent_id", "site"):
            if key not in args:
                raise ConfigError(f"{TABLE}.{key}: missing")
        for key in ("spool_max_bytes", "batch_max_events", "batch_max_bytes"):
            if key in table:
                args[key] = _typed(table, key, int)
        for key in ("batch_max_age", "request_timeout", "backoff_initial", "backoff_max"):
            if key in table:
                args[key] = float(_typed(table, key, (int, float)))
        if "allow_insecure" in table:
            args["allow_insecure"] = _typed(table, "allow_insecure", bool)
        for key in ("ca_file", "client_cert", "client_key", "spool_dir"):
            if key in table:
                args[key] = _path(_typed(table, key, str), base)
        args["secret"] = _secret(table, base)
        return cls(**args)


def _typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = table[key]
    bad_bool = isinstance(value, bool) and kind is not bool
    if bad_bool or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{TABLE}.{key}: expected {names}, got {type(value).__name__}")
    return value


def _path(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _secret(table: dict[str, Any], base: Path | None) -> str:
    if "secret" in table and "secret_file" in table:
        raise ConfigError(f"{TABLE}.secret_file: give either secret or secret_file, not both")
    if "secret" in table:
        return str(_typed(table, "secret", str))
    if "secret_file" not in table:
        raise ConfigError(f"{TABLE}.secret: missing (or secret_file)")
    path = _path(_typed(table, "secret_file", str), base)
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{TABLE}.secret_file: cannot read {path}: {exc.strerror}") from None
    if len(raw) > _MAX_SECRET_FILE:
        raise ConfigError(f"{TABLE}.secret_file: {path} is larger than {_MAX_SECRET_FILE} bytes")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{TABLE}.secret_file: {path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"{TABLE}.secret_file: {path} is empty")
    return secret


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(url: str, allow_insecure: bool, key: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ConfigError(f"{key}: {url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not an http(s) URL with a host")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise ConfigError(f"{key}: plain http to {parts.hostname} refused: use https, or set allow_insecure = true")
