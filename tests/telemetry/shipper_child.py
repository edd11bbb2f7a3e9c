"""A child process running the real shipper, for the SIGKILL and SIGTERM tests.

    python -m tests.telemetry.shipper_child CONFIG START END [--flush-every K] [--delay S] [--drain S]

Submits ObservationEvents numbered START..END-1, printing `s N` after submitting N and `d N` once
`flush()` returned (everything up to N acknowledged or in the spool). SIGTERM: `close(2.0)` then `closed`.
At the end: `drain`, then `done <stats json>`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys

from telemetry.config import ShipperConfig
from telemetry.schema import ObservationEvent
from telemetry.shipper import Shipper


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    shipper = Shipper(ShipperConfig.from_toml(args.config))
    await shipper.start()
    say("started")
    for i in range(args.start, args.end):
        if stop.is_set():
            break
        shipper.submit(ObservationEvent(ts=1732270000.0 + i, kind="test", src="192.0.2.1", fields={"i": i}))
        say(f"s {i}")
        if args.flush_every and (i + 1) % args.flush_every == 0:
            await shipper.flush()
            say(f"d {i}")
        if args.delay:
            await asyncio.sleep(args.delay)
    if not stop.is_set() and args.hold:
        say("ready")
        await stop.wait()
    if stop.is_set():
        await shipper.close(2.0)
        say("closed")
        return 0
    await shipper.drain(give_up_after=args.drain)
    stats = shipper.stats()
    await shipper.close()
    say("done " + json.dumps(dataclasses.asdict(stats)))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("start", type=int)
    parser.add_argument("end", type=int)
    parser.add_argument("--flush-every", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--drain", type=float, default=20.0)
    parser.add_argument("--hold", action="store_true", help="after submitting, wait for SIGTERM")
    sys.exit(asyncio.run(main(parser.parse_args())))
