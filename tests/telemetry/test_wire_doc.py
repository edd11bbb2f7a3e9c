"""docs/wire.md's annotated example is the encoder's real output (VEILLE_REGEN_GOLDEN=1 rewrites it)."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack

from telemetry.codec import decode_batch

from .wire_example import BEGIN, END, example_body, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire.md"


def test_doc_example_matches_the_encoder() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    fresh = render()
    if os.environ.get("VEILLE_REGEN_GOLDEN") == "1":
        DOC.write_text(text[:start] + fresh + text[end:])
        text = DOC.read_text()
    assert text[start : start + len(fresh)] == fresh, "docs/wire.md example is stale: VEILLE_REGEN_GOLDEN=1"


def test_example_decodes_both_ways() -> None:
    body = example_body()
    batch = decode_batch(body)
    plain = msgpack.unpackb(body)
    assert plain["seq"] == batch.seq == 42
    assert plain["events"][0]["dp"] == batch.events[0].dport == 443
