"""Writers for replay events: JSON lines for scripts, a short table for people."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

_encoder = msgspec.json.Encoder()


class JsonlWriter:
    """One JSON object per line, flushed per batch."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buffer = getattr(out, "buffer", None)

    def write(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        lines = _encoder.encode_lines(events)
        if self.buffer is not None:
            self.out.flush()
            self.buffer.write(lines)
            self.buffer.flush()
        else:
            self.out.write(lines.decode("utf-8"))

    def close(self) -> None:
        self.out.flush()


class EveWriter(JsonlWriter):
    """Suricata EVE JSON lines (telemetry.eve), alert categories from the rule classification table."""

    def __init__(self, out: TextIO, host: str | None = None) -> None:
        super().__init__(out)
        from signatures.rules.classification import default_classification
        from telemetry.eve import EveConverter

        categories = {c.name: c.description for c in default_classification().values()}
        self.converter = EveConverter(host=host, categories=categories)

    def write(self, events: list[dict[str, Any]]) -> None:
        super().write(list(self.converter.convert_all(events)))


class TableWriter:
    """Collects events and prints a readable summary at the end."""

    def __init__(self, out: TextIO, limit: int = 25) -> None:
        self.out = out
        self.limit = limit
        self.counts: Counter[str] = Counter()
        self.flows: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.stats: dict[str, Any] | None = None
        self.apps: Counter[str] = Counter()

    def write(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            t = e["type"]
            self.counts[t] += 1
            if t == "flow":
                self.apps[e.get("app") or "-"] += 1
                self.flows.append(e)
                if len(self.flows) > 4 * self.limit:
                    self.flows.sort(key=_flow_bytes, reverse=True)
                    del self.flows[self.limit :]
            elif t == "device":
                self.devices.append(e)
            elif t == "alert":
                self.alerts.append(e)
            elif t == "stats":
                self.stats = e

    def close(self) -> None:
        w = self.out.write
        s = self.stats or {}
        w(
            f"Packets {s.get('packets', 0)}  decoded {s.get('decoded', 0)}  flows {s.get('flows', 0)}  "
            f"capture time {s.get('duration', 0):.1f}s\n"
        )
        errs = s.get("errors") or {}
        if errs:
            w("Decode errors: " + ", ".join(f"{k} {v}" for k, v in errs.items()) + "\n")
        obs = s.get("observations") or {}
        if obs:
            w("Observations: " + ", ".join(f"{k} {v}" for k, v in obs.items()) + "\n")
        if self.apps:
            w("Flows by app: " + ", ".join(f"{k} {v}" for k, v in self.apps.most_common()) + "\n")
        if self.devices:
            w(f"\nDevices ({len(self.devices)})\n")
            rows = [("MAC", "VENDOR", "TYPE", "OS", "CONF", "IPS", "NAMES")]
            for d in sorted(self.devices, key=lambda d: str(d.get("mac"))):
                os_ = d.get("os") or {}
                rows.append(
                    (
                        str(d.get("mac")) + (" (rand)" if d.get("randomized_mac") else ""),
                        str(d.get("vendor") or "-")[:24],
                        str(d.get("device_type") or "unknown"),
                        " ".join(x for x in (os_.get("family"), os_.get("version")) if x) or "-",
                        f"{d.get('confidence', 0):.2f}",
                        ",".join(d.get("ips") or [])[:40] or "-",
                        ",".join(n["name"] if isinstance(n, dict) else str(n) for n in d.get("names") or [])[:30]
                        or "-",
                    )
                )
            _table(w, rows)
        if self.alerts:
            w(f"\nAlerts ({len(self.alerts)})\n")
            by: Counter[tuple[int, str]] = Counter((a.get("sid", 0), a.get("msg", "")) for a in self.alerts)
            _table(w, [("SID", "COUNT", "MESSAGE")] + [(str(k[0]), str(v), k[1]) for k, v in by.most_common()])
        if self.flows:
            w(f"\nTop flows by bytes (of {self.counts['flow']})\n")
            self.flows.sort(key=_flow_bytes, reverse=True)
            rows = [("PROTO", "SRC", "DST", "APP", "PKTS", "BYTES", "END")]
            for f in self.flows[: self.limit]:
                rows.append(
                    (
                        str(f["proto"]),
                        f"{f['src']}:{f['sport']}",
                        f"{f['dst']}:{f['dport']}",
                        str(f.get("app") or "-"),
                        str(f["pkts_fwd"] + f["pkts_rev"]),
                        str(f["bytes_fwd"] + f["bytes_rev"]),
                        str(f["end_reason"]),
                    )
                )
            _table(w, rows)
        self.out.flush()


def _flow_bytes(f: dict[str, Any]) -> int:
    return int(f["bytes_fwd"]) + int(f["bytes_rev"])


def _table(w: Any, rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        w("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")
