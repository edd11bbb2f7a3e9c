"""Fleet management: signed bundles published to groups of sites, staged rollout, central site settings.

`setup_fleet(app, public_key)` adds the fleet routes (collector/fleet/api.py) and, once the collector's
store is open, creates the fleet tables (collector/fleet/store.py). `public_key` (base64 or PEM of the
collector's Ed25519 bundle key) lets admins upload signed bundles through the API; without it the API
refuses uploads and the CLI (collector/fleet/cli.py) is the way to publish.
"""

from __future__ import annotations

from aiohttp import web

from collector.fleet.api import FLEET, FLEET_KEY, add_routes
from collector.fleet.store import FleetStore
from collector.keys import STORE
from telemetry.bundle import load_public_key

__all__ = ["FLEET", "FleetStore", "setup_fleet"]


def setup_fleet(app: web.Application, public_key: str | None = None) -> None:
    """Register fleet routes on a collector app; call from `create_app` after the store is set."""
    app[FLEET] = FleetStore(app[STORE])
    if public_key:
        app[FLEET_KEY] = load_public_key(public_key)

    async def ensure_schema(app: web.Application) -> None:
        await app[FLEET].ensure_schema()

    app.on_startup.append(ensure_schema)
    add_routes(app)
