"""Bytes on the wire per flow summary, against the same flows as Zeek-style conn.log JSON lines.

    python -m bench.wire_bytes [--flows N] [--batch N] [--seed N] [--from-jsonl FILE]

Flows are synthetic but shaped like a school site's traffic (documentation addresses: 30 LAN hosts, 60
servers, ephemeral source ports, DNS/NTP/TLS/HTTP/SSH mixes, heavy-tailed byte counts), or read from
`veille replay` JSON lines (`--from-jsonl`, `flow` lines only). Both encodings of every batch go through
the same compressors (telemetry.codec.compress). Target (DESIGN.md): <= 40 B per flow summary.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from telemetry.codec import compress, encode_batch, new_batch
from telemetry.community import community_id
from telemetry.schema import Event, FlowEvent, to_event

TARGET = 40.0
_SERVICES = [(443, "tcp", "tls"), (443, "tcp", "tls"), (443, "tcp", "tls"), (80, "tcp", "http"),
             (53, "udp", "dns"), (53, "udp", "dns"), (123, "udp", None), (22, "tcp", "ssh"),
             (443, "udp", "quic"), (5353, "udp", "mdns")]  # fmt: skip


def synthetic_flows(n: int, seed: int) -> list[FlowEvent]:
    """`n` flows in start-time order, deterministic for a seed."""
    rng = random.Random(seed)
    hosts = [f"192.0.2.{i}" for i in range(10, 40)]
    macs = {h: f"02:00:00:00:00:{i:02x}" for i, h in enumerate(hosts)}
    servers = [f"203.0.113.{i}" for i in range(1, 51)] + [f"198.51.100.{i}" for i in range(1, 11)]
    t = 1732270000.0
    flows = []
    for _ in range(n):
        t += rng.expovariate(40.0)
        src = rng.choice(hosts)
        dport, proto, app = rng.choice(_SERVICES)
        dst = "224.0.0.251" if app == "mdns" else rng.choice(servers)
        pf = max(1, int(rng.paretovariate(1.2)))
        pr = max(0, int(rng.paretovariate(1.2)) - (proto == "udp"))
        tcp = proto == "tcp"
        flows.append(
            FlowEvent(
                ts_start=round(t, 6),
                ts_end=round(t + rng.expovariate(0.3) * (pf > 1), 6),
                proto=proto,
                src=src,
                sport=5353 if app == "mdns" else rng.randint(32768, 60999),
                dst=dst,
                dport=dport,
                pkts_fwd=pf,
                pkts_rev=pr,
                bytes_fwd=pf * rng.randint(52, 600),
                bytes_rev=pr * rng.randint(52, 1500),
                tcp_flags=("SAFP" if rng.random() < 0.8 else "SAR") if tcp else "",
                end_reason=rng.choice(["fin", "fin", "rst", "idle"]) if tcp else "idle",
                app=app,
                src_mac=macs[src],
                dst_mac="02:00:00:00:ff:01",
            )
        )
    return flows


def flows_from_jsonl(path: Path) -> list[FlowEvent]:
    flows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if '"flow"' in line:
                event = to_event(json.loads(line))
                if isinstance(event, FlowEvent):
                    flows.append(event)
    return flows


def _uid(rng: random.Random) -> str:
    return "C" + "".join(rng.choices(string.ascii_letters + string.digits, k=17))


def zeek_conn_lines(flows: list[FlowEvent], seed: int) -> bytes:
    """The flows as Zeek conn.log JSON lines (Zeek's field names, `uid` and `community_id` included)."""
    rng = random.Random(seed)
    out = []
    for f in flows:
        record: dict[str, Any] = {
            "ts": f.ts_start,
            "uid": _uid(rng),
            "id.orig_h": f.src,
            "id.orig_p": f.sport,
            "id.resp_h": f.dst,
            "id.resp_p": f.dport,
            "proto": f.proto,
            "service": f.app,
            "duration": round(f.ts_end - f.ts_start, 6),
            "orig_bytes": max(0, f.bytes_fwd - 40 * f.pkts_fwd),
            "resp_bytes": max(0, f.bytes_rev - 40 * f.pkts_rev),
            "conn_state": {"fin": "SF", "rst": "RSTO"}.get(f.end_reason, "S0"),
            "local_orig": True,
            "local_resp": False,
            "missed_bytes": 0,
            "history": "ShADadFf" if f.proto == "tcp" else "Dd",
            "orig_pkts": f.pkts_fwd,
            "orig_ip_bytes": f.bytes_fwd,
            "resp_pkts": f.pkts_rev,
            "resp_ip_bytes": f.bytes_rev,
            "orig_l2_addr": f.src_mac,
            "resp_l2_addr": f.dst_mac,
            "community_id": community_id(f.proto, f.src, f.sport, f.dst, f.dport),
        }
        out.append(json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


def _batches(items: list[FlowEvent], size: int) -> Iterator[list[FlowEvent]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _ours(flows: list[FlowEvent], size: int, encoding: str, transform: Callable[[FlowEvent], Event]) -> int:
    total = 0
    for seq, chunk in enumerate(_batches(flows, size)):
        batch = new_batch("gw-school-a", "school-a", seq, chunk[-1].ts_end, [transform(f) for f in chunk])
        total += len(compress(encode_batch(batch), encoding))
    return total


class _ArrayFlow(msgspec.Struct, array_like=True, omit_defaults=True, tag="flow"):
    """The same fields, array-encoded: what msgspec's array_like would save (not the wire format)."""

    ts_start: float
    ts_end: float
    proto: str
    src: str
    sport: int
    dst: str
    dport: int
    pkts_fwd: int
    pkts_rev: int
    bytes_fwd: int
    bytes_rev: int
    tcp_flags: str = ""
    end_reason: str = ""
    src_mac: str | None = None
    dst_mac: str | None = None
    app: str | None = None


def _array_like(flows: list[FlowEvent], size: int, encoding: str) -> int:
    enc = msgspec.msgpack.Encoder()
    total = 0
    for chunk in _batches(flows, size):
        rows = [_ArrayFlow(**{k: getattr(f, k) for k in _ArrayFlow.__struct_fields__}) for f in chunk]
        total += len(compress(enc.encode({"schema": 2, "events": rows}), encoding))
    return total


def run(flows: list[FlowEvent], batch: int, seed: int) -> list[tuple[str, str, float]]:
    """Rows (variant, encoding, bytes per flow)."""
    n = len(flows)
    keep = lambda f: f  # noqa: E731
    with_cid = lambda f: msgspec.structs.replace(  # noqa: E731
        f, community_id=community_id(f.proto, f.src, f.sport, f.dst, f.dport)
    )
    rows: list[tuple[str, str, float]] = []
    for encoding in ("zstd", "gzip"):
        rows.append(("veille batch (wire format)", encoding, _ours(flows, batch, encoding, keep) / n))
        rows.append(("  + community_id on every flow", encoding, _ours(flows, batch, encoding, with_cid) / n))
        rows.append(("  array_like instead of maps", encoding, _array_like(flows, batch, encoding) / n))
        zeek = sum(len(compress(zeek_conn_lines(c, seed), encoding)) for c in _batches(flows, batch))
        rows.append(("Zeek conn.log JSON lines", encoding, zeek / n))
    raw_ours = sum(len(encode_batch(new_batch("a", "s", 0, 0.0, list(c)))) for c in _batches(flows, batch))
    rows.append(("veille batch (wire format)", "none", raw_ours / n))
    rows.append(("Zeek conn.log JSON lines", "none", len(zeek_conn_lines(flows, seed)) / n))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000, help="flows per batch (the shipper default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--from-jsonl", type=Path, help="veille replay output to take flow lines from")
    args = parser.parse_args(argv)
    flows = flows_from_jsonl(args.from_jsonl) if args.from_jsonl else synthetic_flows(args.flows, args.seed)
    if not flows:
        print("no flows", file=sys.stderr)
        return 1
    rows = run(flows, args.batch, args.seed)
    print(f"{len(flows)} flow summaries, batches of {args.batch}; target <= {TARGET:.0f} B/flow after compression")
    print(f"{'variant':<34} {'compression':<12} {'B/flow':>8}")
    for variant, encoding, per_flow in rows:
        print(f"{variant:<34} {encoding:<12} {per_flow:>8.1f}")
    print("by batch size (a quiet site closes batches on age, with fewer flows):")
    for size in (50, 500, 5_000):
        small = _ours(flows, size, "zstd", lambda f: f) / len(flows)
        zeek_small = sum(len(compress(zeek_conn_lines(c, args.seed), "zstd")) for c in _batches(flows, size))
        print(f"  {size:>5} flows/batch: veille {small:6.1f} B/flow, Zeek JSON {zeek_small / len(flows):6.1f} B/flow")
    ours = rows[0][2]
    zeek = next(r[2] for r in rows if r[0].startswith("Zeek") and r[1] == "zstd")
    verdict = "meets" if ours <= TARGET else "MISSES"
    print(f"wire format, zstd: {ours:.1f} B/flow ({verdict} the {TARGET:.0f} B target)", end="")
    print(f", {zeek / ours:.1f}x smaller than Zeek JSON")
    return 0 if ours <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
