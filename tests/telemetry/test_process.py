"""The shipper in a real child process, killed with real signals.

SIGKILL mid-run, twice, while the collector flaps: after restarts nothing acknowledged to the pipeline
(`flush()` returned) is lost, no event is stored twice, no sequence number is reused. SIGTERM: the open
batch and the in-memory queue reach the spool within the close bound, even with a request hanging.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from telemetry.codec import decode_batch, decompress
from telemetry.signing import AgentCredential, generate_secret
from telemetry.spool import Spool

from .receiver import Receiver, free_port

SECRET = generate_secret()
REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, url: str, **extra) -> Path:
    keys = {
        "batch_max_events": 20,
        "batch_max_age": 0.1,
        "backoff_initial": 0.05,
        "backoff_max": 0.3,
        "request_timeout": 10.0,
        **extra,
    }
    lines = [
        "[collector]",
        f'url = "{url}"',
        'agent_id = "gw-kill"',
        f'secret = "{SECRET}"',
        'site = "school-a"',
        f'spool_dir = "{tmp_path / "spool"}"',
    ] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.telemetry.shipper_child",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def flap(receiver: Receiver, stop: asyncio.Event) -> None:
    while not stop.is_set():
        receiver.unavailable = not receiver.unavailable
        await asyncio.sleep(0.25)
    receiver.unavailable = False


@pytest.mark.slow
async def test_sigkill_mid_run_loses_nothing_acknowledged(tmp_path: Path) -> None:
    receiver = Receiver(secrets={"gw-kill": AgentCredential(SECRET.encode())}, retry_after=None)
    await receiver.start()
    stop_flapping = asyncio.Event()
    flapper = asyncio.create_task(flap(receiver, stop_flapping))
    config = write_config(tmp_path, receiver.url)
    total, start = 1500, 0
    durable, submitted, seqs_before = -1, -1, []
    try:
        unacked: set[int] = set()
        for kill_after in (413, 807):  # mid-batch: an open batch in memory, maybe a POST in flight
            child = await spawn(str(config), str(start), str(total), "--flush-every", "25", "--delay", "0.001")
            assert child.stdout is not None
            while True:
                line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
                if line and line[0] == "s":
                    submitted = int(line[1])
                    if submitted >= kill_after:
                        break
                elif line and line[0] == "d":
                    durable = int(line[1])
            child.send_signal(signal.SIGKILL)
            await child.wait()
            # Everything the dead child submitted is beyond what a restart must resubmit.
            seqs_before.append(max((s for _, s in receiver.order), default=0))
            print(
                f"killed after submitting {submitted}, durable up to {durable}, "
                f"spool holds {len(Spool(tmp_path / 'spool', 1 << 30))} batches"
            )
            unacked |= set(range(durable + 1, submitted + 1))
            start = submitted + 1
        stop_flapping.set()
        await flapper
        child = await spawn(str(config), str(start), str(total), "--flush-every", "25")
        assert child.stdout is not None
        out = (await asyncio.wait_for(child.stdout.read(), 60)).decode().splitlines()
        assert await child.wait() == 0
        stats = json.loads(out[-1].split(" ", 1)[1])
    finally:
        stop_flapping.set()
        await receiver.stop()
    got = [e.fields["i"] for e in receiver.events("gw-kill")]
    print(
        f"stored {len(got)} events in {len(receiver.order)} batches; {receiver.duplicates} duplicate "
        f"batches ignored; {receiver.reused} sequence numbers reused; last run: {stats['batches_acked']} acked"
    )
    assert receiver.reused == 0
    assert len(got) == len(set(got)), "an event was stored twice"
    must_have = set(range(total)) - unacked
    lost = unacked - set(got)
    print(f"{len(unacked)} events were submitted but not yet flushed at the kills; {len(lost)} of them lost")
    assert must_have <= set(got), f"acknowledged events lost: {sorted(must_have - set(got))[:10]}"
    seqs = [seq for _, seq in receiver.order]
    assert seqs == sorted(seqs)


@pytest.mark.slow
async def test_sigterm_spools_in_memory_batches_within_bound(tmp_path: Path) -> None:
    # A collector that accepts connections and never answers: the first POST hangs.
    hung: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    port = free_port()
    server = await asyncio.start_server(black_hole, "127.0.0.1", port)
    config = write_config(
        tmp_path, f"http://127.0.0.1:{port}", batch_max_events=100, batch_max_age=60.0, request_timeout=60.0
    )
    child = await spawn(str(config), "0", "250", "--hold")
    assert child.stdout is not None
    while (await asyncio.wait_for(child.stdout.readline(), 30)).strip() != b"ready":
        pass
    await asyncio.sleep(0.3)  # let the first full batch go out and hang
    assert hung, "the first batch should be in flight"
    began = time.monotonic()
    child.send_signal(signal.SIGTERM)
    rest = (await asyncio.wait_for(child.stdout.read(), 10)).decode()
    code = await child.wait()
    took = time.monotonic() - began
    server.close()
    spool = Spool(tmp_path / "spool", 1 << 30)
    events = []
    for seq in spool.pending():
        loaded = spool.load(seq)
        assert loaded is not None
        events += [e.fields["i"] for e in decode_batch(decompress(loaded.body, loaded.encoding)).events]
    print(
        f"SIGTERM: exited {code} in {took:.2f} s (bound 2 s + start-up), {len(spool.pending())} batches, "
        f"{len(events)} events in the spool"
    )
    assert code == 0 and "closed" in rest
    assert took < 3.0
    assert sorted(events) == list(range(250))
