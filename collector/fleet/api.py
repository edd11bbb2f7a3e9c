"""Fleet HTTP routes: operators under `/api/v1/bundles` and `/api/v1/fleet/...`, agents under `/fleet/v1/`.

Operator routes sit behind the collector's bearer-token middleware (authenticated and audited like every
`/api/v1/` call); publishing, assigning, promoting and changing settings are for admins. Agent routes are
outside `/api/v1/` and authenticated like ingest: the request carries telemetry.signing's headers over an
empty body, checked against the agent's enrolled secret (revoked agents refused). An agent asks for its
assignment, then downloads the archive by digest only when it changed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.api import bad_parameter, principal
from collector.fleet.store import TARGET_KINDS, FleetError, FleetStore
from collector.keys import CONFIG, LIMITER, STORE
from collector.ratelimit import retry_after
from telemetry.bundle import MAX_TOTAL, BundleError, open_bundle
from telemetry.errors import TelemetryError
from telemetry.signing import AgentCredential, verify

log = logging.getLogger("veille.collector.fleet")
FLEET = web.AppKey("fleet", FleetStore)
FLEET_KEY = web.AppKey("fleet_key", Ed25519PublicKey)
AGENT_PREFIX = "/fleet/v1"
HEADER_DIGEST = "X-Veille-Bundle-Digest"
HEADER_VERSION = "X-Veille-Bundle-Version"
# A signed archive is at most the content cap plus its compressed overhead; gzip never grows data by more
# than 0.1% + a few bytes (RFC 1951 stored blocks), so the content cap with 1 MiB of slack bounds uploads.
MAX_UPLOAD = MAX_TOTAL + 1024 * 1024
MAX_CANARY = 256


def _error(cls: type[web.HTTPException], reason: str, detail: str, **extra: Any) -> web.HTTPException:
    return cls(text=json.dumps({"error": reason, "detail": detail, **extra}), content_type="application/json")


def _admin(request: web.Request) -> None:
    if not principal(request).is_admin:
        raise _error(web.HTTPForbidden, "forbidden", "fleet changes are for admins")


def _target(request: web.Request) -> tuple[str, str]:
    group, site = request.query.get("group"), request.query.get("site")
    if bool(group) == bool(site):
        raise bad_parameter("group", "give exactly one of group or site")
    kind, name = ("group", group) if group else ("site", site)
    assert name is not None
    if len(name) > 64:
        raise bad_parameter(kind, "longer than 64 characters")
    return kind, name


def _rollout(request: web.Request) -> tuple[list[str], int]:
    canary = [c for c in request.query.getall("canary", []) if c]
    if len(canary) > MAX_CANARY:
        raise bad_parameter("canary", f"at most {MAX_CANARY} agents")
    text = request.query.get("percent", "")
    if text == "":
        return canary, 0 if canary else 100
    try:
        percent = int(text)
    except ValueError:
        raise bad_parameter("percent", f"expected an integer, got {text[:20]!r}") from None
    if not 0 <= percent <= 100:
        raise bad_parameter("percent", "must be between 0 and 100")
    return canary, percent


# ---- operators -------------------------------------------------------------------------------------------
async def list_bundles(request: web.Request) -> web.Response:
    principal(request)
    return web.json_response({"items": await request.app[FLEET].bundles(), "groups": await request.app[FLEET].groups()})


async def publish(request: web.Request) -> web.Response:
    """POST a signed archive (built by `veille collector bundle build`), assigned to ?group= or ?site=."""
    _admin(request)
    kind, target = _target(request)
    canary, percent = _rollout(request)
    key = request.app.get(FLEET_KEY)
    if key is None:
        raise _error(web.HTTPServiceUnavailable, "no_fleet_key", "the collector has no fleet signing key configured")
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        raise _error(web.HTTPRequestEntityTooLarge, "too_large", f"bundle larger than {MAX_UPLOAD} bytes")
    archive = await request.content.read(MAX_UPLOAD + 1)
    if len(archive) > MAX_UPLOAD:
        raise _error(web.HTTPRequestEntityTooLarge, "too_large", f"bundle larger than {MAX_UPLOAD} bytes")
    try:
        opened = open_bundle(archive, key)
    except BundleError as exc:
        raise _error(web.HTTPUnprocessableEntity, exc.reason, str(exc), field="body") from None
    fleet = request.app[FLEET]
    now = time.time()
    await fleet.add_bundle(archive, opened.digest, opened.manifest, now)
    try:
        assigned = await fleet.assign(kind, target, opened.digest, canary, percent, now)
    except FleetError as exc:
        raise _error(web.HTTPUnprocessableEntity, "bad_assignment", str(exc)) from None
    return web.json_response(
        {
            "digest": opened.digest,
            "version": opened.version,
            "target_kind": kind,
            "target": target,
            "percent": assigned.percent,
            "canary": list(assigned.canary),
        },
        status=201,
    )


async def promote(request: web.Request) -> web.Response:
    _admin(request)
    kind, target = _target(request)
    if not await request.app[FLEET].promote(kind, target):
        raise _error(web.HTTPNotFound, "not_found", f"no assignment for {kind} {target!r}")
    return web.json_response({"target_kind": kind, "target": target, "percent": 100})


async def status(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response({"items": await request.app[FLEET].status(who.scope)})


async def set_group(request: web.Request) -> web.Response:
    _admin(request)
    body = await _json_body(request)
    sites = body.get("sites")
    if not isinstance(sites, list) or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in sites):
        raise bad_parameter("sites", "expected a list of site names (1-64 characters)")
    await request.app[FLEET].set_group(request.match_info["group"], sites)
    return web.json_response({"group": request.match_info["group"], "sites": sites})


async def put_settings(request: web.Request) -> web.Response:
    _admin(request)
    kind, target = request.match_info["kind"], request.match_info["target"]
    if kind not in TARGET_KINDS:
        raise _error(web.HTTPNotFound, "not_found", f"{kind!r}: expected site or group")
    body = await _json_body(request)
    try:
        saved = await request.app[FLEET].set_settings(kind, target, body, time.time())
    except FleetError as exc:
        raise _error(web.HTTPUnprocessableEntity, "bad_setting", str(exc)) from None
    return web.json_response({"target_kind": kind, "target": target, "settings": saved})


async def get_settings(request: web.Request) -> web.Response:
    who = principal(request)
    site = request.match_info["site"]
    if not who.may_read(site):
        raise _error(web.HTTPForbidden, "forbidden", f"no access to site {site!r}")
    return web.json_response({"site": site, "settings": await request.app[FLEET].settings_for(site)})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise bad_parameter("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise bad_parameter("body", "expected a JSON object")
    return body


# ---- agents ----------------------------------------------------------------------------------------------
async def _agent(request: web.Request) -> tuple[str, str]:
    """(agent_id, site) of a signed agent request; 401 otherwise."""
    agent_id = request.headers.get("X-Veille-Agent", "")
    record = await request.app[STORE].get_agent(agent_id) if agent_id else None

    def lookup(_: str) -> AgentCredential | None:
        if record is None:
            return None
        return AgentCredential(record.secret.encode("utf-8"), revoked=record.revoked_at is not None)

    try:
        verify(request.headers, b"", lookup, time.time(), request.app[CONFIG].limits.max_skew)
    except TelemetryError as exc:
        raise _error(web.HTTPUnauthorized, "unauthorized", str(exc)) from None
    assert record is not None
    # The ingest limiter's rate per agent, in a bucket of its own so polls never take ingest's tokens.
    wait = request.app[LIMITER].take(f"fleet:{record.agent_id}", time.monotonic())
    if wait > 0:
        refused = _error(web.HTTPTooManyRequests, "rate_limited", "too many fleet requests for this agent")
        refused.headers["Retry-After"] = retry_after(wait)
        raise refused
    return record.agent_id, record.site


async def agent_assignment(request: web.Request) -> web.Response:
    """What this agent should run: `{"digest", "version"}` (nulls when nothing is assigned)."""
    agent_id, site = await _agent(request)
    fleet = request.app[FLEET]
    digest = await fleet.resolve(agent_id, site)
    version = None
    if digest is not None:
        row = await fleet.bundle(digest)
        version = row["version"] if row else None
    return web.json_response({"agent_id": agent_id, "site": site, "digest": digest, "version": version})


async def agent_bundle(request: web.Request) -> web.Response:
    """The archive of a bundle assigned to this agent (the previous one too, during a rollout)."""
    agent_id, site = await _agent(request)
    digest = request.match_info["digest"].lower()
    fleet = request.app[FLEET]
    if digest != await fleet.resolve(agent_id, site):
        raise _error(web.HTTPNotFound, "not_found", "no such bundle for this agent")
    row = await fleet.bundle(digest)
    if row is None:
        raise _error(web.HTTPNotFound, "not_found", "no such bundle")
    return web.Response(
        body=row["archive"],
        content_type="application/gzip",
        headers={HEADER_DIGEST: digest, HEADER_VERSION: row["version"]},
    )


async def agent_settings(request: web.Request) -> web.Response:
    """The central settings of the agent's site (group's overridden by the site's)."""
    _, site = await _agent(request)
    return web.json_response({"site": site, "settings": await request.app[FLEET].settings_for(site)})


def add_routes(app: web.Application) -> None:
    """Register operator and agent fleet routes."""
    app.router.add_get("/api/v1/bundles", list_bundles)
    app.router.add_post("/api/v1/bundles", publish)
    app.router.add_get("/api/v1/bundles/status", status)
    app.router.add_post("/api/v1/bundles/promote", promote)
    app.router.add_put("/api/v1/fleet/groups/{group}", set_group)
    app.router.add_put("/api/v1/fleet/settings/{kind}/{target}", put_settings)
    app.router.add_get("/api/v1/fleet/sites/{site}/settings", get_settings)
    app.router.add_get(f"{AGENT_PREFIX}/assignment", agent_assignment)
    app.router.add_get(AGENT_PREFIX + "/bundles/{digest}", agent_bundle)
    app.router.add_get(f"{AGENT_PREFIX}/settings", agent_settings)
