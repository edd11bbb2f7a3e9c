"""`veille collector bundle ...`: signing key, build, publish, list, status, promote, groups, site settings.

`main(argv)` returns an exit status: 0 done, 1 nothing matched, 2 bad usage, configuration or bundle (the
message names the option, file or key). Commands that touch fleet state open the same database as
`veille collector serve` (`--db` or the config's `database.url`), so they work while a collector runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from collector.config import ConfigError, load_config
from collector.fleet.store import SETTING_KEYS, FleetError, FleetStore
from collector.store import StoreError, make_store
from telemetry.bundle import (
    MAX_FILES,
    MAX_TOTAL,
    BundleError,
    build,
    digest,
    generate_key,
    load_private_key,
    open_bundle,
)

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--config", metavar="FILE", help="collector TOML config")
    db.add_argument("--db", metavar="URL", help="SQLite file path or postgresql:// URL (overrides config)")
    target = argparse.ArgumentParser(add_help=False)
    one = target.add_mutually_exclusive_group(required=True)
    one.add_argument("--group", help="group of sites")
    one.add_argument("--site", help="one site")
    content = argparse.ArgumentParser(add_help=False)
    content.add_argument("dir", metavar="DIR", help="folder of rules/, ioc/, fingerprints/ files")
    content.add_argument("--key", required=True, metavar="FILE", help="collector bundle signing key (PEM)")
    content.add_argument("--version", dest="bundle_version", help="bundle version (default: UTC date and time)")
    content.add_argument("--description", default="", help="free text shown in listings")

    parser = argparse.ArgumentParser(prog="veille collector bundle", description="fleet bundles and settings")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="create the Ed25519 bundle signing key; prints the public key")
    keygen.add_argument("--out", required=True, metavar="FILE", help="private key file to create (mode 0600)")
    b = sub.add_parser("build", parents=[content], help="build a signed bundle file (for the API)")
    b.add_argument("-o", "--output", required=True, metavar="FILE")
    pub = sub.add_parser("publish", parents=[content, target, db], help="build, store and assign a bundle")
    pub.add_argument("--canary", action="append", default=[], metavar="AGENT", help="agent taking it first")
    pub.add_argument("--percent", type=int, default=None, help="share of the other agents taking it (0-100)")
    for name, text in (("list", "list bundles and groups"), ("status", "which agent runs which version")):
        p = sub.add_parser(name, parents=[db], help=text)
        p.add_argument("--json", action="store_true")
    sub.add_parser("promote", parents=[target, db], help="finish a rollout: every agent takes the bundle")
    grp = sub.add_parser("group", parents=[db], help="put sites in a group")
    grp.add_argument("name")
    grp.add_argument("--add-site", dest="sites", action="append", required=True, metavar="SITE")
    st = sub.add_parser("settings", parents=[target, db], help="set central site settings (KEY=JSON ...)")
    st.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help=f"keys: {', '.join(SETTING_KEYS)}")
    return parser


def read_dir(folder: str) -> dict[str, bytes]:
    """Every regular file under `folder` (hidden ones skipped) as bundle path -> content, within the caps."""
    root = Path(folder)
    if not root.is_dir():
        raise BundleError("bad_dir", f"{folder}: not a folder")
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        total += size
        if total > MAX_TOTAL or len(out) >= MAX_FILES:
            raise BundleError("too_large", f"{folder}: more than {MAX_TOTAL} bytes or {MAX_FILES} files")
        out[rel.as_posix()] = path.read_bytes()
    return out


def _build(args: argparse.Namespace) -> bytes:
    key = load_private_key(Path(args.key).read_bytes())
    version = args.bundle_version or time.strftime("%Y%m%d.%H%M%S", time.gmtime())
    return build(read_dir(args.dir), version, time.time(), key, args.description)


def _with_fleet(args: argparse.Namespace, work: Callable[[FleetStore], Awaitable[T]]) -> T:
    config = load_config(args.config, db=args.db)

    async def run() -> T:
        store = make_store(config.db)
        await store.open()
        try:
            fleet = FleetStore(store)
            await fleet.ensure_schema()
            return await work(fleet)
        finally:
            await store.close()

    return asyncio.run(run())


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise FleetError(f"{pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = [v for v in text.split(",") if v] if key != "privacy_profile" else text
    return out


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "keygen":
        pem, public = generate_key()
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        print(f"bundle signing key written to {args.out}")
        print(f"public key (agents' [fleet] public_key): {public}")
        return 0
    if cmd == "build":
        archive = _build(args)
        Path(args.output).write_bytes(archive)
        print(f"{args.output}: sha256 {digest(archive)}")
        return 0
    if cmd == "publish":
        archive = _build(args)
        key = load_private_key(Path(args.key).read_bytes())
        opened = open_bundle(archive, key.public_key())
        kind, target = ("group", args.group) if args.group else ("site", args.site)
        percent = args.percent if args.percent is not None else (0 if args.canary else 100)

        async def publish(fleet: FleetStore) -> None:
            now = time.time()
            await fleet.add_bundle(archive, opened.digest, opened.manifest, now)
            await fleet.assign(kind, target, opened.digest, args.canary, percent, now)

        _with_fleet(args, publish)
        print(
            f"published {opened.version} ({opened.digest}) to {kind} {target}: {percent}% + {len(args.canary)} canary"
        )
        return 0
    if cmd in ("list", "status"):
        if cmd == "list":
            rows = _with_fleet(args, lambda f: f.bundles())
            for r in rows:
                r["assigned"] = ", ".join(f"{a['target_kind']}:{a['target']}@{a['percent']}%" for a in r["assigned"])
            columns = ["version", "digest", "files", "size", "assigned", "description"]
        else:
            rows = _with_fleet(args, lambda f: f.status())
            columns = ["agent_id", "site", "group", "assigned_version", "running_version", "in_sync"]
        if args.json:
            print(json.dumps(rows))
        else:
            _table(rows, columns)
        return 0
    kind, target = ("group", args.group) if getattr(args, "group", None) else ("site", getattr(args, "site", ""))
    if cmd == "promote":
        done = _with_fleet(args, lambda f: f.promote(kind, target))
        print(f"{kind} {target}: rollout complete" if done else f"no assignment for {kind} {target!r}")
        return 0 if done else 1
    if cmd == "group":
        _with_fleet(args, lambda f: f.set_group(args.name, args.sites))
        print(f"group {args.name}: {', '.join(args.sites)}")
        return 0
    values = _settings(args.pairs)
    _with_fleet(args, lambda f: f.set_settings(kind, target, values, time.time()))
    print(f"{kind} {target} settings: {json.dumps(values, sort_keys=True)}")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `veille collector bundle ...`; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except (BundleError, FleetError, ConfigError, StoreError) as exc:
        print(f"veille collector bundle: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"veille collector bundle: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
