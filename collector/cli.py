"""`veille collector ...`: serve, enrol and revoke agents, issue and revoke operator tokens.

`main(argv)` returns an exit status: 0 done, 1 nothing matched (revoking an unknown id), 2 bad usage or
configuration (the message names the option or key). Administrative commands open the same database as
`serve` (`--db` or the config's `database.url`), so they work while a collector is running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from collector.auth import ROLES, hash_token, new_token
from collector.config import CollectorConfig, ConfigError, load_config, parse_listen
from collector.export import ExportError
from collector.store import SqlStore, StoreError, make_store
from telemetry.config import ShipperConfig
from telemetry.errors import ConfigError as AgentConfigError
from telemetry.signing import AGENT_ID_RE, generate_secret

T = TypeVar("T")
_SITE_RE = re.compile(r"^[^\x00-\x1f]{1,64}$")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="collector TOML config")
    common.add_argument("--db", metavar="URL", help="SQLite file path or postgresql:// URL (overrides config)")

    parser = argparse.ArgumentParser(prog="veille collector", description="Veille central collector")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the collector")
    serve.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:8080)")
    serve.add_argument("--public-url", metavar="URL", help="URL agents and operators use, if not the listen one")

    agent = sub.add_parser("agent", help="enrol, list and revoke agents").add_subparsers(dest="action", required=True)
    add = agent.add_parser("add", parents=[common], help="enrol an agent; prints its secret once")
    add.add_argument("--site", required=True, help="site the agent reports for")
    add.add_argument("--id", dest="agent_id", help="agent id (default: generated)")
    add.add_argument("--url", help="collector URL written in the agent config (default: from config)")
    add.add_argument("--config-out", metavar="FILE", help="write a ready agent config (mode 0600)")
    add.add_argument("--spool-dir", metavar="DIR", help="spool folder to put in the agent config")
    add.add_argument(
        "--allow-insecure", action="store_true", help="let the agent use plain http to a non-loopback collector"
    )
    add.add_argument("--json", action="store_true", help="print as JSON")
    lst = agent.add_parser("list", parents=[common], help="list agents")
    lst.add_argument("--json", action="store_true")
    rev = agent.add_parser("revoke", parents=[common], help="revoke an agent's credentials")
    rev.add_argument("agent_id")

    token = sub.add_parser("token", help="operator tokens").add_subparsers(dest="action", required=True)
    tadd = token.add_parser("add", parents=[common], help="issue a token; prints it once")
    tadd.add_argument("--role", required=True, choices=ROLES)
    tadd.add_argument("--site", action="append", default=[], help="site a viewer may read (repeat)")
    tadd.add_argument("--name", default="", help="who the token is for")
    tadd.add_argument("--json", action="store_true", help="print as JSON")
    tlst = token.add_parser("list", parents=[common], help="list tokens (never their value)")
    tlst.add_argument("--json", action="store_true")
    trev = token.add_parser("revoke", parents=[common], help="revoke a token")
    trev.add_argument("token_id")
    return parser


def _config(args: argparse.Namespace) -> CollectorConfig:
    overrides: dict[str, Any] = {"db": args.db}
    if getattr(args, "listen", None):
        overrides["host"], overrides["port"] = parse_listen(args.listen)
    if getattr(args, "public_url", None):
        overrides["public_url"] = args.public_url
    return load_config(args.config, **overrides)


def _with_store(config: CollectorConfig, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = make_store(config.db)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def agent_config_text(
    url: str, agent_id: str, secret: str, site: str, spool_dir: str | None = None, allow_insecure: bool = False
) -> str:
    """The `[collector]` TOML table an agent reads (telemetry.config.ShipperConfig), validated."""
    table: dict[str, Any] = {"url": url, "agent_id": agent_id, "secret": secret, "site": site}
    if spool_dir:
        table["spool_dir"] = spool_dir
    if allow_insecure:
        table["allow_insecure"] = True
    ShipperConfig.from_mapping(table)
    lines = ["[collector]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _agent_add(args: argparse.Namespace, config: CollectorConfig) -> int:
    agent_id = args.agent_id or f"agent-{secrets.token_hex(4)}"
    if not AGENT_ID_RE.match(agent_id):
        raise ConfigError(f"--id: {agent_id!r} is not 1-64 of [A-Za-z0-9._-]")
    if not _SITE_RE.match(args.site):
        raise ConfigError("--site: must be 1-64 printable characters")
    secret = generate_secret()
    url = args.url or config.url
    try:
        snippet = agent_config_text(url, agent_id, secret, args.site, args.spool_dir, args.allow_insecure)
    except AgentConfigError as exc:
        raise ConfigError(f"{exc.detail} (see --url, --allow-insecure, server.public_url)") from None
    _with_store(config, lambda store: store.add_agent(agent_id, args.site, secret, time.time()))
    if args.config_out:
        path = Path(args.config_out)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(snippet)
    if args.json:
        print(
            json.dumps(
                {
                    "agent_id": agent_id,
                    "site": args.site,
                    "secret": secret,
                    "url": url,
                    "config": snippet,
                    "config_out": args.config_out,
                }
            )
        )
        return 0
    print(f"agent id: {agent_id}")
    print(f"site:     {args.site}")
    print(f"secret:   {secret}")
    print("The secret is shown only this once.")
    if args.config_out:
        print(f"agent config written to {args.config_out}")
    print("\n# agent config:")
    print(snippet, end="")
    return 0


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, float) and value > 1e9:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))
        return "-" if value is None else str(value)

    table = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _token_add(args: argparse.Namespace, config: CollectorConfig) -> int:
    sites = sorted(set(args.site))
    if args.role == "viewer" and not sites:
        raise ConfigError("--site: a viewer token needs at least one site")
    if args.role != "viewer" and sites:
        raise ConfigError(f"--site: an {args.role} token reads every site; --site is for viewers")
    token_id, token = new_token()
    _with_store(
        config,
        lambda store: store.add_token(token_id, args.name, args.role, sites, hash_token(token), time.time()),
    )
    if args.json:
        print(json.dumps({"token_id": token_id, "token": token, "role": args.role, "sites": sites, "name": args.name}))
    else:
        print(f"token id: {token_id}\nrole:     {args.role}\nsites:    {', '.join(sites) or 'all'}")
        print(f"token:    {token}\nThe token is shown only this once; send it as 'Authorization: Bearer TOKEN'.")
    return 0


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.command == "serve":
        from collector.app import serve

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

        asyncio.run(serve(config))
        return 0
    key = (args.command, args.action)
    if key == ("agent", "add"):
        return _agent_add(args, config)
    if key == ("token", "add"):
        return _token_add(args, config)
    if key in (("agent", "list"), ("token", "list")):
        if args.command == "agent":
            rows = _with_store(config, lambda store: store.list_agents())
            columns = [
                "agent_id",
                "site",
                "version",
                "last_seen",
                "last_seq",
                "batches",
                "events",
                "rejected",
                "revoked_at",
            ]
        else:
            rows = _with_store(config, lambda store: store.list_tokens())
            for row in rows:
                row["sites"] = ",".join(row["sites"]) or "all"
            columns = ["token_id", "name", "role", "sites", "created_at", "revoked_at"]
        if args.json:
            print(json.dumps(rows))
        else:
            _print_table(rows, columns)
        return 0
    if key == ("agent", "revoke"):
        done = _with_store(config, lambda store: store.revoke_agent(args.agent_id, time.time()))
        print(f"agent {args.agent_id} revoked" if done else f"no active agent {args.agent_id!r}")
        return 0 if done else 1
    done = _with_store(config, lambda store: store.revoke_token(args.token_id, time.time()))
    print(f"token {args.token_id} revoked" if done else f"no active token {args.token_id!r}")
    return 0 if done else 1


def main(argv: list[str]) -> int:
    """Entry point of `veille collector ...`; returns the exit status."""
    if argv and argv[0] == "bundle":
        from collector.fleet.cli import main as bundle_main

        return bundle_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except (ConfigError, AgentConfigError, StoreError, ExportError) as exc:
        print(f"veille collector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
