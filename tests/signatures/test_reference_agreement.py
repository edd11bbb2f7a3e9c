"""Our JA3/JA3S/JA4/HASSH against tools nobody on this project wrote, on public captures.

For every capture in the corpora's `ja4/pcap/` and `protocols/pcap/`, the test reads the file
with scapy, reassembles each TCP direction by sequence number, feeds QUIC datagrams to the QUIC
readers, fingerprints what the parsers return, and compares with tshark 4.0.17, FoxIO's Python
and Rust tools, Arkime's expected sessions and FoxIO's ja4.py run on that tshark. Every figure is
printed (`pytest -s`) and asserted; a disagreement must be listed in KNOWN with its reason, and a
KNOWN entry that stops occurring fails the test too. KNOWN is empty today.

Where the references differ from each other (none of it is a disagreement on a value):
- FoxIO's Python keys a GRE-tunnelled flow (gre-sample.pcap) by the outer addresses, the Rust
  tool and Arkime by the inner ones; `_compare` falls back to matching the ports and the value.
- FoxIO's Python has no QUIC JA4 (quic-*.pcapng give `[]`), the Rust tool has: QUIC is checked
  against Rust, tshark (JA3/JA3S of QUIC hellos) and suricata-verify.
- FoxIO's Python lists the ClientHello that answers a HelloRetryRequest as `JA4.2`: compared as
  kind `ja4_2nd`. tshark lists both hellos (and both ServerHellos) of such a stream.
- tshark 4.0 computes no JA3 for DTLS; Arkime's DTLS JA4 (dtls-udp.notest.cap) is compared.
- The Rust tool writes `hassh: null` for SSH 1.5 (sshv1.pcap, v6.pcap); nobody fingerprints it.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.signatures.corpus_fingerprints import Found, fingerprint_capture
from tests.signatures.references import Entry, arkime, foxio_python, foxio_rust, tshark_tsv

pytestmark = pytest.mark.corpora

CAPTURE_SETS = ("ja4", "protocols")
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")

# (capture, fingerprint kind, reference) -> why our value differs from that reference there.
KNOWN: dict[tuple[str, str, str], str] = {}


@functools.cache
def _found(path: Path) -> Found:
    return fingerprint_capture(path)


def _captures(corpora: Path) -> list[Path]:
    out = []
    for name in CAPTURE_SETS:
        out += sorted(p for p in (corpora / name / "pcap").iterdir() if p.suffix in CAPTURE_SUFFIXES)
    return out


def _compare(ref: list[Entry], ours: dict[tuple[object, ...], list[str]]) -> tuple[int, list[str]]:
    pool: dict[tuple[object, ...], list[str]] = defaultdict(list)
    for key, values in ours.items():
        pool[key] += values
        pool[key[:2]] += values
        pool[("ports", key[1], key[3])] += values
    matched = 0
    misses = []
    for key, value in ref:
        values = pool.get(key, [])
        # FoxIO's Python keys a tunnelled flow (GRE) by the outer addresses, the other tools by
        # the inner ones: when the addresses miss, the same ports and value still identify it.
        by_ports = pool.get(("ports", key[1], key[3]), []) if len(key) == 4 else []
        if value in values:
            values.remove(value)
            matched += 1
        elif value in by_ports:
            by_ports.remove(value)
            matched += 1
        else:
            misses.append(f"{key}: reference {value!r}, ours {values!r}")
    return matched, misses


def _agreement(corpora: Path, reference: str, kinds: tuple[str, ...], load, locate) -> None:
    figures = {kind: [0, 0] for kind in kinds}
    unexplained: list[str] = []
    explained: set[tuple[str, str, str]] = set()
    for capture in _captures(corpora):
        ref_path = locate(capture)
        if ref_path is None or not ref_path.exists():
            continue
        loaded = load(ref_path)
        found = _found(capture)
        for kind in kinds:
            matched, misses = _compare(loaded.get(kind, []), found.values(kind))
            figures[kind][0] += matched
            figures[kind][1] += matched + len(misses)
            if misses:
                known = (capture.name, kind, reference)
                if known in KNOWN:
                    explained.add(known)
                    figures[kind][1] -= len(misses)
                    print(f"  known: {capture.name} {kind}: {KNOWN[known]} ({len(misses)})")
                else:
                    unexplained += [f"{capture.name} {kind}: {m}" for m in misses]
    for kind, (ok, total) in figures.items():
        print(f"{kind.upper()} vs {reference}: {ok}/{total}")
    stale = {k for k in KNOWN if k[2] == reference and k[1] in kinds} - explained
    assert not unexplained, "\n".join(unexplained)
    assert not stale, f"KNOWN entries that no longer disagree: {sorted(stale)}"
    for kind, (ok, total) in figures.items():
        assert ok == total and total > 0, kind


def _sibling(folder: str, suffix: str):
    return lambda capture: capture.parent.parent / folder / f"{capture.name}{suffix}"


def test_ja3_and_ja3s_agree_with_tshark(corpora: Path) -> None:
    kinds = ("ja3", "ja3_string", "ja3s", "ja3s_string")
    _agreement(corpora, "tshark", kinds, tshark_tsv, _sibling("reference", ".tshark.tsv"))


def test_ja4_agrees_with_foxio_python(corpora: Path) -> None:
    kinds = ("ja4", "ja4_r", "ja4_2nd")
    _agreement(corpora, "FoxIO python", kinds, foxio_python, _sibling("expected/python", ".json"))


def test_ja4_agrees_with_foxio_ja4py_run_on_tshark(corpora: Path) -> None:
    kinds = ("ja4", "ja4_r", "ja4_2nd")
    _agreement(corpora, "ja4py+tshark", kinds, foxio_python, _sibling("reference/ja4py", ".json"))


def _rust_snapshot(capture: Path) -> Path:
    return capture.parent.parent / "expected" / "rust" / f"ja4__insta@{capture.name}.snap"


def test_ja4_agrees_with_foxio_rust(corpora: Path) -> None:
    _agreement(corpora, "FoxIO rust", ("ja4",), foxio_rust, _rust_snapshot)


def test_hassh_agrees_with_foxio(corpora: Path) -> None:
    kinds = ("hassh", "hassh_server")
    _agreement(corpora, "FoxIO python", kinds, foxio_python, _sibling("expected/python", ".json"))
    _agreement(corpora, "FoxIO rust", kinds, foxio_rust, _rust_snapshot)


def test_fingerprints_agree_with_arkime(corpora: Path) -> None:
    def locate(capture: Path) -> Path | None:
        upstream = capture.parent.parent / "upstream"
        hits = sorted(upstream.glob(f"{capture.name}*.test"))
        return hits[0] if hits else None

    kinds = ("ja3", "ja3_string", "ja3s", "ja3s_string", "ja4", "ja4_r", "hassh", "hassh_server")
    _agreement(corpora, "Arkime", kinds, arkime, locate)


def test_no_fingerprint_that_tshark_does_not_see(corpora: Path) -> None:
    """The other way round: every JA3/JA3S we compute on a flow tshark dissects as TLS/QUIC is
    one tshark computes too. Left out: DTLS and SSLv2 hellos (tshark 4.0 has no JA3 for them;
    Arkime's DTLS JA4 agrees with ours above), and flows tshark does not dissect as TLS at all
    (its TLS dissector is chosen by port)."""
    extra: list[str] = []
    ours_total = 0
    for capture in _captures(corpora):
        ref = capture.parent.parent / "reference" / f"{capture.name}.tshark.tsv"
        if not ref.exists():
            continue
        found = _found(capture)
        loaded = tshark_tsv(ref)
        for kind in ("ja3", "ja3s"):
            theirs = Counter((k[0], k[1], v) for k, v in loaded[kind])
            dissected = {key for key, _ in loaded["tls_senders"]}
            ours = Counter(
                (k[0], k[1], v)
                for k, values in found.values(kind).items()
                if k[:2] in dissected
                and not any(h.dtls or h.sslv2 for hellos in found.clients.get(k, []) for h in hellos)
                for v in values
            )
            ours_total += sum(ours.values())
            extra += [f"{capture.name} {kind} {item}" for item in ours - theirs]
    print(f"JA3/JA3S computed here and absent from tshark: {len(extra)}/{ours_total}")
    assert not extra, extra
    assert ours_total > 0
