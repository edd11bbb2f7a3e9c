"""Community ID v1 against Arkime's expected session documents in the corpora (a tool we did not write)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from telemetry.community import community_id


def arkime_sessions(corpora: Path) -> list[tuple]:
    rows = []
    for path in sorted(corpora.glob("*/upstream/*.arkime.test")):
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        for session in doc.get("sessions3", []):
            body = session["body"]
            cid = (body.get("network") or {}).get("community_id")
            if not cid:
                continue
            proto = body["ipProtocol"]
            sport, dport = body["source"].get("port", 0), body["destination"].get("port", 0)
            if proto in (1, 58):
                # Arkime lists the ICMP types and codes it saw, sorted, not which came first: keep them all.
                sport, dport = tuple(body["icmp"]["type"]), tuple(body["icmp"]["code"])
            rows.append((proto, body["source"]["ip"], sport, body["destination"]["ip"], dport, cid, path.name))
    return rows


@pytest.mark.corpora
def test_agrees_with_arkime(corpora: Path) -> None:
    rows = arkime_sessions(corpora)
    ported = [r for r in rows if r[0] not in (1, 58)]
    assert len(ported) >= 50
    wrong = [r for r in ported if community_id(r[0], r[1], r[2], r[3], r[4]) != r[5]]
    print(f"Community ID agreement with Arkime, TCP/UDP: {len(ported) - len(wrong)}/{len(ported)}")
    assert not wrong, wrong[:3]
    # ICMP: the session's first type is one of those listed. Request/reply sessions must match for one of
    # them; error messages (unreachable, ...) are hashed by Arkime from elsewhere and only reported.
    icmp = [r for r in rows if r[0] in (1, 58)]
    pairs = {0, 8, 128, 129, 133, 134, 135, 136}
    checked = [r for r in icmp if pairs & set(r[2])]
    ok = [r for r in checked if any(community_id(r[0], r[1], t, r[3], c) == r[5] for t in r[2] for c in r[4])]
    print(
        f"Community ID agreement with Arkime, ICMP request/reply: {len(ok)}/{len(checked)} "
        f"({len(icmp) - len(checked)} ICMP error sessions not compared)"
    )
    assert checked and len(ok) == len(checked)


def test_both_directions_hash_alike_and_names_work() -> None:
    a = community_id("tcp", "192.0.2.10", 51000, "203.0.113.5", 443)
    assert a == community_id(6, "203.0.113.5", 443, "192.0.2.10", 51000)
    assert a != community_id("tcp", "192.0.2.10", 51001, "203.0.113.5", 443)
    assert a != community_id("tcp", "192.0.2.10", 51000, "203.0.113.5", 443, seed=1)
    echo = community_id("icmp", "192.0.2.1", 8, "192.0.2.2", 0)
    assert echo == community_id("icmp", "192.0.2.2", 0, "192.0.2.1", 0)
    with pytest.raises(ValueError):
        community_id("gre?", "192.0.2.1", 0, "192.0.2.2", 0)
