"""A real full disk under the spool (a 64 KiB tmpfs): the shipper sheds and alarms, never stops, and
delivers what it kept once the collector is back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.wire_bytes import synthetic_flows
from telemetry.config import ShipperConfig
from telemetry.shipper import Shipper
from telemetry.signing import AgentCredential, generate_secret

from .receiver import Receiver

SECRET = generate_secret()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


async def test_disk_full_sheds_alarms_and_keeps_going(tmp_path: Path, tiny_disk: Path) -> None:
    receiver = Receiver(secrets={"gw-1": AgentCredential(SECRET.encode())})
    cfg = ShipperConfig(
        url=receiver.url,
        agent_id="gw-1",
        secret=SECRET,
        site="s",
        spool_dir=tiny_disk / "spool",
        spool_max_bytes=10 << 20,
        batch_max_events=100,
        batch_max_age=0.05,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    flows = synthetic_flows(4000, 5)
    async with Shipper(cfg) as shipper:
        for i, flow in enumerate(flows):  # collector not started: everything goes to the (too small) disk
            shipper.submit(flow)
            if i % 100 == 99:
                await shipper.flush()
        stats = shipper.stats()
        print(
            f"disk full: spool {stats.spool_bytes} B in {stats.spool_batches} batches, shed {stats.shed}, "
            f"alarms {len(stats.alarms)}: {stats.alarms[-1][:80]}"
        )
        assert stats.shed.get("flow", 0) > 0
        assert any("spool write failed" in a or "spool I/O failed" in a for a in stats.alarms)
        await receiver.start()
        try:
            await shipper.drain(give_up_after=10)
            stats = shipper.stats()
        finally:
            await receiver.stop()
    got = receiver.events()
    print(f"after the collector came back: {len(got)} delivered + {stats.shed['flow']} shed = {len(flows)}")
    assert len(got) + stats.shed["flow"] == len(flows)
    assert len(got) > 0 and got == [f for f in flows if f in set(got)]  # delivered in order
