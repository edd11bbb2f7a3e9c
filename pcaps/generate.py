"""Generate the fixture captures in pcaps/ deterministically (run: python -m pcaps.generate [OUTDIR]).

Every capture is a pure function of fixed seeds and a fixed start time (2026-09-07 07:30:00 UTC):
no wall clock, no unseeded randomness, so regenerating gives byte-identical files (checked by
tests/pcaps). Addresses come only from documentation ranges (RFC 5737, RFC 3849). What each capture
contains and which detections it should trigger is in pcaps/README.md and pcaps/truth.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from pcaps import _captures as C
from pcaps._wire import LINKTYPE_ETHERNET, pcap_bytes, pcapng_bytes

HERE = Path(__file__).resolve().parent


def build_all() -> dict[str, bytes]:
    """Every fixture file name -> its bytes."""
    morning = C.school_morning().records()
    files: dict[str, bytes] = {
        "school_morning.pcap": pcap_bytes(morning, LINKTYPE_ETHERNET),
        "school_morning.pcapng": pcapng_bytes(morning, LINKTYPE_ETHERNET, comment="school morning"),
    }
    builders: dict[str, Callable[[], bytes]] = {
        "malformed.pcap": C.malformed,
        "ipv6_only.pcap": C.ipv6_only,
        "vlan.pcap": C.vlan,
        "sll.pcap": C.sll,
        "sll2.pcap": C.sll2_pcap,
        "sll2.pcapng": C.sll2_pcapng,
        "raw_ip.pcap": C.raw_ip,
        "lan_attacks.pcap": C.lan_attacks,
        "truncated_file.pcap": C.truncated_file,
        "not_a_capture.pcap": C.not_a_capture,
    }
    for name, fn in builders.items():
        files[name] = fn()
    files["truth.json"] = (json.dumps(C.truth(), indent=2, sort_keys=True) + "\n").encode()
    return files


def write_all(outdir: Path) -> list[Path]:
    """Write every fixture into `outdir`; returns the paths written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in build_all().items():
        path = outdir / name
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outdir = Path(args[0]) if args else HERE
    for path in write_all(outdir):
        print(f"{path.name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
