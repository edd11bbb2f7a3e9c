#!/usr/bin/env python3
"""Generate signatures/fingerprints/oui.tsv.gz, the MAC vendor table, from a public registry copy.

Sources (first found wins, or pass --source):
- Wireshark's `manuf` (installed with tshark at /usr/share/wireshark/manuf): lines
  `00:1B:C5:00:00:00/36<TAB>Short<TAB>Long name`, a prefix without `/bits` is an MA-L (/24).
- Debian's ieee-data CSV files (`oui.csv`, `mam.csv`, `oui36.csv`):
  `Registry,Assignment,Organization Name,...`.

Output: gzip (mtime 0, so regenerating from the same input gives the same bytes) of sorted lines
`<prefix hex, bits/4 digits><TAB><bits><TAB><organisation>`. Run: `python scripts/gen_oui.py [--source PATH]`.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "signatures" / "fingerprints" / "oui.tsv.gz"
DEFAULT_SOURCES = (
    Path("/usr/share/wireshark/manuf"),
    Path("/usr/share/ieee-data/oui.csv"),
)
# IEEE registry assignment sizes: MA-L 24 bits, MA-M 28 bits, MA-S 36 bits.
IEEE_CSV_BITS = {"MA-L": 24, "MA-M": 28, "MA-S": 36, "IAB": 36, "CID": 24}


def read_manuf(path: Path) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"{path}:{lineno}: expected prefix<TAB>name, got {raw!r}")
        prefix, _, bits_text = parts[0].partition("/")
        bits = int(bits_text) if bits_text else 24
        digits = prefix.replace(":", "").replace("-", "").lower()[: bits // 4]
        if len(digits) != bits // 4:
            raise ValueError(f"{path}:{lineno}: prefix {parts[0]!r} shorter than /{bits}")
        name = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
        out[(digits, bits)] = name
    return out


def read_ieee_csv(path: Path) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    siblings = [path] + [path.with_name(n) for n in ("mam.csv", "oui36.csv", "iab.csv") if n != path.name]
    for p in siblings:
        if not p.is_file():
            continue
        with p.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                bits = IEEE_CSV_BITS.get(row["Registry"])
                if bits is None:
                    continue
                out[(row["Assignment"].lower(), bits)] = row["Organization Name"].strip()
    return out


def render(table: dict[tuple[str, int], str]) -> bytes:
    lines = [f"{d}\t{b}\t{n.replace(chr(9), ' ')}\n" for (d, b), n in sorted(table.items())]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write("".join(lines).encode("utf-8"))
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="manuf file or IEEE oui.csv")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    source = args.source or next((p for p in DEFAULT_SOURCES if p.is_file()), None)
    if source is None:
        print("no source: install tshark (manuf) or ieee-data, or pass --source", file=sys.stderr)
        return 2
    table = read_ieee_csv(source) if source.suffix == ".csv" else read_manuf(source)
    args.out.write_bytes(render(table))
    counts: dict[int, int] = {}
    for _, bits in table:
        counts[bits] = counts.get(bits, 0) + 1
    print(f"{args.out.name}: {len(table)} prefixes {dict(sorted(counts.items()))} from {source.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
