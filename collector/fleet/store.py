"""Fleet state in the collector's database: bundles, groups of sites, assignments with rollout, site settings.

The tables live beside the collector's own (same SQLite file or PostgreSQL schema), created on start with
`CREATE TABLE IF NOT EXISTS` through the store's primitives, so several collectors on one PostgreSQL share
them and the CLI writes while a collector serves. Archives are stored whole (a few MB at most,
telemetry.bundle.MAX_TOTAL caps them) so any collector behind a load balancer can serve any bundle.

Assignment: a site's own assignment wins over its group's. A rollout stage lists canary agents and a
percentage; an agent is in the stage when it is a canary or when its bucket (SHA-256 of agent id and bundle
digest, mod 100) is below the percentage; agents outside the stage keep the previous bundle of that target.
`promote` sets the percentage to 100.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from collector.store import SqlStore
from collector.store.base import Row, Statement
from telemetry.bundle import Manifest

TARGET_KINDS: Final = ("site", "group")
# Settings a collector may manage centrally (docs/fleet.md); anything else is refused by name.
SETTING_KEYS: Final = ("privacy_profile", "home_net", "dhcp_servers", "resolvers", "closed_segments")
PERCENT_ALL: Final = 100
# Privacy profiles an agent knows (agent/privacy.py PROFILES, docs/privacy.md).
PRIVACY_PROFILES: Final = ("full", "pseudonymised", "minimal")
# Entries per list setting: telemetry.schema.MAX_ITEMS, the cap on every list an agent sends.
MAX_SETTING_ITEMS: Final = 256
_MAC_RE: Final = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _address_or_mac(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_MAC_RE.match(text.lower()))
    return True


_LIST_CHECKS: Final = {
    "home_net": (_network, "a CIDR"),
    "closed_segments": (_network, "a CIDR"),
    "dhcp_servers": (_address_or_mac, "an IP address or MAC"),
    "resolvers": (_address_or_mac, "an IP address"),
}


def check_settings(settings: dict[str, Any]) -> None:
    """FleetError naming the first bad key or entry (`settings.home_net[2]: ...`)."""
    for key, value in settings.items():
        if key not in SETTING_KEYS:
            raise FleetError(f"settings.{key}: not a managed setting ({', '.join(SETTING_KEYS)})")
        if key == "privacy_profile":
            if value not in PRIVACY_PROFILES:
                raise FleetError(f"settings.privacy_profile: expected one of {', '.join(PRIVACY_PROFILES)}")
            continue
        check, what = _LIST_CHECKS[key]
        if not isinstance(value, list) or len(value) > MAX_SETTING_ITEMS:
            raise FleetError(f"settings.{key}: expected a list of at most {MAX_SETTING_ITEMS} entries")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not check(item):
                raise FleetError(f"settings.{key}[{i}]: {str(item)[:60]!r} is not {what}")


def _ddl(blob: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE IF NOT EXISTS fleet_bundles (
            digest TEXT PRIMARY KEY, version TEXT NOT NULL, description TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL, published_at DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL,
            files INTEGER NOT NULL, key_id TEXT NOT NULL, archive {blob} NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS fleet_site_groups (site TEXT PRIMARY KEY, group_name TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS fleet_assignments (
            target_kind TEXT NOT NULL, target TEXT NOT NULL, digest TEXT NOT NULL, previous TEXT,
            canary TEXT NOT NULL, percent INTEGER NOT NULL, assigned_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (target_kind, target))""",
        """CREATE TABLE IF NOT EXISTS fleet_settings (
            target_kind TEXT NOT NULL, target TEXT NOT NULL, settings TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (target_kind, target))""",
    )


@dataclass(frozen=True, slots=True)
class Assignment:
    target_kind: str
    target: str
    digest: str
    previous: str | None
    canary: tuple[str, ...]
    percent: int
    assigned_at: float


class FleetError(ValueError):
    """A fleet request that cannot be applied; the message names the field."""


def bucket(agent_id: str, digest: str) -> int:
    """The rollout bucket (0-99) of an agent for one bundle: stable, spread evenly, different per bundle."""
    return int.from_bytes(hashlib.sha256(f"{agent_id}\n{digest}".encode()).digest()[:8], "big") % 100


def in_stage(agent_id: str, a: Assignment) -> bool:
    """True when the agent takes the assignment's new bundle at its current rollout stage."""
    return a.percent >= PERCENT_ALL or agent_id in a.canary or bucket(agent_id, a.digest) < a.percent


class FleetStore:
    """Fleet queries and writes over a collector `SqlStore` (either back-end)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def _exec(self, statements: Sequence[Statement]) -> list[int]:
        return await self.store._execute(statements)

    async def ensure_schema(self) -> None:
        """Create the fleet tables when absent (idempotent, safe with several collectors)."""
        blob = "BYTEA" if self.store.dialect.name == "postgresql" else "BLOB"
        await self._exec([(s, ()) for s in _ddl(blob)])

    # ---- bundles ------------------------------------------------------------------------------------
    async def add_bundle(self, archive: bytes, digest: str, manifest: Manifest, now: float) -> bool:
        """Store a verified archive; False when that exact archive is already stored."""
        if await self.store.fetch("SELECT digest FROM fleet_bundles WHERE digest = ?", (digest,)):
            return False
        await self._exec(
            [
                (
                    "INSERT INTO fleet_bundles (digest, version, description, created, published_at, size, files, "
                    "key_id, archive) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        digest,
                        manifest.version,
                        manifest.description,
                        manifest.created,
                        now,
                        len(archive),
                        len(manifest.files),
                        manifest.key_id,
                        archive,
                    ),
                )
            ]
        )
        return True

    async def bundles(self) -> list[Row]:
        """Every bundle (newest first) with the targets it is assigned to."""
        rows = await self.store.fetch(
            "SELECT digest, version, description, created, published_at, size, files, key_id FROM fleet_bundles "
            "ORDER BY published_at DESC, digest"
        )
        assigned = await self.assignments()
        for row in rows:
            row["assigned"] = [
                {"target_kind": a.target_kind, "target": a.target, "percent": a.percent, "canary": list(a.canary)}
                for a in assigned
                if a.digest == row["digest"]
            ]
        return rows

    async def bundle(self, digest: str) -> Row | None:
        rows = await self.store.fetch(
            "SELECT digest, version, archive FROM fleet_bundles WHERE digest = ?",
            (digest,),
        )
        if not rows:
            return None
        row = rows[0]
        row["archive"] = bytes(row["archive"])
        return row

    # ---- groups and assignment ----------------------------------------------------------------------
    async def set_group(self, group: str, sites: Sequence[str]) -> None:
        """Put sites in a group (a site belongs to at most one group)."""
        await self._exec(
            [("DELETE FROM fleet_site_groups WHERE site = ?", (site,)) for site in sites]
            + [("INSERT INTO fleet_site_groups (site, group_name) VALUES (?, ?)", (site, group)) for site in sites]
        )

    async def groups(self) -> dict[str, list[str]]:
        rows = await self.store.fetch("SELECT site, group_name FROM fleet_site_groups ORDER BY group_name, site")
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["group_name"], []).append(r["site"])
        return out

    async def group_of(self, site: str) -> str | None:
        rows = await self.store.fetch("SELECT group_name FROM fleet_site_groups WHERE site = ?", (site,))
        return str(rows[0]["group_name"]) if rows else None

    async def assign(
        self, kind: str, target: str, digest: str, canary: Sequence[str], percent: int, now: float
    ) -> Assignment:
        """Assign a stored bundle to a site or group, starting a rollout stage; the old one stays as previous."""
        if kind not in TARGET_KINDS:
            raise FleetError(f"target kind {kind!r}: expected site or group")
        if not 0 <= percent <= PERCENT_ALL:
            raise FleetError(f"percent {percent}: expected 0-100")
        if not await self.store.fetch("SELECT digest FROM fleet_bundles WHERE digest = ?", (digest,)):
            raise FleetError(f"bundle {digest}: not published")
        current = await self.assignment(kind, target)
        previous = current.digest if current is not None and current.digest != digest else None
        if current is not None and current.digest == digest:
            previous = current.previous
        await self._exec(
            [
                ("DELETE FROM fleet_assignments WHERE target_kind = ? AND target = ?", (kind, target)),
                (
                    "INSERT INTO fleet_assignments (target_kind, target, digest, previous, canary, percent, "
                    "assigned_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (kind, target, digest, previous, json.dumps(sorted(set(canary))), percent, now),
                ),
            ]
        )
        return Assignment(kind, target, digest, previous, tuple(sorted(set(canary))), percent, now)

    async def promote(self, kind: str, target: str) -> bool:
        """Finish a rollout: every agent of the target takes the new bundle."""
        counts = await self._exec(
            [
                (
                    "UPDATE fleet_assignments SET percent = ? WHERE target_kind = ? AND target = ?",
                    (PERCENT_ALL, kind, target),
                )
            ]
        )
        return counts[0] > 0

    async def assignment(self, kind: str, target: str) -> Assignment | None:
        rows = await self.store.fetch(
            "SELECT target_kind, target, digest, previous, canary, percent, assigned_at FROM fleet_assignments "
            "WHERE target_kind = ? AND target = ?",
            (kind, target),
        )
        return _assignment(rows[0]) if rows else None

    async def assignments(self) -> list[Assignment]:
        rows = await self.store.fetch(
            "SELECT target_kind, target, digest, previous, canary, percent, assigned_at FROM fleet_assignments "
            "ORDER BY target_kind, target"
        )
        return [_assignment(r) for r in rows]

    async def resolve(self, agent_id: str, site: str) -> str | None:
        """The digest an agent should run now: its site's assignment, else its group's, at the rollout stage."""
        found = await self.assignment("site", site)
        if found is None:
            group = await self.group_of(site)
            found = await self.assignment("group", group) if group is not None else None
        if found is None:
            return None
        return found.digest if in_stage(agent_id, found) else found.previous

    # ---- settings -----------------------------------------------------------------------------------
    async def set_settings(self, kind: str, target: str, settings: dict[str, Any], now: float) -> dict[str, Any]:
        """Replace the central settings of a site or group; unknown keys are refused by name."""
        if kind not in TARGET_KINDS:
            raise FleetError(f"target kind {kind!r}: expected site or group")
        check_settings(settings)
        await self._exec(
            [
                ("DELETE FROM fleet_settings WHERE target_kind = ? AND target = ?", (kind, target)),
                (
                    "INSERT INTO fleet_settings (target_kind, target, settings, updated_at) VALUES (?, ?, ?, ?)",
                    (kind, target, json.dumps(settings, sort_keys=True), now),
                ),
            ]
        )
        return settings

    async def settings_for(self, site: str) -> dict[str, Any]:
        """A site's central settings: its group's, overridden key by key by the site's own."""
        out: dict[str, Any] = {}
        group = await self.group_of(site)
        for kind, target in (("group", group), ("site", site)):
            if target is None:
                continue
            rows = await self.store.fetch(
                "SELECT settings FROM fleet_settings WHERE target_kind = ? AND target = ?", (kind, target)
            )
            if rows:
                out.update(json.loads(rows[0]["settings"]))
        return out

    # ---- status -------------------------------------------------------------------------------------
    async def status(self, scope: frozenset[str] | None = None) -> list[Row]:
        """Per agent: site, group, the version it should run, the version its last health event reported."""
        versions = {
            r["digest"]: r["version"] for r in await self.store.fetch("SELECT digest, version FROM fleet_bundles")
        }
        out = []
        for agent in await self.store.list_agents(scope):
            if agent.get("revoked_at"):
                continue
            wanted = await self.resolve(agent["agent_id"], agent["site"])
            running = (agent.get("health") or {}).get("rules_version")
            expected = versions.get(wanted) if wanted else None
            out.append(
                {
                    "agent_id": agent["agent_id"],
                    "site": agent["site"],
                    "group": await self.group_of(agent["site"]),
                    "assigned_digest": wanted,
                    "assigned_version": expected,
                    "running_version": running,
                    "in_sync": expected is None or running == expected,
                    "last_seen": agent.get("last_seen"),
                }
            )
        return out


def _assignment(row: Row) -> Assignment:
    return Assignment(
        row["target_kind"],
        row["target"],
        row["digest"],
        row["previous"],
        tuple(json.loads(row["canary"])),
        int(row["percent"]),
        float(row["assigned_at"]),
    )
