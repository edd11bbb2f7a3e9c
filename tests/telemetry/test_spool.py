"""The spool on real files: order, recovery after a crash, seq never reused, shedding order, corrupt and
rejected files kept aside."""

from __future__ import annotations

import json
import os
from pathlib import Path

from telemetry.codec import decode_batch, decompress, new_batch
from telemetry.schema import AlertEvent, DeviceEvent, FlowEvent, HealthEvent, ObservationEvent
from telemetry.spool import SEQ_BLOCK, SeqCounter, Spool


def flow(i: int) -> FlowEvent:
    return FlowEvent(
        ts_start=1732270000.0 + i,
        ts_end=1732270001.0 + i,
        proto="udp",
        src="192.0.2.10",
        sport=40000 + i,
        dst="198.51.100.53",
        dport=53,
        pkts_fwd=1,
        pkts_rev=1,
        bytes_fwd=60 + i,
        bytes_rev=120 + i * 7,
    )


def device(i: int) -> DeviceEvent:
    return DeviceEvent(
        mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
        first_seen=1.0,
        last_seen=2.0 + i,
        vendor=f"Vendor {i}",
        ips=[f"192.0.2.{i % 250}"],
    )


def alert(i: int) -> AlertEvent:
    return AlertEvent(ts=1.0 + i, sid=1000 + i, msg=f"test alert {i} " + "x" * 40, src="203.0.113.7")


def batch(spool: Spool, events: list):
    return new_batch("agent-1", "site", spool.next_seq(), 1.0, events)


def read(spool: Spool, seq: int):
    loaded = spool.load(seq)
    assert loaded is not None
    return decode_batch(decompress(loaded.body, loaded.encoding))


def test_put_load_ack_and_recovery(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    seqs = []
    for i in range(5):
        b = batch(spool, [flow(i), alert(i)])
        assert spool.put(b)
        seqs.append(b.seq)
    (spool.pending_dir / "00000000000000000099.f.zst.tmp").write_bytes(b"half written")  # crash mid-write
    reopened = Spool(tmp_path, 1 << 20)
    assert reopened.pending() == seqs and reopened.bytes_used == spool.bytes_used
    assert not list(reopened.pending_dir.glob("*.tmp"))
    assert read(reopened, seqs[2]).events == [flow(2), alert(2)]
    reopened.ack(seqs[0])
    assert Spool(tmp_path, 1 << 20).pending() == seqs[1:]
    assert sorted(p.name.split(".")[1] for p in reopened.pending_dir.iterdir()) == ["af"] * 4


def test_seq_never_reused_across_crashes(tmp_path: Path) -> None:
    path = tmp_path / "seq"
    handed: list[int] = []
    for run in range(5):
        counter = SeqCounter(path)  # each run "crashes": no close, no final write
        handed += [counter.next() for _ in range(run * 30 + 1)]
    assert len(set(handed)) == len(handed) and handed == sorted(handed)
    assert int(path.read_text()) > handed[-1]
    assert handed[-1] - handed[0] < 5 * SEQ_BLOCK + sum(r * 30 + 1 for r in range(5))


def test_seq_floor_from_spooled_files_when_counter_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for _ in range(3):
        spool.put(batch(spool, [alert(0)]))
    last = spool.pending()[-1]
    (tmp_path / "seq").unlink()
    assert Spool(tmp_path, 1 << 20).next_seq() > last


def test_shedding_order_and_counters(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe", 1 << 30)
    probe.put(
        batch(probe, [flow(i) for i in range(40)] + [device(i) for i in range(10)] + [alert(i) for i in range(5)])
    )
    size = probe.bytes_used
    spool = Spool(tmp_path / "s", int(size * 3.5))
    for n in range(3):
        events = (
            [flow(100 * n + i) for i in range(40)]
            + [device(100 * n + i) for i in range(10)]
            + [alert(100 * n + i) for i in range(5)]
        )
        assert spool.put(batch(spool, events))
    assert spool.shed == {}
    kinds_of = lambda seq: {type(e).__name__ for e in read(spool, seq).events}  # noqa: E731
    # A fourth batch does not fit: its own flows go first, and it then fits; spooled flows stay.
    assert spool.put(batch(spool, [flow(400 + i) for i in range(40)] + [alert(400 + i) for i in range(5)]))
    assert dict(spool.shed) == {"flow": 40}
    assert kinds_of(spool.pending()[-1]) == {"AlertEvent"} and "FlowEvent" in kinds_of(spool.pending()[0])
    # Keep pushing alert batches: spooled flows go (oldest first), then devices, alerts only last.
    history = []
    for n in range(40):
        spool.put(batch(spool, [alert(1000 + 20 * n + i) for i in range(20)]))
        history.append(dict(spool.shed))
        assert spool.bytes_used <= spool.max_bytes
    print(f"shed history: {history[::4]}")
    for shed in history:
        assert not shed.get("device") or shed["flow"] == 160, shed  # every flow before any device
        assert not shed.get("alert") or shed["device"] == 30, shed  # every device before any alert
    assert history[-1].get("alert", 0) > 0, "the test must reach alert shedding"
    remaining = [e for s in spool.pending() for e in read(spool, s).events]
    total_alerts = 3 * 5 + 5 + 40 * 20
    assert sum(isinstance(e, AlertEvent) for e in remaining) + spool.shed["alert"] == total_alerts


def test_observations_shed_before_flows_and_oversize_batch_refused(tmp_path: Path) -> None:
    obs = [ObservationEvent(ts=1.0 + i, kind="dhcp", fields={"i": i, "host": f"host-{i * 7919}"}) for i in range(30)]
    first = obs + [flow(i) for i in range(10)] + [HealthEvent(ts=1.0)]
    probe = Spool(tmp_path / "probe", 1 << 20)
    probe.put(batch(probe, first))
    spool = Spool(tmp_path / "s", probe.bytes_used + 150)
    assert spool.put(batch(spool, first))
    assert spool.put(batch(spool, [alert(i) for i in range(3)]))
    print(f"shed to fit 3 alerts: {dict(spool.shed)}")
    assert spool.shed["obs"] == 30 and spool.shed.get("alert", 0) == 0
    assert spool.shed.get("flow", 0) in (0, 10) and not spool.shed.get("health")
    huge = [alert(i) for i in range(500)]
    assert not spool.put(batch(spool, huge))
    assert spool.shed["alert"] == 500 and spool.bytes_used <= spool.max_bytes


def test_corrupt_files_moved_aside_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    seqs = []
    for i in range(3):
        b = batch(spool, [flow(i)])
        spool.put(b)
        seqs.append(b.seq)
    victim = next(spool.pending_dir.glob(f"{seqs[1]:020d}.*"))
    victim.write_bytes(victim.read_bytes()[:-5] + b"\x00" * 5)
    (spool.pending_dir / "not-a-batch.txt").write_text("?")
    spool = Spool(tmp_path, 1 << 20)
    assert spool.corrupt == 1  # the stray file, at open
    assert spool.load(seqs[1]) is None and spool.corrupt == 2
    assert spool.pending() == [seqs[0], seqs[2]]
    names = sorted(p.name for p in spool.corrupt_dir.iterdir())
    assert victim.name in names and victim.name + ".reason.json" in names
    assert "zstd" in json.loads((spool.corrupt_dir / (victim.name + ".reason.json")).read_text())["reason"]


def test_rejected_kept_with_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    b = batch(spool, [alert(1)])
    spool.put(b)
    spool.reject(b.seq, 422, "schema", "Expected `int` at $.events[0].sid")
    assert spool.pending() == [] and spool.rejected == 1
    files = sorted(os.listdir(spool.rejected_dir))
    assert len(files) == 2
    info = json.loads((spool.rejected_dir / files[1]).read_text())
    assert info["status"] == 422 and info["seq"] == b.seq
    assert Spool(tmp_path, 1 << 20).next_seq() > b.seq  # a rejected seq is not handed out again
