"""The rule engine: prefilter, header and keyword checks, buffers, flowbits, thresholds, alerts.

Rules are compiled into three groups:
- stream rules (payload content on TCP-carried protocols): inspected on each direction's
  reassembled bytes when they grow (only the new bytes, plus an overlap of the longest pattern,
  are prefiltered; hits accumulate per flow direction), alerting at most once per direction;
  a packet whose bytes are past the stream depth is inspected on its own payload;
- packet rules (UDP/ICMP/IP payloads, dsize, tcp-pkt, header-only rules): every packet;
- observation rules (sticky buffers, or an app protocol with no payload keyword): each
  `Observation` of the matching type.
Rules with a fast pattern are reached through the prefilter only; the others are checked on
every packet of their protocol. Candidates run in Suricata's order: pass rules, then flowbit
setters, then the rest. State lives in `flow.ext` (flowbits, stream progress, by_flow
thresholds) and in a bounded threshold table; time is the packet's timestamp.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from capture.packet import PROTO_ICMP, PROTO_ICMP6, PROTO_NAMES, PROTO_TCP, PROTO_UDP, Packet, ip_text, mac_text
from capture.protocols.tls import TLS_ENCRYPTED, TLS_MORE, records_until_encrypted
from signatures.alert import Alert
from signatures.rules.buffers import APP_FIELDS, observation_buffer
from signatures.rules.matching import BufferProgram, fast_pattern
from signatures.rules.model import Rule
from signatures.rules.parser import BUFFER_OBSERVATION, RuleSet
from signatures.rules.prefilter import Prefilter
from signatures.rules.thresholds import ThresholdTable

PASS_KEY = "rules.pass"
BITS_KEY = "rules.flowbits"
STREAM_KEY = "rules.stream"
ONCE_KEY = "rules.once"
TLS_KEY = "rules.tls_records"  # per direction: next TLS record offset; _CIPHER once encrypted, _NOT_TLS
_CIPHER = -1
_NOT_TLS = -2
# Protocols Suricata keeps as one transaction per flow: a rule alerts at most once per flow.
_ONCE_PER_FLOW = frozenset({"tls_client", "tls_server", "ssh"})
_ECHO_TYPES = frozenset({0, 8, 13, 14, 15, 16, 17, 18, 128, 129})  # ICMP messages with id/seq (RFC 792, 4443)
_ID_SEQ = struct.Struct("!HH")
_APP_IP_PROTOS = {"http": {PROTO_TCP}, "http1": {PROTO_TCP}, "tls": {PROTO_TCP}, "ssh": {PROTO_TCP},
                  "dns": {PROTO_TCP, PROTO_UDP}, "dhcp": {PROTO_UDP}, "llmnr": {PROTO_TCP, PROTO_UDP},
                  "mdns": {PROTO_UDP}, "quic": {PROTO_UDP}}  # fmt: skip
_APP_NAMES = {"http1": "http"}
_APP_OBSERVATIONS = {"http": ("http",), "http1": ("http",), "dns": ("dns",), "tls": ("tls_client",),
                     "ssh": ("ssh",), "dhcp": ("dhcp",), "llmnr": ("dns",), "mdns": ("dns",),
                     "quic": ("tls_client",)}  # fmt: skip
# Protocols carried by TCP only: their payload rules run on the reassembled stream.
_STREAM_PROTOS = frozenset({"tcp", "tcp-stream", "http", "http1", "tls", "ssh"})
_ACTION_RANK = {"pass": 0, "drop": 1, "reject": 1, "rejectsrc": 1, "rejectdst": 1, "rejectboth": 1, "alert": 2}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine settings. `max_threshold_entries` bounds the by_src/by_dst/by_rule table."""

    max_threshold_entries: int = 65536
    streams: bool = True
    prefilter: str | None = None  # "hyperscan", "ahocorasick", or None for the best available
    # Suricata's app-layer.protocols.tls.encryption-handling: "default" stops content inspection of a
    # TLS direction once its records turn to ciphertext (ChangeCipherSpec or application data);
    # "full" inspects encrypted bytes too.
    encryption_handling: str = "default"


class _Compiled:
    """One rule, ready for the hot path."""

    __slots__ = ("app", "ip_protos", "key", "mode", "obs_types", "order", "payload", "programs",
                 "rule", "stream_only", "uses_ports")  # fmt: skip

    def __init__(self, rule: Rule, index: int) -> None:
        self.rule = rule
        self.key = (rule.gid, rule.sid)
        proto = rule.proto
        self.app: frozenset[str] | None = None
        if proto in _APP_IP_PROTOS:
            self.ip_protos: frozenset[int] | None = frozenset(_APP_IP_PROTOS[proto])
            self.app = frozenset({_APP_NAMES.get(proto, proto)})
        elif proto == "ip":
            self.ip_protos = None
        elif proto == "udp":
            self.ip_protos = frozenset({PROTO_UDP})
        elif proto == "icmp":
            self.ip_protos = frozenset({PROTO_ICMP, PROTO_ICMP6})
        else:
            self.ip_protos = frozenset({PROTO_TCP})
        self.uses_ports = not (rule.sport.is_any and rule.dport.is_any)
        self.programs = tuple((name, BufferProgram(ms)) for name, ms in rule.buffers)
        payload = [p for name, p in self.programs if name == "payload"]
        self.payload: BufferProgram | None = payload[0] if payload else None
        sticky = [name for name, _ in rule.buffers if name != "payload"]
        packet_kw = any(
            x is not None
            for x in (
                rule.flags,
                rule.dsize,
                rule.ttl,
                rule.ip_proto,
                rule.itype,
                rule.icode,
                rule.icmp_id,
                rule.icmp_seq,
            )
        )
        if sticky:
            self.mode = "obs"
            self.obs_types: tuple[str, ...] = (BUFFER_OBSERVATION[sticky[0]],)
        elif proto in _APP_OBSERVATIONS and self.payload is None and not packet_kw:
            self.mode = "obs"
            self.obs_types = _APP_OBSERVATIONS[proto]
        elif self.payload is not None and proto in _STREAM_PROTOS and rule.dsize is None:
            self.mode = "stream"
            self.obs_types = ()
        else:
            self.mode = "packet"
            self.obs_types = ()
        self.stream_only = proto == "tcp-stream"
        setter = any(fb.op in ("set", "unset", "toggle") for fb in rule.flowbits)
        checker = any(fb.op in ("isset", "isnotset") for fb in rule.flowbits)
        self.order = (_ACTION_RANK.get(rule.action, 2), 0 if setter and not checker else 1, index)


class _Tables:
    """A compiled ruleset: the prefilters and the per-protocol 'always' lists."""

    def __init__(self, ruleset: RuleSet, config: EngineConfig) -> None:
        self.rules = [_Compiled(r, i) for i, r in enumerate(ruleset.rules)]
        self.rules.sort(key=lambda c: c.order)
        stream_fp: list[tuple[bytes, bool, int]] = []
        packet_fp: list[tuple[bytes, bool, int]] = []
        packet_fp_protos: list[frozenset[int] | None] = []
        stream_always: list[int] = []
        self.packet_always: dict[int, list[int]] = {}
        self.obs_rules: dict[str, list[_Compiled]] = {}
        generic: list[int] = []
        obs_fp: dict[tuple[str, str], list[tuple[bytes, bool, int]]] = {}
        self.obs_always: dict[str, list[int]] = {}
        for i, c in enumerate(self.rules):
            if c.mode == "obs":
                key = _obs_fast_pattern(c)
                for t in c.obs_types:
                    self.obs_rules.setdefault(t, []).append(c)
                    if key is None:
                        self.obs_always.setdefault(t, []).append(i)
                    else:
                        obs_fp.setdefault((t, key[0]), []).append((key[1], key[2], i))
                continue
            fp = fast_pattern(c.rule.buffer("payload")) if c.payload is not None else None
            if c.mode == "stream":
                if fp is not None:
                    stream_fp.append((fp.pattern, fp.nocase, i))
                else:
                    stream_always.append(i)
            elif fp is not None:
                packet_fp.append((fp.pattern, fp.nocase, i))
                packet_fp_protos.append(c.ip_protos)
            elif c.ip_protos is None:
                generic.append(i)
            else:
                for p in c.ip_protos:
                    self.packet_always.setdefault(p, []).append(i)
        self.generic_always = generic
        self.stream_always = frozenset(stream_always)
        self.stream_pf = Prefilter(stream_fp, config.prefilter)
        # One packet prefilter per IP protocol (rules for any IP protocol are in each), so a TCP
        # packet is never scanned for UDP rules' patterns.
        by_proto: dict[int, list[tuple[bytes, bool, int]]] = {}
        anyproto: list[tuple[bytes, bool, int]] = []
        for entry, protos in zip(packet_fp, packet_fp_protos, strict=True):
            if protos is None:
                anyproto.append(entry)
            else:
                for p in protos:
                    by_proto.setdefault(p, []).append(entry)
        self.packet_pf: dict[int, Prefilter] = {
            p: Prefilter(entries + anyproto, config.prefilter) for p, entries in by_proto.items()
        }
        self.packet_pf_other = Prefilter(anyproto, config.prefilter) if anyproto else None
        self.has_stream = bool(stream_fp or stream_always)
        # Which directions of a TCP flow (0 to the server, 1 to the client) any payload rule can match.
        dirs = [False, False]
        for c in self.rules:
            if c.mode != "obs" and c.payload is not None and (c.ip_protos is None or PROTO_TCP in c.ip_protos):
                to_server = c.rule.flow.to_server if c.rule.flow is not None else None
                if to_server is None or to_server:
                    dirs[0] = True
                if to_server is None or not to_server:
                    dirs[1] = True
        self.tcp_payload = (dirs[0], dirs[1])
        # A header-only rule on TCP could match any segment.
        self.tcp_every_packet = bool(self.packet_always.get(PROTO_TCP, generic))
        self.obs_pf: dict[str, list[tuple[str, Prefilter]]] = {}
        for (t, buf), entries in sorted(obs_fp.items()):
            self.obs_pf.setdefault(t, []).append((buf, Prefilter(entries, config.prefilter)))
        for lst in self.packet_always.values():
            lst.extend(generic)
            lst.sort()


class _StreamState:
    __slots__ = ("alerted", "hits", "scanned")

    def __init__(self) -> None:
        self.scanned = 0
        self.hits: set[int] = set()
        self.alerted: set[int] = set()


class RuleEngine:
    """Evaluates a RuleSet on packets (`on_packet`) and observations (`on_observation`)."""

    def __init__(self, ruleset: RuleSet, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.thresholds = ThresholdTable(self.config.max_threshold_entries)
        self.generation = 0
        self._t = _Tables(ruleset, self.config)
        self.ruleset = ruleset
        if self.config.encryption_handling not in ("default", "full"):
            raise ValueError(f"encryption_handling must be default or full, not {self.config.encryption_handling!r}")
        self._skip_encrypted = self.config.encryption_handling == "default"

    @property
    def backend(self) -> str:
        """The prefilter library in use ("hyperscan" or "ahocorasick")."""
        return self._t.stream_pf.backend

    def stats(self) -> dict[str, Any]:
        """Counters for health/stats events: rules, prefilter, threshold table."""
        t = self._t
        return {
            "rules_loaded": self.ruleset.loaded,
            "rules_skipped": len(self.ruleset.skipped),
            "prefilter": t.stream_pf.backend,
            "fast_patterns": len(t.stream_pf)
            + sum(len(p) for p in t.packet_pf.values())
            + sum(len(p) for ps in t.obs_pf.values() for _, p in ps),
            "threshold_entries": len(self.thresholds.entries),
            "threshold_dropped": self.thresholds.dropped,
            "generation": self.generation,
        }

    def swap(self, ruleset: RuleSet) -> None:
        """Replace the rules; the new set is compiled before it takes over (no packet is lost)."""
        tables = _Tables(ruleset, self.config)
        self._t = tables
        self.ruleset = ruleset
        self.generation += 1

    # -- packets -------------------------------------------------------------------------------

    def on_packet(self, pkt: Packet, flow: Any, direction: int) -> list[Alert]:
        """Alerts raised by one decoded packet (after the flow table has accounted it)."""
        if not pkt.ip_version:
            return []
        t = self._t
        if flow is not None and flow.ext.get(PASS_KEY):
            return []
        proto = pkt.proto
        plen = pkt.payload_len
        cleartext_end = -1  # where ciphertext starts in this direction's stream, when in this packet
        if plen and proto == PROTO_TCP and flow is not None and flow.app == "tls" and self._skip_encrypted:
            enc = flow.ext.get(TLS_KEY)
            if enc is None:
                enc = flow.ext[TLS_KEY] = [0, 0]
            at = enc[direction]
            if at == _CIPHER:
                plen = 0  # ciphertext: nothing for content rules (encryption-handling: default)
            elif at >= 0 and flow.streams is not None and not flow.ext.get("connect"):
                buf = flow.streams[direction]
                off, outcome = records_until_encrypted(buf, at)
                if outcome == TLS_MORE:
                    enc[direction] = off
                elif outcome == TLS_ENCRYPTED:
                    enc[direction] = _CIPHER
                    if off <= len(buf) - plen:
                        plen = 0  # the whole segment is ciphertext
                    else:
                        cleartext_end = off  # the segment ends the handshake: inspect up to there
                else:
                    enc[direction] = _NOT_TLS
        always = t.packet_always.get(proto, t.generic_always)
        if not plen and not always:
            return []  # without payload a packet can neither match content nor grow a stream
        stream_ids: set[int] | None = None
        stream_buf: bytearray | None = None
        payload_as_stream = False
        if proto == PROTO_TCP and t.has_stream and plen:
            streams = flow.streams if flow is not None and self.config.streams else None
            if streams:
                buf = streams[direction]
                if cleartext_end >= 0:
                    buf = buf[:cleartext_end]
                st = self._stream_state(flow, direction)
                n = len(buf)
                if n > st.scanned:
                    pf = t.stream_pf
                    if pf.patterns:
                        # only the new bytes, plus enough old ones for a pattern straddling the boundary
                        start = st.scanned - pf.max_len + 1
                        hits = pf.scan(buf[start:] if start > 0 else buf)
                        if hits:
                            st.hits |= hits
                    st.scanned = n
                    pending = st.hits | t.stream_always if t.stream_always else st.hits
                    if pending:
                        pending = pending - st.alerted
                        if pending:
                            stream_ids, stream_buf = pending, buf
                elif plen and not flow.inspect[direction]:
                    payload_as_stream = True  # past the stream depth: inspect the packet alone
            elif plen:
                payload_as_stream = True
        payload: bytes | None = None
        pkt_ids: set[int] | None = None
        pkt_pf = t.packet_pf.get(proto, t.packet_pf_other)
        if plen and (pkt_pf is not None or payload_as_stream):
            payload = pkt.payload
            pkt_ids = pkt_pf.scan(payload) if pkt_pf is not None else set()
            if payload_as_stream:
                pkt_ids |= t.stream_pf.scan(payload)
                pkt_ids |= t.stream_always
        if not (stream_ids or pkt_ids or always):
            return []
        cands: list[tuple[int, bytes | bytearray | None, bool]] = []
        if stream_ids:
            cands.extend((i, stream_buf, True) for i in stream_ids)
        if pkt_ids:
            cands.extend((i, payload, False) for i in pkt_ids)
        cands.extend((i, payload, False) for i in always)
        cands.sort(key=lambda x: x[0])
        rules = t.rules
        out: list[Alert] = []
        for i, buf, stream in cands:
            c = rules[i]
            if c.stream_only and not stream:
                continue
            if stream and c.rule.proto == "tcp-pkt":
                continue
            if not self._packet_checks(c, pkt, flow, direction):
                continue
            if c.payload is not None and (buf is None or not c.payload.match(buf)):
                continue
            if stream:
                self._stream_state(flow, direction).alerted.add(i)
            res = self._fire(c, pkt, flow, None)
            if res is _PASS:
                return []
            if isinstance(res, Alert):
                out.append(res)
        return out

    def fast_mode(self, flow: Any, direction: int) -> int:
        """Which later packets of this TCP flow direction the engine must see.

        0: every packet (a header-only rule could match any of them); 1: those with payload;
        2: none (no payload rule applies to this direction, its TLS records are ciphertext under
        encryption-handling default, or a pass rule passed the flow). Lets the pipeline account
        the other packets without decoding them; alerts are the same either way.
        """
        t = self._t
        if flow.ext.get(PASS_KEY):
            return 2
        if t.tcp_every_packet:
            return 0
        if not t.tcp_payload[direction]:
            return 2
        enc = flow.ext.get(TLS_KEY)
        if enc is not None and enc[direction] == _CIPHER:
            return 2
        return 1

    def _stream_state(self, flow: Any, direction: int) -> _StreamState:
        slot = flow.ext.get(STREAM_KEY)
        if slot is None or slot[0] != self.generation:
            slot = flow.ext[STREAM_KEY] = [self.generation, _StreamState(), _StreamState()]
        st: _StreamState = slot[1 + direction]
        return st

    def _packet_checks(self, c: _Compiled, pkt: Packet, flow: Any, direction: int, check_app: bool = True) -> bool:
        r = c.rule
        proto = pkt.proto
        if c.ip_protos is not None and proto not in c.ip_protos:
            return False
        if check_app and c.app is not None and (flow is None or flow.app not in c.app):
            return False
        if not _header(r, pkt, c.uses_ports and (proto == PROTO_TCP or proto == PROTO_UDP)):
            return False
        fl = r.flow
        if fl is not None:
            if fl.to_server is not None and (flow is None or (direction == 0) != fl.to_server):
                return False
            if fl.established is not None and (flow is None or bool(flow.established) != fl.established):
                return False
        if r.flags is not None and (proto != PROTO_TCP or not r.flags.test(pkt.tcp_flags)):
            return False
        if r.dsize is not None and not r.dsize.test(pkt.payload_len):
            return False
        if r.ttl is not None and not r.ttl.test(pkt.ttl):
            return False
        if r.ip_proto is not None and not r.ip_proto.test(proto):
            return False
        if r.itype is not None or r.icode is not None or r.icmp_id is not None or r.icmp_seq is not None:
            if not _icmp_checks(r, pkt):
                return False
        return not r.flowbits or _flowbits_ok(r, flow)

    # -- observations ------------------------------------------------------------------------

    def on_observation(self, obs: Any) -> list[Alert]:
        """Alerts raised by one observation (HTTP request, DNS message, TLS hello, ...)."""
        t = self._t
        kind = obs.type
        if kind not in t.obs_rules:
            return []
        flow = obs.flow
        if flow is not None and flow.ext.get(PASS_KEY):
            return []
        pkt, direction, fields = obs.pkt, obs.direction, obs.fields
        if not pkt.ip_version:
            return []
        cache: dict[str, list[bytes | bytearray]] = {}

        def values(name: str) -> list[bytes | bytearray]:
            got = cache.get(name)
            if got is None:
                if name == "payload":
                    got = [flow.streams[direction]] if flow is not None and flow.streams else [pkt.payload]
                else:
                    got = list(observation_buffer(name, kind, fields, obs.msg))
                cache[name] = got
            return got

        cands = set(t.obs_always.get(kind, ()))
        for name, pf in t.obs_pf.get(kind, ()):
            for v in values(name):
                cands |= pf.scan(v)
        if not cands:
            return []
        app = _observation_app(kind, fields, flow)
        out: list[Alert] = []
        once: set[tuple[int, int]] | None = None
        if flow is not None and kind in _ONCE_PER_FLOW:
            slot = flow.ext.get(ONCE_KEY)
            if slot is None or slot[0] != self.generation:
                slot = flow.ext[ONCE_KEY] = (self.generation, set())
            once = slot[1]
        for i in sorted(cands):
            c = t.rules[i]
            if c.app is not None and app not in c.app:
                continue
            if once is not None and c.key in once:
                continue
            # the observation itself proves the protocol; the flow's label may lag behind it
            if not self._packet_checks(c, pkt, flow, direction, check_app=False):
                continue
            if not all(any(prog.match(v) for v in values(name)) for name, prog in c.programs):
                continue
            if once is not None:
                once.add(c.key)
            res = self._fire(c, pkt, flow, _app_fields(kind, fields))
            if res is _PASS:
                return []
            if isinstance(res, Alert):
                out.append(res)
        return out

    # -- actions -----------------------------------------------------------------------------

    def _fire(self, c: _Compiled, pkt: Packet, flow: Any, app: dict[str, Any] | None) -> Alert | object | None:
        r = c.rule
        if r.flowbits and flow is not None:
            bits: set[str] = flow.ext.setdefault(BITS_KEY, set())
            for fb in r.flowbits:
                if fb.op == "set":
                    bits.update(fb.names)
                elif fb.op == "unset":
                    bits.difference_update(fb.names)
                elif fb.op == "toggle":
                    for n in fb.names:
                        bits.symmetric_difference_update((n,))
        if r.action == "pass":
            if flow is not None:
                flow.ext[PASS_KEY] = True
            return _PASS
        if r.noalert:
            return None
        ext = flow.ext if flow is not None else None
        for th in (r.detection_filter, r.threshold):
            if th is not None and not self.thresholds.allow(c.key, th, pkt.ts, pkt.src, pkt.dst, ext):
                return None
        ported = pkt.proto == PROTO_TCP or pkt.proto == PROTO_UDP
        return Alert(
            ts=pkt.ts,
            sid=r.sid,
            gid=r.gid,
            rev=r.rev,
            msg=r.msg,
            classtype=r.classtype,
            severity=r.priority,
            src=ip_text(pkt.src),
            sport=pkt.sport if ported else None,
            dst=ip_text(pkt.dst),
            dport=pkt.dport if ported else None,
            proto=PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
            community_id=flow.community_id if flow is not None else None,
            app=app or ({"app_proto": flow.app} if flow is not None and flow.app else {}),
            rule_file=r.file or None,
            src_mac=mac_text(pkt.src_mac) or None,
            action=r.action,
        )


_PASS = object()


def _header(r: Rule, pkt: Packet, ports: bool) -> bool:
    s, d = pkt.src, pkt.dst
    if (
        r.src.contains(s)
        and r.dst.contains(d)
        and (not ports or (r.sport.contains(pkt.sport) and r.dport.contains(pkt.dport)))
    ):
        return True
    if r.bidirectional:
        return (
            r.src.contains(d)
            and r.dst.contains(s)
            and (not ports or (r.sport.contains(pkt.dport) and r.dport.contains(pkt.sport)))
        )
    return False


def _icmp_checks(r: Rule, pkt: Packet) -> bool:
    if pkt.proto not in (PROTO_ICMP, PROTO_ICMP6) or pkt.icmp_type < 0:
        return False
    if r.itype is not None and not r.itype.test(pkt.icmp_type):
        return False
    if r.icode is not None and not r.icode.test(pkt.icmp_code):
        return False
    if r.icmp_id is not None or r.icmp_seq is not None:
        if pkt.icmp_type not in _ECHO_TYPES or pkt.l4_off < 0 or len(pkt.data) < pkt.l4_off + 8:
            return False
        ident, seq = _ID_SEQ.unpack_from(pkt.data, pkt.l4_off + 4)
        if r.icmp_id is not None and not r.icmp_id.test(ident):
            return False
        if r.icmp_seq is not None and not r.icmp_seq.test(seq):
            return False
    return True


def _flowbits_ok(r: Rule, flow: Any) -> bool:
    checks = [fb for fb in r.flowbits if fb.op in ("isset", "isnotset")]
    if not checks:
        return True
    if flow is None:
        return False
    bits: set[str] = flow.ext.get(BITS_KEY, set())
    for fb in checks:
        present = [n in bits for n in fb.names]
        hit = any(present) if fb.any_of else all(present)
        if fb.op == "isnotset":
            hit = not any(present) if not fb.any_of else not all(present)
        if not hit:
            return False
    return True


def _obs_fast_pattern(c: _Compiled) -> tuple[str, bytes, bool] | None:
    """(buffer, pattern, nocase) the prefilter uses for an observation rule, or None."""
    for name, ms in c.rule.buffers:
        if name == "payload":
            continue
        fp = fast_pattern(ms)
        if fp is not None:
            return name, fp.pattern, fp.nocase
    return None


def _observation_app(obs_type: str, fields: dict[str, Any], flow: Any = None) -> str:
    if obs_type in ("tls_client", "tls_server"):
        quic = fields.get("quic") or (flow is not None and flow.app == "quic")
        return "quic" if quic else "tls"
    if obs_type == "dns":
        return str(fields.get("proto_name") or "dns")
    return obs_type


def _app_fields(obs_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in APP_FIELDS.get(obs_type, ()) if fields.get(k) is not None}
