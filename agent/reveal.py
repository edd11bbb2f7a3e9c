"""On the site only: the pseudonym key, the pseudonym -> value map, and `veille agent reveal`.

The agent's `PrivacyFilter` (agent/privacy.py) hands over each new pseudonym with the value it stands
for; `PseudonymMap.record()` appends them to a site-local JSON-lines file (mode 0600), bounded: past
`2 * max_entries` lines the file is compacted to the newest `max_entries` pseudonyms (written to a temp
name, fsynced, renamed). `veille agent reveal PSEUDONYM` looks a pseudonym up, checks it against the key
(a map entry that the key does not reproduce is refused as tampered), and appends who asked, when and
what to an audit log *before* printing anything: a reveal that cannot be logged does not happen.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from agent.privacy import (
    CLASSES,
    DEFAULT_MAP_ENTRIES,
    DEFAULT_MAP_FILE,
    DEFAULT_PERIOD_DAYS,
    MIN_KEY_BYTES,
    PrivacyConfig,
    PrivacyError,
    PrivacyFilter,
    PseudonymRecord,
    is_pseudonym,
    normalise,
    period_key,
    pseudonym_with,
)

DEFAULT_AUDIT_FILE: Final = "/var/lib/veille/reveal-audit.jsonl"
# A key file holds 32 random bytes (64 hex digits); anything past 4 KiB is not a key file.
MAX_KEY_FILE: Final = 4096
# One map line is a pseudonym, a class and a value capped by the wire schema (253-char names, 1 KiB text).
MAX_MAP_LINE: Final = 4096


# ---- the key ---------------------------------------------------------------------------------------------
def read_key(path: str | Path) -> bytes:
    """The master key in `path`: 64+ hex digits, or raw bytes; at least 32 bytes; not readable by others."""
    p = Path(path)
    try:
        st = p.stat()
        with p.open("rb") as f:
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise PrivacyError(f"{path}: cannot read the privacy key: {exc.strerror}") from None
    if st.st_mode & 0o077:
        raise PrivacyError(f"{path}: the privacy key must not be readable by group or others (chmod 600)")
    if len(raw) > MAX_KEY_FILE:
        raise PrivacyError(f"{path}: larger than {MAX_KEY_FILE} bytes, not a key file")
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if len(text) >= 2 * MIN_KEY_BYTES else text
    except (UnicodeDecodeError, ValueError):
        key = text
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(f"{path}: the privacy key has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed")
    return key


def new_key(path: str | Path) -> None:
    """Write a fresh random key (64 hex digits) to `path`, mode 0600; never overwrites a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---- the map ---------------------------------------------------------------------------------------------
class PseudonymMap:
    """The site-local record of pseudonym -> value, appended as the filter makes pseudonyms."""

    def __init__(self, path: str | Path, max_entries: int = DEFAULT_MAP_ENTRIES) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self._known: set[tuple[str, int]] = set()
        self._lines = 0
        if self.path.exists():
            for rec in self.read():
                self._known.add((rec.pseudonym, rec.period))
                self._lines += 1

    def record(self, records: Iterable[PseudonymRecord]) -> int:
        """Append records not yet in the map; returns how many were written."""
        new = [r for r in records if (r.pseudonym, r.period) not in self._known]
        if not new:
            return 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            for r in new:
                self._known.add((r.pseudonym, r.period))
                f.write(json.dumps({"p": r.pseudonym, "c": r.cls, "v": r.value, "period": r.period}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._lines += len(new)
        if self._lines > 2 * self.max_entries:
            self.compact()
        return len(new)

    def compact(self) -> None:
        """Keep the newest `max_entries` records (atomic rewrite)."""
        keep: dict[tuple[str, int], PseudonymRecord] = {}
        for rec in self.read():
            keep.pop((rec.pseudonym, rec.period), None)
            keep[(rec.pseudonym, rec.period)] = rec
        records = list(keep.values())[-self.max_entries :]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({"p": r.pseudonym, "c": r.cls, "v": r.value, "period": r.period}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._known = {(r.pseudonym, r.period) for r in records}
        self._lines = len(records)

    def read(self) -> Iterator[PseudonymRecord]:
        """Every record in file order; a malformed line raises `PrivacyError` naming the file and line."""
        try:
            f = self.path.open("r", encoding="utf-8")
        except OSError as exc:
            raise PrivacyError(f"{self.path}: cannot read the pseudonym map: {exc.strerror}") from None
        with f:
            for n, line in enumerate(f, 1):
                if len(line) > MAX_MAP_LINE:
                    raise PrivacyError(f"{self.path}:{n}: line longer than {MAX_MAP_LINE} characters")
                try:
                    d = json.loads(line)
                    rec = PseudonymRecord(str(d["p"]), str(d["c"]), str(d["v"]), int(d["period"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise PrivacyError(f"{self.path}:{n}: not a pseudonym record: {exc}") from None
                yield rec

    def lookup(self, pseudonym: str) -> list[PseudonymRecord]:
        """Every record of `pseudonym` (one per key period it was seen in), oldest first."""
        return [r for r in self.read() if r.pseudonym == pseudonym]


def verify(key: bytes, rec: PseudonymRecord) -> bool:
    """True when the key reproduces the record's pseudonym from its value and period."""
    if rec.cls not in CLASSES:
        return False
    return pseudonym_with(period_key(key, rec.period), rec.cls, normalise(rec.cls, rec.value)) == rec.pseudonym


# ---- the audit log ---------------------------------------------------------------------------------------
def who() -> str:
    """The person asking: the sudo caller when run through sudo, else the login user."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def audit(path: str | Path, entry: dict[str, Any]) -> None:
    """Append one entry to the reveal audit log (JSON lines, mode 0600, fsynced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---- the command -----------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veille agent reveal", description="map pseudonyms back to what they stand for (on the site only)"
    )
    p.add_argument("pseudonyms", nargs="+", metavar="PSEUDONYM", help="e.g. pm:1ac32cb17a4c0a4f")
    p.add_argument("--key-file", required=True, metavar="FILE", help="the site's privacy key")
    p.add_argument(
        "--map", default=DEFAULT_MAP_FILE, metavar="FILE", help=f"pseudonym map (default {DEFAULT_MAP_FILE})"
    )
    p.add_argument(
        "--audit", default=DEFAULT_AUDIT_FILE, metavar="FILE", help=f"audit log (default {DEFAULT_AUDIT_FILE})"
    )
    p.add_argument("--reason", default="", help="why (recorded in the audit log)")
    p.add_argument("--period-days", type=float, default=DEFAULT_PERIOD_DAYS, help="key period length, as configured")
    p.add_argument("--json", action="store_true", help="print one JSON object per pseudonym")
    return p


def reveal(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Look up, verify, log, then print; 0 when every pseudonym was revealed, 1 otherwise."""
    bad = [p for p in args.pseudonyms if not is_pseudonym(p)]
    if bad:
        print(f"veille agent reveal: error: not a pseudonym: {bad[0]!r} (expected e.g. pm:<16 hex digits>)", file=err)
        return 2
    try:
        key = read_key(args.key_file)
        pmap = PseudonymMap(args.map)
        found = {p: pmap.lookup(p) for p in args.pseudonyms}
    except PrivacyError as exc:
        print(f"veille agent reveal: error: {exc}", file=err)
        return 1
    status = 0
    period_s = args.period_days * 86400.0
    for pseudo, records in found.items():
        good = [r for r in records if verify(key, r)]
        entry = {
            "ts": time.time(),
            "user": who(),
            "uid": os.getuid(),
            "pseudonym": pseudo,
            "found": bool(good),
            "tampered": len(records) - len(good),
            "class": good[0].cls if good else None,
            "reason": args.reason,
            "map": str(args.map),
        }
        try:
            audit(args.audit, entry)
        except OSError as exc:
            print(f"veille agent reveal: error: {args.audit}: cannot write the audit log ({exc.strerror}); "
                  "nothing revealed", file=err)  # fmt: skip
            return 1
        if len(good) != len(records):
            print(f"veille agent reveal: warning: {pseudo}: {len(records) - len(good)} map entries do not match "
                  "the key (wrong key or edited map); ignored", file=err)  # fmt: skip
        if not good:
            print(f"veille agent reveal: {pseudo}: not in {args.map}", file=err)
            status = 1
            continue
        for r in good:
            start = time.strftime("%Y-%m-%d", time.gmtime(r.period * period_s))
            end = time.strftime("%Y-%m-%d", time.gmtime((r.period + 1) * period_s))
            if args.json:
                print(json.dumps({"pseudonym": pseudo, "class": r.cls, "value": r.value, "period": r.period,
                                  "from": start, "until": end}), file=out)  # fmt: skip
            else:
                print(f"{pseudo}\t{r.cls}\t{r.value}\tkey period {r.period} ({start} .. {end} UTC)", file=out)
    return status


def main(argv: Sequence[str]) -> int:
    """Entry point of `veille agent reveal ...`; returns the exit status."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return reveal(args, sys.stdout, sys.stderr)


def pseudonym_main(argv: Sequence[str]) -> int:
    """Entry point of `veille agent pseudonym VALUE --class CLASS --key-file FILE [--at TS]`.

    The forward direction, for a subject access request: which pseudonym the centre holds for this MAC,
    address or name in the key period of `--at` (default: now). Nothing secret is printed, so it is not
    audited.
    """
    p = argparse.ArgumentParser(prog="veille agent pseudonym", description="the pseudonym of a value, on the site")
    p.add_argument("value")
    p.add_argument("--class", dest="cls", required=True, choices=sorted(c for c in CLASSES if c in _FORWARD))
    p.add_argument("--key-file", required=True, metavar="FILE")
    p.add_argument("--at", type=float, default=None, metavar="EPOCH", help="a time in the key period (default now)")
    p.add_argument("--period-days", type=float, default=DEFAULT_PERIOD_DAYS)
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        key = read_key(args.key_file)
    except PrivacyError as exc:
        print(f"veille agent pseudonym: error: {exc}", file=sys.stderr)
        return 1
    at = time.time() if args.at is None else args.at
    period = int(at // (args.period_days * 86400.0))
    print(pseudonym_with(period_key(key, period), args.cls, normalise(args.cls, args.value)))
    return 0


# Classes whose pseudonym is computed from the value alone.
_FORWARD: Final = frozenset({"mac", "ip", "name", "ident", "community_id"})


def keygen_main(argv: Sequence[str]) -> int:
    """Entry point of `veille agent privacy-key FILE`: write a new key, refusing to overwrite one."""
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: veille agent privacy-key FILE", file=sys.stderr)
        return 2
    try:
        new_key(argv[0])
    except OSError as exc:
        print(f"veille agent privacy-key: error: {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{argv[0]}: new privacy key written (mode 0600); keep it on the site and back it up", file=sys.stderr)
    return 0


# ---- what the agent and `veille replay` call -------------------------------------------------------------
class SitePrivacy:
    """A site's privacy filter with its key loaded and its pseudonym map open: the one object callers need.

    `apply(events)` returns the events as the site ships them (events nothing of which may leave are
    left out) and records the pseudonyms made to the map, so `veille agent reveal` can map them back.
    """

    def __init__(self, config: PrivacyConfig) -> None:
        key = read_key(config.key_file) if config.profile != "full" else None
        self.filter = PrivacyFilter(config, key)
        self.map = PseudonymMap(config.map_file, config.map_max_entries) if key and config.map_file else None

    def filter_events(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Filter a batch of event dicts (no I/O: safe on an event loop)."""
        f = self.filter
        if not f.active:
            return list(events)
        return [e for e in map(f.apply, events) if e is not None]

    def apply(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Filter a batch of event dicts and write the new pseudonyms to the map (replay)."""
        out = self.filter_events(events)
        self.flush()
        return out

    def flush(self) -> None:
        """Write pseudonyms made since the last call to the map (dropped when there is no map)."""
        self.record(self.filter.take_mappings())

    def record(self, records: list[PseudonymRecord]) -> None:
        """Write records taken with `filter.take_mappings()` (blocking file I/O: run it in a thread)."""
        if self.map is not None and records:
            self.map.record(records)
