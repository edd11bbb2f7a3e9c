"""The one pipeline that live capture and replay share: frames in, events (dicts) out.

decode -> flow table -> observers -> fingerprints -> (rules, IOCs, LAN detections) -> inventory.
The clock is the packets' own timestamps, so the same capture always yields the same events.
Events are plain dicts in the shape of docs/events.md; `Pipeline.take()` hands them over in
batches so a caller can write or ship them while the run goes on.
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mypy_extensions import mypyc_attr

from capture.decode import decode
from capture.errors import DecodeError
from capture.fastpath import ScanState, bypass_frame, scan_frames, scan_pcap
from capture.flows import FlowConfig, FlowTable
from capture.frame import Frame
from capture.observe import Observation, Observer
from capture.packet import PROTO_TCP, PROTO_UDP
from capture.pcapfile import read_frames
from signatures.hassh import hassh, hassh_server
from signatures.ja3 import ja3, ja3s
from signatures.ja4 import ja4

# UDP services whose answers can be the first packet seen of an exchange (DNS, DHCP, NetBIOS, DHCPv6,
# SSDP, mDNS, LLMNR, NTP, SNMP, QUIC).
SERVICE_PORTS = frozenset({53, 67, 123, 137, 161, 443, 547, 1900, 5353, 5355})
# Distinct SYN signatures whose p0f label is remembered (a school LAN shows a few hundred).
P0F_CACHE_SIZE = 4096
# JA3/JA4 by ClientHello shape (ClientHello.fingerprint_key); a site's clients send a few shapes.
TLS_CACHE_SIZE = 4096
# Bypass modes of a TCP flow's two directions (FlowTable.make_fast).
_NOT_FAST = (0, 0)
_ALL_FAST = (2, 2)
# The cyclic garbage collector's thresholds while a pipeline runs (see settle_gc).
GC_THRESHOLDS = (50_000, 20, 10)
# Debian's p0f package installs its database here.
DEFAULT_P0F_PATH = "/etc/p0f/p0f.fp"


@dataclass
class PipelineConfig:
    """What the pipeline does; every feature is on by default."""

    flows: FlowConfig = field(default_factory=FlowConfig)
    fingerprints: bool = True
    p0f_path: str | None = DEFAULT_P0F_PATH
    inventory: bool = True
    # Networks counted as the site's own besides private and link-local ranges (default: $HOME_NET).
    local_networks: list[str] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    ioc_files: list[str] = field(default_factory=list)
    detections: dict[str, Any] | None = None
    # How often (capture seconds) idle flows are looked for.
    expire_interval: float = 1.0
    # Account packets that no stage needs (ciphertext, payload-less segments, directions no rule
    # inspects) from their wire bytes without decoding them. Off only to prove it changes nothing.
    bypass: bool = True
    # "default": no content inspection of TLS ciphertext (Suricata's default); "full": inspect it.
    encryption_handling: str = "default"


@mypyc_attr(allow_interpreted_subclasses=True)
class Pipeline:
    """Sans-IO apart from loading its databases at start-up; `feed()` one frame at a time."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = c = config or PipelineConfig()
        self.flows = FlowTable(c.flows)
        self.observer = Observer(keep_streams=bool(c.rule_files))
        self.events: list[dict[str, Any]] = []
        self.errors: Counter[str] = Counter()
        self.obs_counts: Counter[str] = Counter()
        self.packets = 0
        self.decoded = 0
        self.bytes = 0
        self.fragments = 0
        self.tunnelled = 0
        self.first_ts: float | None = None
        self.last_ts = 0.0
        self._next_expire = 0.0
        self.files = 0
        self._p0f: Any = None
        self._p0f_cache: dict[Any, str | None] = {}
        self._tls_cache: dict[tuple[object, ...], tuple[str, str, str, str]] = {}
        self._ja3s_cache: dict[tuple[object, ...], tuple[str, str]] = {}
        if c.fingerprints and c.p0f_path and os.path.exists(c.p0f_path):
            from signatures.p0f import P0fDatabase

            self._p0f = P0fDatabase.load(c.p0f_path)
        self._inventory: Any = None
        if c.inventory:
            try:
                from agent.inventory import Inventory
            except ImportError:  # pragma: no cover - during bring-up
                Inventory = None  # type: ignore[assignment,misc]
            if Inventory is not None:
                from agent.inventory import InventoryConfig

                nets = c.local_networks or _cidrs(c.variables.get("HOME_NET", ""))
                self._inventory = Inventory(InventoryConfig(local_networks=tuple(nets)))
        self._engine: Any = None
        self._fast = c.bypass
        # False while frames come from a bypass walk, which has already refused them.
        self._try_bypass = c.bypass
        self._scan = ScanState()
        self._ioc: Any = None
        self._lan: Any = None
        if c.rule_files:
            from signatures.rules import EngineConfig, RuleEngine, load_rules

            self.ruleset = load_rules(c.rule_files, c.variables)
            self._engine = RuleEngine(self.ruleset, EngineConfig(encryption_handling=c.encryption_handling))
        if c.ioc_files:
            from signatures.ioc import IocSet

            self._ioc = IocSet.load(c.ioc_files)
        if c.detections is not None:
            from agent.detections import LanDetector

            self._lan = LanDetector(c.detections)

    # -- the per-packet path ------------------------------------------------------------

    def feed(self, frame: Frame) -> None:
        """Run one frame through every stage."""
        ts = frame.ts_ns / 1e9
        self.packets += 1
        self.observer.pkt_no = self.packets
        data = frame.data
        self.bytes += len(data)
        if self.first_ts is None:
            self.first_ts = ts
        if ts > self.last_ts:
            self.last_ts = ts
        if ts >= self._next_expire:
            self.flows.expire(ts)
            self._next_expire = ts + self.config.expire_interval
            if self.flows.ended:
                self._flows_ended()
        if self._try_bypass and frame.linktype == 1 and self.flows.fast and bypass_frame(data, ts, self.flows):
            self.decoded += 1
            return
        try:
            pkt = decode(ts, frame.linktype, data)
        except DecodeError as e:
            self.errors[e.reason] += 1
            return
        self.decoded += 1
        if pkt.frag:
            self.fragments += 1
        if pkt.tunnel:
            self.tunnelled += 1
        flow = None
        d = 0
        if pkt.ip_version and pkt.l4_off >= 0:
            flow, d = self.flows.update(pkt)
            if self.flows.ended:
                self._flows_ended()
            if (
                pkt.proto == PROTO_UDP
                and flow.pkts_fwd == 1
                and not flow.pkts_rev
                and pkt.sport in SERVICE_PORTS
                and pkt.dport not in SERVICE_PORTS
            ):
                # A UDP exchange first seen from the server's side (a unicast answer to a multicast
                # query, or a capture that started mid-way): rules see it as to_client, as Suricata does.
                flow.ext["server_first"] = True
        obs = self.observer.packet(pkt, flow, d)
        rd = d ^ 1 if flow is not None and "server_first" in flow.ext else d  # direction for the rules
        if self._engine is not None and pkt.ip_version:
            for a in self._engine.on_packet(pkt, flow, rd):
                self._alert(a.to_event())
        if self._ioc is not None and flow is not None and flow.pkts_fwd + flow.pkts_rev == 1:
            for a in self._ioc.match_packet(pkt):
                self._alert(a.to_event())
        if obs:
            for o in obs:
                self._observation(o if rd == d else o.reversed())
        if self._fast and flow is not None and pkt.proto == PROTO_TCP:
            modes = flow.ext.get("fast", _NOT_FAST)
            if modes is not _ALL_FAST:
                observer = self.observer
                engine = self._engine
                m0 = observer.fast_mode(flow, 0)
                m1 = observer.fast_mode(flow, 1)
                if engine is not None:
                    em = engine.fast_mode(flow, 0)
                    m0 = em if em < m0 else m0
                    em = engine.fast_mode(flow, 1)
                    m1 = em if em < m1 else m1
                if flow.closing:  # late segments of a closed connection: only those without payload
                    m0 = 1 if m0 else 0
                    m1 = 1 if m1 else 0
                if m0 != modes[0] or m1 != modes[1]:
                    self.flows.make_fast(flow, _ALL_FAST if m0 == m1 == 2 else (m0, m1))

    def read(self, path: str) -> Iterator[Frame]:
        """The frames of a capture file that `feed` must see; the rest are accounted on the way."""
        self._try_bypass = self._fast  # the walk runs only on classic pcap files of Ethernet frames
        return read_frames(path, self.skip_fast if self._fast else None)

    def skip_fast(self, buf: bytes, pos: int, end: int, big_endian: bool, scale: int) -> int:
        """Account the pcap records from `pos` that belong to bypassed flows, as `feed` would
        (the reader's `skip` hook); returns the offset of the first record left for `feed`."""
        self._try_bypass = False
        if not self._fast or not self.flows.fast:
            return pos
        st = self._scan
        new = scan_pcap(st, buf, pos, end, big_endian, scale, self.flows, self._next_expire)
        if st.packets:
            self._bypassed(st)
        return new

    def feed_frames(self, frames: list[Frame]) -> None:
        """Feed a block of frames in order (the live agent's path); the bypass walk accounts the
        frames no stage needs, `feed` takes the rest."""
        feed = self.feed
        if not self._fast:
            for fr in frames:
                feed(fr)
            return
        self._try_bypass = False
        st = self._scan
        table = self.flows
        i = 0
        n = len(frames)
        while i < n:
            if table.fast:
                j = scan_frames(st, frames, i, table, self._next_expire)
                if j > i:
                    self._bypassed(st)
                    i = j
                    if i >= n:
                        break
            feed(frames[i])
            i += 1
        self._try_bypass = True  # a lone feed() call tries the bypass itself again

    def _bypassed(self, st: ScanState) -> None:
        n = st.packets
        self.packets += n
        self.decoded += n
        self.bytes += st.nbytes
        if st.last_ts > self.last_ts:
            self.last_ts = st.last_ts

    def _observation(self, o: Observation) -> None:
        f = o.fields
        kind = o.type
        if self.config.fingerprints:
            self._enrich(o)
        self.obs_counts[kind] += 1
        self.events.append(f)
        if self._engine is not None:
            for a in self._engine.on_observation(o):
                self._alert(a.to_event())
        if self._ioc is not None:
            for a in self._ioc.match_observation(o):
                self._alert(a.to_event())
        if self._lan is not None:
            for a in self._lan.observe(f):
                self._alert(a.to_event())
        if self._inventory is not None:
            self._inventory.observe(f, f["ts"])

    def _alert(self, ev: dict[str, Any]) -> None:
        ev["pkt"] = self.packets
        self.events.append(ev)

    def _enrich(self, o: Observation) -> None:
        kind = o.type
        f = o.fields
        if kind == "tls_client":
            key = o.msg.fingerprint_key()
            fps = self._tls_cache.get(key)
            if fps is None:
                fps = _remember(self._tls_cache, key, (*ja3(o.msg), *ja4(o.msg)), TLS_CACHE_SIZE)
            f["ja3_string"], f["ja3"], f["ja4"], f["ja4_r"] = fps
        elif kind == "tls_server":
            skey = o.msg.fingerprint_key()
            sfp = self._ja3s_cache.get(skey)
            if sfp is None:
                sfp = _remember(self._ja3s_cache, skey, ja3s(o.msg), TLS_CACHE_SIZE)
            f["ja3s_string"], f["ja3s"] = sfp
        elif kind == "ssh" and "kex" in f:
            if o.direction == 0:
                f["hassh_string"], f["hassh"] = hassh(o.msg)
            else:
                f["hassh_server_string"], f["hassh_server"] = hassh_server(o.msg)
        elif kind == "tcp_syn":
            label = None
            if self._p0f is not None:
                from signatures.p0f import tcp_signature

                flow = o.flow
                syn_mss = 0
                if flow is not None:
                    if not f["synack"]:
                        flow.ext["syn_mss"] = f["mss"] or 0
                    else:
                        # p0f matches a SYN+ACK's window against the SYN's MSS (mss*N windows).
                        syn_mss = flow.ext.get("syn_mss", 0)
                try:
                    sig = tcp_signature(o.pkt)
                except DecodeError as e:
                    self.errors[e.reason] += 1
                    sig = None
                if sig is not None:
                    # A site's hosts send the same few signatures over and over: remember the answers.
                    key = (
                        sig.ver, sig.ttl, sig.olen, sig.mss, sig.wsize, sig.scale, sig.olayout, sig.eol_pad,
                        sig.quirks, sig.pclass, sig.tot_hdr, f["synack"], syn_mss,
                    )  # fmt: skip
                    label = self._p0f_cache.get(key, "")
                    if label == "":
                        m = self._p0f.match(sig, synack=f["synack"], syn_mss=syn_mss)
                        label = _remember(self._p0f_cache, key, m.text if m is not None else None, P0F_CACHE_SIZE)
            f["p0f"] = label

    def _flows_ended(self) -> None:
        for fl in self.flows.drain():
            ev = fl.to_event()
            self.events.append(ev)
            if self._lan is not None:
                for a in self._lan.observe(ev):
                    self._alert(a.to_event())

    # -- end of a run -------------------------------------------------------------------

    def finish(self) -> None:
        """End every flow, emit device events and the closing `stats` event."""
        self.flows.flush("eof")
        self._flows_ended()
        if self._inventory is not None:
            for dev in self._inventory.devices():
                self.events.append(dev)
        self.events.append(self.stats())

    def stats(self) -> dict[str, Any]:
        errors = Counter(self.errors)
        errors.update(self.observer.errors)
        return {
            "type": "stats",
            "packets": self.packets,
            "decoded": self.decoded,
            "bytes": self.bytes,
            "errors": dict(sorted(errors.items())),
            "fragments": self.fragments,
            "tunnelled": self.tunnelled,
            "flows": self.flows.created,
            "flows_evicted": self.flows.evicted,
            "observations": dict(sorted(self.obs_counts.items())),
            "duration": round(self.last_ts - self.first_ts, 6) if self.first_ts is not None else 0.0,
            "files": self.files,
        }

    def take(self) -> list[dict[str, Any]]:
        """Hand over the events produced so far."""
        out = self.events
        self.events = []
        return out


_V = TypeVar("_V")


def _remember(cache: dict[Any, _V], key: Any, value: _V, size: int) -> _V:
    """Keep `value` in one of the pipeline's answer caches (p0f labels, TLS fingerprints) and return it.
    A full cache starts over: a site repeats a few hundred shapes, and hostile traffic cannot grow it."""
    if len(cache) >= size:
        cache.clear()
    cache[key] = value
    return value


def settle_gc() -> None:
    """Tune CPython's cyclic garbage collector for a running pipeline; call once it is built.

    The pipeline holds many long-lived containers (flows, devices, queued events) and makes cyclic
    garbage rarely (well under one cycle per 1,000 packets), so with the default gen-0 threshold of
    700 allocations the collector walks the same live objects again and again: about 10% of a
    replay's time in py-spy, more in the compiled build. Rules and databases loaded at start-up are
    moved out of its sight (`gc.freeze`); unfreezing first lets a reload free the previous ones.
    Reference counting still frees everything else at once; cycles wait a little longer.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _cidrs(value: str) -> list[str]:
    """The plain CIDRs of a Suricata address variable like `[192.0.2.0/24,2001:db8::/32]`."""
    out = []
    for part in value.strip("[] ").split(","):
        part = part.strip()
        if part and not part.startswith(("!", "$")) and part != "any":
            out.append(part)
    return out


def replay_frames(pipeline: Pipeline, frames: Iterable[Frame], batch: int = 4096) -> Iterator[list[dict[str, Any]]]:
    """Feed frames, yielding event batches as they accumulate."""
    feed = pipeline.feed
    n = 0
    for fr in frames:
        feed(fr)
        n += 1
        if n >= batch:
            n = 0
            if pipeline.events:
                yield pipeline.take()
    if pipeline.events:
        yield pipeline.take()


def replay_events(paths: Sequence[str], config: PipelineConfig | None = None) -> Iterator[dict[str, Any]]:
    """Replay capture files through a fresh pipeline; yields every event, `stats` last.

    A `CaptureFileError` propagates after the events of every frame before it were yielded;
    callers that want the closing events anyway use `Pipeline` directly (as the CLI does).
    """
    p = Pipeline(config)
    for path in paths:
        p.files += 1
        for evs in replay_frames(p, p.read(path)):
            yield from evs
    p.finish()
    yield from p.take()
