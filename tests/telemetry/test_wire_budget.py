"""The wire budget (DESIGN.md: a flow summary costs <= 40 B after compression), by bytes, not time."""

from __future__ import annotations

from bench.wire_bytes import run, synthetic_flows


def test_flow_summary_bytes_within_budget() -> None:
    rows = {(variant.strip(), enc): per_flow for variant, enc, per_flow in run(synthetic_flows(10_000, 7), 5_000, 7)}
    ours, zeek = rows[("veille batch (wire format)", "zstd")], rows[("Zeek conn.log JSON lines", "zstd")]
    gz = rows[("veille batch (wire format)", "gzip")]
    print(f"wire: {ours:.1f} B/flow zstd, {gz:.1f} B/flow gzip, Zeek JSON {zeek:.1f} B/flow zstd")
    assert ours <= 40 and gz <= 40
    assert ours < zeek / 2
