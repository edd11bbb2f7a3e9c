"""The agent's fleet poller: fetch the bundle the collector assigns, verify it, hand it to the reload path.

Every `interval` seconds (plus up to `jitter` of it at random, so forty sites do not poll in step) the
poller asks `GET /fleet/v1/assignment` with telemetry.signing headers over an empty body. When the digest
differs from the running one and was not refused before, it downloads `/fleet/v1/bundles/<digest>`, checks
the archive digest and the Ed25519 signature against the configured public key (telemetry.bundle), writes
the files to `<state_dir>/bundles/<version>-<digest12>` (through a temporary folder renamed into place) and
calls `reload(path) -> bool`, the daemon's SIGHUP path. True makes it the running bundle (recorded in
`current.json`, fsynced, so a restart knows it); False, or any verification failure, deletes the new folder
and keeps the previous bundle running; the refused digest is not fetched again until the assignment moves.
`running_version` is what health events report as `rules_version`.

Central site settings come from `GET /fleet/v1/settings`; `merge_settings` applies the local pins.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from telemetry.bundle import BundleError, load_public_key, open_bundle
from telemetry.signing import sign

log = logging.getLogger("veille.agent.fleet")
ASSIGNMENT_PATH: Final = "/fleet/v1/assignment"
BUNDLE_PATH: Final = "/fleet/v1/bundles/"
SETTINGS_PATH: Final = "/fleet/v1/settings"
STATE_FILE: Final = "current.json"
# Settings the collector manages (collector/fleet/store.py SETTING_KEYS; docs/fleet.md).
SETTING_KEYS: Final = ("privacy_profile", "home_net", "dhcp_servers", "resolvers", "closed_segments")
# Largest archive accepted: telemetry.bundle.MAX_TOTAL (64 MiB of content) plus 1 MiB of archive overhead.
MAX_DOWNLOAD: Final = 65 * 1024 * 1024

Reload = Callable[[Path], "bool | Awaitable[bool]"]


class FleetConfigError(ValueError):
    """A `[fleet]` value that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """`[fleet]` of the agent config; url, agent id and secret default to the `[collector]` table's."""

    url: str
    agent_id: str
    secret: str
    public_key: str
    state_dir: str
    # Five minutes: a new rule set reaches every site within minutes without loading the collector
    # (forty agents polling every 300 s is one small request every 7.5 s).
    interval: float = 300.0
    # Share of the interval added at random (0-1).
    jitter: float = 0.2
    timeout: float = 30.0
    # Bundle folders kept on disk: the running one and the one before it.
    keep: int = 2
    # Setting keys whose local value wins over the collector's (docs/fleet.md merge rule).
    pin: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], collector: Mapping[str, Any] | None = None) -> FleetConfig:
        """Build from a TOML table; FleetConfigError names the first bad key (`fleet.interval`)."""
        base = dict(collector or {})
        values: dict[str, Any] = {}
        for key in ("url", "agent_id", "secret"):
            value = table.get(key, base.get(key))
            if not isinstance(value, str) or not value:
                raise FleetConfigError(f"fleet.{key}: required (or set it in [collector])")
            values[key] = value
        for key in ("public_key", "state_dir"):
            value = table.get(key)
            if not isinstance(value, str) or not value:
                raise FleetConfigError(f"fleet.{key}: required text")
            values[key] = value
        try:
            load_public_key(values["public_key"])
        except BundleError as exc:
            raise FleetConfigError(f"fleet.public_key: {exc.detail}") from None
        for key, lo, hi in (("interval", 1.0, 86400.0), ("jitter", 0.0, 1.0), ("timeout", 1.0, 600.0)):
            if key in table:
                value = table[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
                    raise FleetConfigError(f"fleet.{key}: expected a number between {lo} and {hi}")
                values[key] = float(value)
        if "keep" in table:
            if not isinstance(table["keep"], int) or not 1 <= table["keep"] <= 10:
                raise FleetConfigError("fleet.keep: expected an integer between 1 and 10")
            values["keep"] = table["keep"]
        pin = table.get("pin", [])
        if not isinstance(pin, list) or any(p not in SETTING_KEYS for p in pin):
            raise FleetConfigError(f"fleet.pin: expected a list of {', '.join(SETTING_KEYS)}")
        values["pin"] = tuple(pin)
        unknown = sorted(set(table) - {*values, "interval", "jitter", "timeout", "keep", "pin"})
        if unknown:
            raise FleetConfigError(f"fleet.{unknown[0]}: unknown key")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class BundleFiles:
    """What a bundle folder holds, by the layout docs/fleet.md describes."""

    rules: tuple[str, ...]
    ioc: tuple[str, ...]
    fingerprints: tuple[str, ...]


def bundle_files(path: Path) -> BundleFiles:
    """Rule files (`rules/*.rules`), IOC lists (`ioc/*`) and fingerprint databases (`fingerprints/*`)."""

    def files(folder: str, pattern: str) -> tuple[str, ...]:
        return tuple(sorted(str(p) for p in (path / folder).glob(pattern) if p.is_file()))

    return BundleFiles(files("rules", "*.rules"), files("ioc", "*"), files("fingerprints", "*"))


def merge_settings(local: Mapping[str, Any], central: Mapping[str, Any], pin: Iterable[str]) -> dict[str, Any]:
    """Effective settings: the collector's value for every managed key, unless the local config pins it."""
    pinned = set(pin)
    out = dict(local)
    for key in SETTING_KEYS:
        if key in central and key not in pinned:
            out[key] = central[key]
    return out


@dataclass
class PollerState:
    running_digest: str | None = None
    running_version: str | None = None
    running_path: str | None = None
    refused: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None
    last_poll: float | None = None


class BundlePoller:
    """Polls the collector for this agent's bundle; see the module docstring for the protocol."""

    def __init__(
        self,
        config: FleetConfig,
        reload: Reload,
        session: aiohttp.ClientSession | None = None,
        on_settings: Callable[[dict[str, Any]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.reload = reload
        self.on_settings = on_settings
        self.public_key = load_public_key(config.public_key)
        self.state = PollerState()
        self.settings: dict[str, Any] = {}
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self.root = Path(config.state_dir)
        self._load_state()

    @property
    def running_version(self) -> str | None:
        """The version of the running bundle (health events' `rules_version`)."""
        return self.state.running_version

    @property
    def running_path(self) -> Path | None:
        """Folder of the running bundle (what the daemon loads at start-up), None when there is none."""
        return Path(self.state.running_path) if self.state.running_path else None

    def _load_state(self) -> None:
        path = self.root / STATE_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(doc, dict) and Path(str(doc.get("path"))).is_dir():
            self.state.running_digest = doc.get("digest")
            self.state.running_version = doc.get("version")
            self.state.running_path = doc.get("path")

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (STATE_FILE + ".tmp")
        body = {
            "digest": self.state.running_digest,
            "version": self.state.running_version,
            "path": self.state.running_path,
            "since": time.time(),
        }
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(body, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / STATE_FILE)

    async def _get(self, path: str) -> aiohttp.ClientResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        headers = sign(self.config.agent_id, self.config.secret, b"", time.time())
        return await self._session.get(self.config.url.rstrip("/") + path, headers=headers)

    async def _get_json(self, path: str) -> dict[str, Any]:
        async with await self._get(path) as resp:
            if resp.status != 200:
                raise FleetFetchError(f"GET {path}: HTTP {resp.status}: {(await resp.text())[:200]}")
            body = await resp.json()
        if not isinstance(body, dict):
            raise FleetFetchError(f"GET {path}: expected a JSON object")
        return body

    async def poll_once(self) -> str:
        """One poll: `none`, `unchanged`, `refused` (previously or now), `updated`, or `error`."""
        self.state.last_poll = time.time()
        try:
            await self._poll_settings()
            assignment = await self._get_json(ASSIGNMENT_PATH)
            digest = assignment.get("digest")
            if not isinstance(digest, str) or not digest:
                return "none"
            if digest == self.state.running_digest:
                return "unchanged"
            if digest in self.state.refused:
                return "refused"
            async with await self._get(BUNDLE_PATH + digest) as resp:
                if resp.status != 200:
                    raise FleetFetchError(f"GET bundle {digest[:12]}: HTTP {resp.status}")
                archive = await resp.content.read(MAX_DOWNLOAD + 1)
            if len(archive) > MAX_DOWNLOAD:
                return self._refuse(digest, f"archive larger than {MAX_DOWNLOAD} bytes")
        except (TimeoutError, aiohttp.ClientError, FleetFetchError, ValueError) as exc:
            self.state.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("fleet poll failed: %s", self.state.last_error)
            return "error"
        try:
            bundle = open_bundle(archive, self.public_key, expected_digest=digest)
        except BundleError as exc:
            return self._refuse(digest, str(exc))
        return await self._install(digest, bundle.version, bundle.files)

    async def _poll_settings(self) -> None:
        body = await self._get_json(SETTINGS_PATH)
        settings = body.get("settings")
        if isinstance(settings, dict) and settings != self.settings:
            self.settings = settings
            if self.on_settings is not None:
                self.on_settings(settings)

    def _refuse(self, digest: str, reason: str) -> str:
        self.state.refused[digest] = reason
        self.state.last_error = f"bundle {digest[:12]} refused: {reason}"
        log.error("%s; keeping %s", self.state.last_error, self.state.running_version or "no bundle")
        return "refused"

    async def _install(self, digest: str, version: str, files: Mapping[str, bytes]) -> str:
        bundles = self.root / "bundles"
        bundles.mkdir(parents=True, exist_ok=True)
        final = bundles / f"{version}-{digest[:12]}"
        tmp = bundles / f".tmp-{digest[:12]}"
        shutil.rmtree(tmp, ignore_errors=True)
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        try:
            result = self.reload(final)
            ok = await result if inspect.isawaitable(result) else result
        except Exception as exc:  # the reload path must never take the poller down; the old bundle stays
            log.exception("reload of bundle %s raised", version)
            ok = False
            reason = f"reload raised {type(exc).__name__}: {exc}"
        else:
            reason = "reload refused it (rules or databases did not load)"
        if not ok:
            shutil.rmtree(final, ignore_errors=True)
            return self._refuse(digest, reason)
        self.state.running_digest, self.state.running_version = digest, version
        self.state.running_path = str(final)
        self.state.refused.clear()
        self.state.last_error = None
        self._save_state()
        self._prune(bundles, final)
        log.info("bundle %s (%s) running", version, digest[:12])
        return "updated"

    def _prune(self, bundles: Path, keep_path: Path) -> None:
        dirs = sorted((p for p in bundles.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_mtime)
        extra = [p for p in dirs if p != keep_path][: max(0, len(dirs) - self.config.keep)]
        for path in extra:
            shutil.rmtree(path, ignore_errors=True)

    def next_delay(self) -> float:
        """Seconds until the next poll: the interval plus up to `jitter` of it."""
        return self.config.interval * (1.0 + self._rng.random() * self.config.jitter)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set (first poll at once)."""
        try:
            while not stop.is_set():
                await self.poll_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.next_delay())
        finally:
            await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


class FleetFetchError(Exception):
    """The collector answered a fleet request with something other than what was asked."""


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
