"""Readers for the reference outputs under ../shared/corpora (tshark TSV, ...)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_tshark_tsv(path: Path) -> dict[int, dict[str, str]]:
    """frame number -> {column: value} for the tshark field dumps in reference/."""
    rows: dict[int, dict[str, str]] = {}
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        for r in reader:
            if not r:
                continue
            rows[int(r[0])] = dict(zip(header, r, strict=False))
    return rows
