"""DHCP fingerprints: what a client's requested options and vendor class say about it.

The database (`fingerprints/dhcp.toml`, written for this project) is a list of `[[fingerprint]]`
tables. Each matches on any of: DHCPv4 option 55 (`params`, compared `exact`ly, as a `prefix`
or as a `subset`), option 60 (`vendor_class_prefix`, with an optional `version_regex` whose first
group is the OS version), DHCPv6 ORO (`oro`), vendor-class enterprise number (`enterprise`) and
vendor-class text (`vendor_class_prefix` again). Every given criterion must hold. Each entry says
what it suggests (os_family, os_version, device_type, vendor), how much (`weight`, 0-1) and why
(`source`). The file is split at its `[[fingerprint]]` headers and each block parsed on its own,
so one bad entry is reported with file, line and key, and the others still load.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parent / "fingerprints" / "dhcp.toml"
MAX_OPTION_LIST = 255  # one DHCP option (RFC 2132 §2) holds at most 255 one-byte codes
MAX_ENTRIES = 10_000  # the shipped file has a few dozen; a bound against a wrong file
MATCH_KINDS = ("exact", "prefix", "subset")
DEVICE_TYPES = frozenset(
    (
        "laptop", "desktop", "phone", "tablet", "chromebook", "printer", "camera", "tv/streamer",
        "game console", "voip phone", "network equipment", "iot", "server", "unknown",
    )
)  # fmt: skip
_HEADER = "[[fingerprint]]"
_KEYS = frozenset(
    (
        "name", "params", "match", "vendor_class_prefix", "version_regex", "oro", "enterprise",
        "os_family", "os_version", "device_type", "vendor", "weight", "source",
    )
)  # fmt: skip
_KIND_RANK = {"exact": 3, "prefix": 2, "subset": 1, "": 0}


@dataclass(frozen=True, slots=True)
class DhcpFingerprint:
    """One database entry."""

    name: str
    line: int
    params: tuple[int, ...] = ()
    match: str = "exact"
    vendor_class_prefix: str = ""
    version_regex: re.Pattern[str] | None = None
    oro: tuple[int, ...] = ()
    enterprise: int | None = None
    os_family: str = ""
    os_version: str = ""
    device_type: str = ""
    vendor: str = ""
    weight: float = 0.5
    source: str = ""


@dataclass(frozen=True, slots=True)
class DhcpMatch:
    entry: DhcpFingerprint
    how: str  # "exact", "prefix", "subset", "vendor_class", "oro", "enterprise"
    os_version: str  # the entry's, or taken from the vendor class by version_regex


@dataclass(frozen=True, slots=True)
class DhcpDbError:
    file: str
    line: int
    entry: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: entry {self.entry!r}: {self.key}: {self.message}"


class _EntryError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class DhcpDatabase:
    """Parsed entries plus the errors of the entries that could not be used."""

    __slots__ = ("entries", "errors")

    def __init__(self, entries: Sequence[DhcpFingerprint], errors: Sequence[DhcpDbError]) -> None:
        self.entries = tuple(entries)
        self.errors = tuple(errors)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> DhcpDatabase:
        p = Path(path)
        return parse_database(p.read_text(encoding="utf-8"), str(p))

    def match_v4(self, params: Sequence[int], vendor_class: str | None) -> list[DhcpMatch]:
        """Entries matching a DHCPv4 request, most specific first (exact > prefix > subset)."""
        vc = vendor_class or ""
        out: list[DhcpMatch] = []
        pset = frozenset(params)
        plist = tuple(params[:MAX_OPTION_LIST])
        for e in self.entries:
            if e.oro or e.enterprise is not None:
                continue
            how = ""
            if e.params:
                if e.match == "exact":
                    ok = plist == e.params
                elif e.match == "prefix":
                    ok = plist[: len(e.params)] == e.params
                else:
                    ok = pset.issuperset(e.params)
                if not ok:
                    continue
                how = e.match
            if e.vendor_class_prefix:
                if not vc.startswith(e.vendor_class_prefix):
                    continue
                how = how or "vendor_class"
            if how:
                out.append(DhcpMatch(e, how, _version(e, vc)))
        out.sort(key=lambda m: (-_KIND_RANK.get(m.how, 0), -len(m.entry.params), -m.entry.weight))
        return out

    def match_v6(self, oro: Sequence[int], enterprise: int | None, vendor_class: str | None) -> list[DhcpMatch]:
        """Entries matching a DHCPv6 message by ORO (exact), enterprise number and vendor class."""
        vc = vendor_class or ""
        out: list[DhcpMatch] = []
        for e in self.entries:
            if not (e.oro or e.enterprise is not None):
                continue
            if e.oro and tuple(oro) != e.oro:
                continue
            if e.enterprise is not None and enterprise != e.enterprise:
                continue
            if e.vendor_class_prefix and not vc.startswith(e.vendor_class_prefix):
                continue
            out.append(DhcpMatch(e, "oro" if e.oro else "enterprise", _version(e, vc)))
        return out


def _version(e: DhcpFingerprint, vc: str) -> str:
    if e.version_regex is not None:
        m = e.version_regex.search(vc)
        if m and m.groups():
            return m.group(1)
    return e.os_version


def parse_database(text: str, name: str = "<dhcp.toml>") -> DhcpDatabase:
    """Parse the TOML text block by block; bad entries become `errors`, the rest loads."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == _HEADER]
    entries: list[DhcpFingerprint] = []
    errors: list[DhcpDbError] = []
    for n, start in enumerate(starts[:MAX_ENTRIES]):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        block = "\n".join(lines[start + 1 : end])
        label = f"#{n + 1}"
        try:
            table = tomllib.loads(block)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            line = start + 1 + int(m.group(1)) if m else start + 1
            errors.append(DhcpDbError(name, line, label, "syntax", str(exc)))
            continue
        label = str(table.get("name", label))
        try:
            entries.append(_entry(table, start + 1))
        except _EntryError as exc:
            errors.append(DhcpDbError(name, _key_line(lines, start, end, exc.key), label, exc.key, exc.message))
    return DhcpDatabase(entries, errors)


def _key_line(lines: list[str], start: int, end: int, key: str) -> int:
    for i in range(start, end):
        if lines[i].split("=", 1)[0].strip() == key:
            return i + 1
    return start + 1


def _entry(t: dict[str, Any], line: int) -> DhcpFingerprint:
    unknown = set(t) - _KEYS
    if unknown:
        raise _EntryError(sorted(unknown)[0], "unknown key")
    name = _str(t, "name")
    if not name:
        raise _EntryError("name", "missing")
    source = _str(t, "source")
    if not source:
        raise _EntryError("source", "every entry must cite where its evidence comes from")
    params = _codes(t, "params")
    oro = _codes(t, "oro")
    match = _str(t, "match") or "exact"
    if match not in MATCH_KINDS:
        raise _EntryError("match", f"expected one of {MATCH_KINDS}, got {match!r}")
    enterprise = t.get("enterprise")
    if enterprise is not None and (type(enterprise) is not int or not 0 <= enterprise < 2**32):
        raise _EntryError("enterprise", "expected a 32-bit IANA enterprise number (RFC 8415 §21.16)")
    vcp = _str(t, "vendor_class_prefix")
    if not (params or oro or enterprise is not None or vcp):
        raise _EntryError("params", "entry matches nothing: give params, oro, enterprise or vendor_class_prefix")
    regex_text = _str(t, "version_regex")
    try:
        regex = re.compile(regex_text) if regex_text else None
    except re.error as exc:
        raise _EntryError("version_regex", str(exc)) from None
    weight = t.get("weight", 0.5)
    if type(weight) not in (int, float) or not 0.0 < float(weight) <= 1.0:
        raise _EntryError("weight", f"expected a number in (0, 1], got {weight!r}")
    device_type = _str(t, "device_type")
    if device_type and device_type not in DEVICE_TYPES:
        raise _EntryError("device_type", f"unknown device type {device_type!r}")
    return DhcpFingerprint(
        name=name,
        line=line,
        params=params,
        match=match,
        vendor_class_prefix=vcp,
        version_regex=regex,
        oro=oro,
        enterprise=enterprise,
        os_family=_str(t, "os_family"),
        os_version=_str(t, "os_version"),
        device_type=device_type,
        vendor=_str(t, "vendor"),
        weight=float(weight),
        source=source,
    )


def _str(t: dict[str, Any], key: str) -> str:
    v = t.get(key, "")
    if not isinstance(v, str):
        raise _EntryError(key, f"expected a string, got {type(v).__name__}")
    return v


def _codes(t: dict[str, Any], key: str) -> tuple[int, ...]:
    v = t.get(key, [])
    if not isinstance(v, list) or len(v) > MAX_OPTION_LIST:
        raise _EntryError(key, "expected a list of option codes")
    for c in v:
        if type(c) is not int or not 0 <= c <= 65535:
            raise _EntryError(key, f"bad option code {c!r}")
    return tuple(v)


def fingerprint_text(params: Sequence[int]) -> str:
    """The option 55 list as the comma-separated text used by Fingerbank and Zeek."""
    return ",".join(str(p) for p in params)
