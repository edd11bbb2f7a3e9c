"""MAC vendor table: generation from a registry copy, look-up by longest prefix, Arkime agreement."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from signatures import oui
from signatures.oui import OuiTable

MANUF_SAMPLE = """\
# comment line
00:00:0C\tCisco\tCisco Systems, Inc
00:1B:C5\tIeeeRegi\tIEEE Registration Authority
00:1B:C5:00:00:00/36\tConvergi\tConverging Systems Inc.
00:55:DA:00:00:00/28\tShinko\tShinko Technos co.,ltd.
00:55:DA\tIeeeRegi\tIEEE Registration Authority
08:00:20\tOracle
"""


def test_generate_and_look_up_longest_prefix(tmp_path: Path, repo: Path) -> None:
    src = tmp_path / "manuf"
    src.write_text(MANUF_SAMPLE)
    out = tmp_path / "oui.tsv.gz"
    run = [sys.executable, str(repo / "scripts" / "gen_oui.py"), "--source", str(src), "--out", str(out)]
    res = subprocess.run(run, capture_output=True, text=True, check=True)
    assert "6 prefixes" in res.stdout
    first = out.read_bytes()
    subprocess.run(run, capture_output=True, check=True)
    assert out.read_bytes() == first  # reproducible: same input, same bytes
    table = OuiTable.load(out)
    assert len(table) == 6
    assert table.vendor("00:00:0c:07:ac:01") == "Cisco Systems, Inc"
    assert table.vendor("00:1b:c5:00:0f:ff") == "Converging Systems Inc."  # /36 inside the /24
    assert table.vendor("00:1b:c5:00:10:00") == "IEEE Registration Authority"
    assert table.vendor(bytes.fromhex("0055da012345")) == "Shinko Technos co.,ltd."  # /28
    assert table.vendor("08-00-20-aa-bb-cc") == "Oracle"  # short name when no long one
    assert table.vendor("00:00:0d:00:00:00") is None
    assert table.vendor("02:00:0c:07:ac:01") is None  # locally administered: no registry owner


def test_bad_table_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("00000c\t24\tCisco\nzz\t24\tBroken\n")
    with pytest.raises(ValueError, match=r"bad\.tsv\.gz:2: bad OUI line"):
        OuiTable.load(bad)


def test_packaged_table_has_all_three_sizes() -> None:
    table = oui.default_table()
    assert len(table) > 30_000
    assert oui.vendor("00:1f:5b:ff:51:cb") == "Apple, Inc."
    with pytest.raises(ValueError, match="not a MAC"):
        oui.vendor("00:1f:5b")


def _arkime_pairs(doc: dict[str, object]) -> list[tuple[list[str], list[str]]]:
    out = []
    for sess in doc.get("sessions3", []):  # type: ignore[attr-defined]
        body = sess["body"]
        for side, key in (("source", "srcOui"), ("destination", "dstOui")):
            macs = body.get(side, {}).get("mac", [])
            if macs:
                out.append((macs, body.get(key, [])))
    return out


def test_vendor_agreement_with_arkime(corpora: Path) -> None:
    docs = sorted(corpora.glob("*/upstream/*arkime*.test")) + sorted(corpora.glob("*/upstream/arkime__*.test"))
    same = total = named = 0
    differ: list[str] = []
    seen: set[str] = set()
    for path in dict.fromkeys(docs):
        for macs, ouis in _arkime_pairs(json.loads(path.read_text())):
            ours = sorted({v for m in macs if (v := oui.vendor(m))})
            theirs = sorted(set(ouis))
            key = f"{macs}"
            if key in seen:
                continue
            seen.add(key)
            total += 1
            named += bool(theirs)
            if ours == theirs:
                same += 1
            else:
                differ.append(f"{path.name}: {macs}: ours {ours} arkime {theirs}")
    print(f"MAC vendor agreement with Arkime .test documents: {same}/{total} ({named} with a vendor named)")
    for d in differ:
        print("  differs:", d)
    assert total >= 10 and named >= 10
    assert same == total, differ
