"""DHCP fingerprint database: loading, bad entries, matching kinds, and the corpora's clients."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signatures.dhcp_fp import DhcpDatabase, parse_database

GOOD = """
[[fingerprint]]
name = "exact one"
params = [1, 3, 6]
os_family = "X"
weight = 0.5
source = "test"

[[fingerprint]]
name = "prefix one"
params = [1, 3]
match = "prefix"
os_family = "Y"
source = "test"

[[fingerprint]]
name = "subset one"
params = [6, 1]
match = "subset"
os_family = "Z"
source = "test"

[[fingerprint]]
name = "versioned vendor class"
vendor_class_prefix = "acme-"
version_regex = "^acme-([0-9]+)"
os_family = "AcmeOS"
device_type = "iot"
source = "test"

[[fingerprint]]
name = "v6 enterprise"
enterprise = 311
os_family = "Windows"
source = "test"
"""


def test_shipped_database_loads_cleanly_and_cites_sources() -> None:
    db = DhcpDatabase.load()
    assert db.errors == ()
    assert len(db.entries) >= 20
    assert all(e.source and e.weight > 0 for e in db.entries)


def test_match_kinds_and_order() -> None:
    db = parse_database(GOOD, "t.toml")
    assert db.errors == ()
    names = [m.entry.name for m in db.match_v4([1, 3, 6], None)]
    assert names == ["exact one", "prefix one", "subset one"]
    assert [m.how for m in db.match_v4([1, 3, 6, 9], None)] == ["prefix", "subset"]
    assert [m.entry.name for m in db.match_v4([6, 9, 1], None)] == ["subset one"]
    (vc,) = db.match_v4([50], "acme-12 build 7")
    assert (vc.entry.name, vc.how, vc.os_version) == ("versioned vendor class", "vendor_class", "12")
    assert db.match_v4([50], "other") == []
    assert [m.entry.os_family for m in db.match_v6([23, 24], 311, "MSFT 5.0")] == ["Windows"]
    assert db.match_v6([23, 24], 9, None) == []


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ('params = [1, "x"]\nsource = "s"', "params"),
        ('params = [1]\nmatch = "fuzzy"\nsource = "s"', "match"),
        ("params = [1]", "source"),
        ('params = [1]\nsource = "s"\nweight = 3', "weight"),
        ('params = [1]\nsource = "s"\ndevice_type = "toaster"', "device_type"),
        ('params = [1]\nsource = "s"\ncolour = "red"', "colour"),
        ('vendor_class_prefix = "a"\nversion_regex = "("\nsource = "s"', "version_regex"),
        ('source = "s"', "params"),
        ("params = [1, 3\nsource = 's'", "syntax"),
    ],
)
def test_bad_entry_names_file_line_entry_and_key(entry: str, key: str) -> None:
    text = (
        GOOD
        + '\n[[fingerprint]]\nname = "broken"\n'
        + entry
        + "\n"
        + GOOD.split("[[fingerprint]]", 2)[1].join(["[[fingerprint]]", ""])
    )
    db = parse_database(text, "bad.toml")
    assert len(db.errors) == 1, [str(e) for e in db.errors]
    err = db.errors[0]
    assert (err.file, err.key) == ("bad.toml", key)
    lines = text.splitlines()
    header = lines.index('name = "broken"')
    assert header <= err.line <= len(lines)  # the entry's header line or one of its own
    if key not in ("syntax", "source", "params"):
        assert lines[err.line - 1].startswith(key)
    assert str(err).startswith(f"bad.toml:{err.line}: entry ")
    assert len(db.entries) == 6  # the five good ones and the one after the broken entry


def _tshark_dhcp_requests(corpora: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for tsv in sorted(corpora.glob("*/reference/*.tshark.tsv")):
        with tsv.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("dhcp.option.dhcp") in ("1", "3", "8") and row.get("dhcp.option.request_list_item"):
                    row["file"] = tsv.name
                    rows.append(row)
    return rows


# What the capture's own context says each client is (hostname, OUI, the capture's description).
EXPECTED_FAMILY = {
    "Lucas-iPhone": "iOS",
    "Lucas-iMac": "macOS",
    "pop-os": "Linux",
}


def test_corpora_clients_match_their_known_os(corpora: Path) -> None:
    db = DhcpDatabase.load()
    rows = _tshark_dhcp_requests(corpora)
    checked = agree = 0
    for row in rows:
        host = row.get("dhcp.option.hostname", "")
        if host not in EXPECTED_FAMILY:
            continue
        params = [int(x) for x in row["dhcp.option.request_list_item"].split(",")]
        matches = db.match_v4(params, row.get("dhcp.option.vendor_class_id") or None)
        checked += 1
        best = matches[0].entry.os_family if matches else None
        agree += best == EXPECTED_FAMILY[host]
        print(f"  {row['file']}: {host}: {params} -> {best}")
    print(f"DHCP fingerprint agreement with the corpora's named clients: {agree}/{checked}")
    assert checked >= 3 and agree == checked


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=12))
def test_any_entry_text_loads_or_is_reported(lines: list[str]) -> None:
    body = [line for line in lines if "[[fingerprint]]" not in line.replace(" ", "")]
    text = GOOD + "\n[[fingerprint]]\n" + "\n".join(body) + "\n"
    db = parse_database(text, "fuzz.toml")
    assert len(db.entries) + len(db.errors) == 6
    assert all(e.file == "fuzz.toml" and e.line >= 1 for e in db.errors)
