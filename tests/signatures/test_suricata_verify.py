"""Suricata-verify fingerprint tests (ja4-tls, ja4-quic, ja4-tls-quic, quic-ietf-ja3).

FP tests: every folder whose test.yaml checks a `tls.*`/`quic.*` JA3/JA3S/JA4 field is run: the
pcap is fingerprinted as in test_reference_agreement, and for each filter the number of flows
with that value must equal Suricata's expected event count (one tls/quic event per flow here).
test.yaml is read with a few regular expressions: no YAML library is a dependency.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signatures.ja3 import ja3, ja3s
from signatures.ja4 import ja4
from tests.signatures.corpus_fingerprints import Found, fingerprint_capture

pytestmark = pytest.mark.corpora

_FILTER = re.compile(r"- filter:(.*?)(?=\n\s*- filter:|\Z)", re.S)
_COUNT = re.compile(r"count:\s*(\d+)")
_EVENT = re.compile(r"event_type:\s*(\w+)")
_FIELD = re.compile(r"^\s*(?:tls|quic)\.(ja4|ja3s?\.(?:hash|string)|sni):\s*\"?([^\"\n]+?)\"?\s*$", re.M)
# Suricata field -> our fingerprint kind.
_KINDS = {
    "ja4": "ja4",
    "ja3.hash": "ja3",
    "ja3.string": "ja3_string",
    "ja3s.hash": "ja3s",
    "ja3s.string": "ja3s_string",
    "sni": "sni",
}


def _fp_checks(test_yaml: Path) -> list[tuple[str, dict[str, str], int]]:
    """(event_type, {kind: value}, count) for every filter that checks a fingerprint field."""
    out = []
    for block in _FILTER.findall(test_yaml.read_text()):
        event, count = _EVENT.search(block), _COUNT.search(block)
        wanted = {_KINDS[name]: value for name, value in _FIELD.findall(block)}
        if event and count and set(wanted) - {"sni"}:
            out.append((event.group(1), wanted, int(count.group(1))))
    return out


def _fp_tests(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/test.yaml") if _fp_checks(p))


def _flows(found: Found) -> list[tuple[bool, dict[str, str]]]:
    """(UDP?, values) per connection, as Suricata logs one tls/quic event per flow."""
    out = []
    for key, conns in found.clients.items():
        servers = found.servers.get((key[2], key[3], key[0], key[1]), [])
        for index, hellos in enumerate(conns):
            values = {"sni": hellos[0].sni or ""}
            values["ja3_string"], values["ja3"] = ja3(hellos[0])
            values["ja4"] = ja4(hellos[0])[0]
            if index < len(servers) and servers[index]:
                values["ja3s_string"], values["ja3s"] = ja3s(servers[index][0])
            out.append((key in found.udp, values))
    return out


def test_suricata_verify_fingerprint_tests(corpora: Path) -> None:
    root = corpora / "suricata-verify"
    tests = _fp_tests(root)
    assert {"ja4-tls", "ja4-quic", "ja4-tls-quic"} <= {t.name for t in tests}
    ok = total = 0
    failures = []
    for test in tests:
        pcaps = sorted(test.glob("*.pcap")) + sorted(test.glob("*.pcapng"))
        flows = _flows(fingerprint_capture(pcaps[0]))
        for event, wanted, count in _fp_checks(test / "test.yaml"):
            udp = event == "quic"
            seen = sum(1 for is_udp, v in flows if is_udp == udp and all(v.get(k) == x for k, x in wanted.items()))
            total += 1
            if seen == count:
                ok += 1
            else:
                failures.append(f"{test.name}: {event} {wanted}: expected {count}, ours {seen}")
    print(f"suricata-verify FP checks: {ok}/{total} ({', '.join(t.name for t in tests)})")
    assert not failures, failures
    assert ok == total > 0


def test_suricata_verify_quic_ja3s_string(corpora: Path) -> None:
    """quic-ietf-ja3: sid 3 (`ja3s.string; content:"771,4866,43-51-41"`) alerts once."""
    test = corpora / "suricata-verify" / "quic-ietf-ja3"
    if not test.is_dir():
        pytest.skip("quic-ietf-ja3 not in this corpus")
    found = fingerprint_capture(test / "input.pcap")
    strings = [v for values in found.values("ja3s_string").values() for v in values]
    hashes = [v for values in found.values("ja3").values() for v in values]
    hits = sum("771,4866,43-51-41" in s for s in strings)
    print(f"suricata-verify quic-ietf-ja3 sid 3: {hits}/1, sid 5: {hashes.count('deadbeef' * 4)}/0")
    assert hits == 1
    assert "deadbeef" * 4 not in hashes
