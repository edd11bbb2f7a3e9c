"""Cost of rules: replay packets/s with 0, 100 and 10,000 generated ET-Open-like rules loaded.

The packet list is bench.gen_mix's school mix (TLS, HTTP, DNS, mDNS/SSDP, DHCP, video flows),
made once into a temporary pcap and held in memory, so the timings are the pipeline alone
(decode, flows, observers, fingerprints, rules). Rule sets follow the shapes of ET Open: TCP
payload rules (flow + content with depth/distance, some pcre), HTTP sticky-buffer rules (uri,
user agent, host), DNS query rules, TLS SNI rules and UDP payload rules, each with a rare token
from a seeded generator; 2% use a fast pattern that does occur in the traffic (so candidates are
verified and rejected on a second content), as real rule sets do. Throughput is measured on
process CPU time (other work on the machine does not count against it), sizes are run
interleaved and the best of `--repeat` rounds is kept.

    python -m bench.rules_bench [--packets 200000] [--pcap FILE] [--sizes 0,100,10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from agent.pipeline import Pipeline, PipelineConfig
from bench.gen_mix import generate
from capture.decode import decode
from capture.errors import DecodeError
from capture.frame import Frame
from capture.pcapfile import read_frames
from signatures.rules import load_text
from signatures.rules.matching import fast_pattern
from signatures.rules.parser import rule_variables
from signatures.rules.prefilter import HAVE_HYPERSCAN, Prefilter

_ALPHA = "abcdefghijklmnopqrstuvwxyz0123456789"
# Substrings of the generated traffic, used as (unselective) fast patterns by a few rules.
_COMMON = ["GET ", "Host|3a| ", "User-Agent|3a| Mozilla", "HTTP/1.1", "www.example", ".com", "|16 03|"]


def _tok(rng: random.Random, lo: int = 6, hi: int = 12) -> str:
    return "".join(rng.choice(_ALPHA) for _ in range(rng.randint(lo, hi)))


def make_rules(n: int, seed: int = 1) -> str:
    """`n` ET-Open-like rules in the supported subset (deterministic for a seed)."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        sid = 2_000_000 + i
        t1, t2 = _tok(rng), _tok(rng)
        first = rng.choice(_COMMON) if rng.random() < 0.02 else t1
        shape = rng.random()
        if shape < 0.35:
            extra = f' pcre:"/{t2}[0-9]{{2,4}}/i";' if rng.random() < 0.3 else ""
            out.append(
                f'alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"ET MALWARE Bench {i}"; '
                f'flow:established,to_server; content:"{first}"; depth:{rng.randint(40, 400)}; '
                f'content:"{t2}"; distance:0;{extra} classtype:trojan-activity; sid:{sid}; rev:1;)'
            )
        elif shape < 0.7:
            out.append(
                f'alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET WEB_CLIENT Bench {i}"; '
                f'flow:established,to_server; http.uri; content:"/{t1}"; http.user_agent; content:"{t2}"; '
                f"classtype:web-application-attack; sid:{sid}; rev:1;)"
            )
        elif shape < 0.85:
            out.append(
                f'alert dns $HOME_NET any -> any any (msg:"ET DNS Query Bench {i}"; dns.query; '
                f'content:"{t1}.example"; nocase; endswith; classtype:bad-unknown; sid:{sid}; rev:1;)'
            )
        elif shape < 0.95:
            out.append(
                f'alert tls $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TLS SNI Bench {i}"; '
                f'flow:established,to_server; tls.sni; content:"{t1}"; classtype:trojan-activity; sid:{sid}; rev:1;)'
            )
        else:
            out.append(
                f'alert udp $HOME_NET any -> any any (msg:"ET UDP Bench {i}"; content:"|de ad|{t1}"; '
                f"offset:4; classtype:misc-activity; sid:{sid}; rev:1;)"
            )
    return "\n".join(out) + "\n"


def run(frames: list[Frame], rule_file: str | None, home_net: str) -> tuple[float, float, int, int]:
    """(load seconds, packets/s, rules loaded, alerts) of one replay of `frames`."""
    t0 = time.perf_counter()
    cfg = PipelineConfig(rule_files=[rule_file] if rule_file else [], variables={"HOME_NET": home_net}, inventory=False)
    p = Pipeline(cfg)
    load = time.perf_counter() - t0
    feed = p.feed
    alerts = 0
    t1 = time.process_time()
    for i, fr in enumerate(frames):
        feed(fr)
        if i & 4095 == 0:
            alerts += sum(1 for e in p.take() if e["type"] == "alert")
    p.finish()
    elapsed = time.process_time() - t1
    alerts += sum(1 for e in p.take() if e["type"] == "alert")
    loaded = p.ruleset.loaded if rule_file else 0
    return load, len(frames) / elapsed, loaded, alerts


def prefilter_speed(frames: list[Frame], n_rules: int) -> None:
    """MB/s of each prefilter backend over the packets' payloads with `n_rules` fast patterns."""
    payloads = []
    for fr in frames:
        try:
            pkt = decode(fr.ts_ns / 1e9, fr.linktype, fr.data)
        except DecodeError:
            continue
        if pkt.payload_len:
            payloads.append(pkt.payload)
    total = sum(len(p) for p in payloads)
    rs = load_text(make_rules(n_rules), rule_variables({}))
    entries = []
    for i, r in enumerate(rs.rules):
        for _, ms in r.buffers:
            fp = fast_pattern(ms)
            if fp is not None:
                entries.append((fp.pattern, fp.nocase, i))
                break
    for backend in ("hyperscan", "ahocorasick") if HAVE_HYPERSCAN else ("ahocorasick",):
        pf = Prefilter(entries, backend)
        t0 = time.process_time()
        for p in payloads:
            pf.scan(p)
        dt = time.process_time() - t0
        print(
            f"prefilter {backend:>11}: {len(pf)} patterns, {total / dt / 1e6:7.1f} MB/s, "
            f"{len(payloads) / dt:>10,.0f} payloads/s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--pcap", help="replay this capture instead of a generated mix")
    ap.add_argument("--sizes", default="0,100,10000")
    ap.add_argument("--home-net", default="[10.0.0.0/8,192.168.0.0/16,172.16.0.0/12]")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per size")
    ap.add_argument("--prefilter-only", action="store_true", help="only compare the prefilter backends")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = args.pcap
        if pcap is None:
            pcap = str(Path(tmp) / "mix.pcap")
            generate(Path(pcap), args.packets)
        frames = list(read_frames(pcap))
        print(f"packets: {len(frames)} ({'generated school mix' if args.pcap is None else pcap})")
        prefilter_speed(frames, 10_000)
        if args.prefilter_only:
            return
        sizes = [int(x) for x in args.sizes.split(",")]
        files: dict[int, str | None] = {}
        for n in sizes:
            files[n] = None
            if n:
                files[n] = str(Path(tmp) / f"bench{n}.rules")
                Path(files[n] or "").write_text(make_rules(n))
        best: dict[int, tuple[float, float, int, int]] = {}
        for _ in range(args.repeat):
            for n in sizes:
                r = run(frames, files[n], args.home_net)
                if n not in best or r[1] > best[n][1]:
                    best[n] = r
        base = best[sizes[0]][1]
        for n in sizes:
            load, pps, loaded, alerts = best[n]
            print(
                f"rules {n:>6}: loaded {loaded:>6}, load+compile {load:6.2f} s, {pps:>9,.0f} packets/s (CPU), "
                f"cost x{base / pps:4.2f} vs {sizes[0]} rules, alerts {alerts}"
            )


if __name__ == "__main__":
    main()
