"""Suricata rule text to `Rule` values, and rule files to a `RuleSet`.

Strategy: split the header on whitespace and the option block on unescaped `;` outside quotes,
then walk the options in order with a small builder that tracks the current buffer (sticky
buffers and legacy content modifiers) and the content being modified. Every keyword outside
the supported subset raises `RuleError(unsupported=True)`; the loader turns any `RuleError` into
a `SkippedRule` naming file, line, sid and keyword, so one bad rule never stops the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signatures.rules.classification import Classification, default_classification
from signatures.rules.errors import RuleError
from signatures.rules.model import Bsize, Content, Flowbit, FlowCheck, Matcher, NumCheck, Pcre, Rule
from signatures.rules.options import (
    parse_content_bytes,
    parse_flags,
    parse_flowbits,
    parse_ip_proto,
    parse_num,
    parse_pcre,
    parse_threshold,
    unquote,
)
from signatures.rules.variables import parse_addresses, parse_ports

log = logging.getLogger(__name__)

# Suricata's own cap on a rule line is 8 KiB per physical line; continued rules join lines, so
# we allow 64 KiB for the whole rule text and refuse beyond.
MAX_RULE_TEXT = 64 * 1024
ACTIONS = frozenset({"alert", "pass", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth"})
PACKET_PROTOS = frozenset({"ip", "tcp", "udp", "icmp", "tcp-pkt", "tcp-stream"})
APP_PROTOS = frozenset({"http", "http1", "dns", "tls", "ssh", "dhcp", "llmnr", "mdns", "quic"})

STICKY = {"http.uri": "http.uri", "http.uri.raw": "http.uri.raw", "http.method": "http.method",
          "http.host": "http.host", "http.host.raw": "http.host.raw",
          "http.user_agent": "http.user_agent", "http.header": "http.header",
          "http.header.raw": "http.header.raw", "dns.query": "dns.query", "dns_query": "dns.query",
          "tls.sni": "tls.sni", "tls_sni": "tls.sni", "ja3.hash": "ja3.hash", "ja3_hash": "ja3.hash",
          "ja3s.hash": "ja3s.hash", "ja3s_hash": "ja3s.hash", "ja4.hash": "ja4.hash",
          "ja3.string": "ja3.string", "ja3s.string": "ja3s.string",
          "pkt_data": "payload"}  # fmt: skip
LEGACY_MODIFIERS = {"http_uri": "http.uri", "http_raw_uri": "http.uri.raw", "http_method": "http.method",
                    "http_host": "http.host", "http_raw_host": "http.host.raw",
                    "http_user_agent": "http.user_agent", "http_header": "http.header",
                    "http_raw_header": "http.header.raw"}  # fmt: skip
# Buffer -> the observation type that carries it.
BUFFER_OBSERVATION = {"http.uri": "http", "http.uri.raw": "http", "http.method": "http", "http.host": "http",
                      "http.host.raw": "http", "http.user_agent": "http", "http.header": "http",
                      "http.header.raw": "http", "dns.query": "dns", "tls.sni": "tls_client",
                      "ja3.hash": "tls_client", "ja4.hash": "tls_client", "ja3s.hash": "tls_server",
                      "ja3.string": "tls_client", "ja3s.string": "tls_server"}  # fmt: skip
# Options that only annotate an alert (Suricata: `target` marks which side is the target in logs).
_IGNORED = frozenset({"reference", "metadata", "target"})
_CONTENT_INT_MODS = ("offset", "depth", "distance", "within")


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A rule not loaded, and why: `keyword` is the option (or header part) at fault."""

    file: str
    line: int
    sid: int | None
    keyword: str
    reason: str

    def __str__(self) -> str:
        sid = self.sid if self.sid is not None else "?"
        return f"{self.file}:{self.line}: sid {sid}: {self.keyword}: {self.reason}"


@dataclass(slots=True)
class RuleSet:
    """Loaded rules plus the ones skipped with their reason."""

    rules: list[Rule] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return len(self.rules)


def split_options(body: str) -> list[tuple[str, str | None]]:
    """Split `k:v; k; k:"a\\;b";` into (keyword, value-or-None), honouring quotes and escapes."""
    out: list[tuple[str, str | None]] = []
    cur: list[str] = []
    in_quote = False
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n:
            cur.append(body[i : i + 2])
            i += 2
            continue
        if ch == '"':
            in_quote = not in_quote
        if ch == ";" and not in_quote:
            _add_option(out, "".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if in_quote:
        raise RuleError("options", "unterminated quoted string")
    if "".join(cur).strip():
        raise RuleError("options", f"last option not terminated by ';': {''.join(cur).strip()[:40]!r}")
    return out


def _add_option(out: list[tuple[str, str | None]], text: str) -> None:
    text = text.strip()
    if not text:
        return
    name, sep, value = text.partition(":")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise RuleError("options", f"bad option name {name[:40]!r}")
    out.append((name, value.strip() if sep else None))


class _Builder:
    """Collects options in order; owns the 'current buffer' and 'current content' state."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.buffers: dict[str, list[Matcher]] = {}
        self.order: list[str] = []
        self.cur_buffer = "payload"
        self.content: dict[str, Any] | None = None
        self.content_buffer = "payload"
        self.flowbits: list[Flowbit] = []
        self.noalert = False

    def _append(self, buffer: str, m: Matcher) -> None:
        if buffer not in self.buffers:
            self.buffers[buffer] = []
            self.order.append(buffer)
        self.buffers[buffer].append(m)

    def flush(self) -> None:
        c = self.content
        if c is None:
            return
        self.content = None
        pat: bytes = c.pop("pattern")
        if (c.get("offset") is not None or c.get("depth") is not None) and (
            c.get("distance") is not None or c.get("within") is not None
        ):
            raise RuleError("content", "offset/depth cannot be mixed with distance/within on one content")
        if c.get("startswith") and (c.get("offset") is not None or c.get("depth") is not None or
                                    c.get("distance") is not None or c.get("within") is not None):  # fmt: skip
            raise RuleError("startswith", "cannot be combined with offset, depth, distance or within")
        if c.get("within") is not None and c["within"] < len(pat):
            raise RuleError("within", f"within {c['within']} is shorter than the content ({len(pat)} bytes)")
        if c.get("depth") is not None and c["depth"] < len(pat):
            raise RuleError("depth", f"depth {c['depth']} is shorter than the content ({len(pat)} bytes)")
        nocase = bool(c.get("nocase"))
        if self.content_buffer == "http.host" and not nocase and pat != pat.lower():
            # the buffer is lower-cased, so such a content could never match (Suricata refuses it too)
            raise RuleError("http.host", "content must be lower case (the host buffer is normalised)")
        self._append(self.content_buffer, Content(pattern=pat, needle=pat.lower() if nocase else pat, **c))

    def option(self, name: str, value: str | None) -> None:
        handler = _HANDLERS.get(name)
        if name in STICKY:
            self.flush()
            self.cur_buffer = STICKY[name]
        elif name in LEGACY_MODIFIERS:
            if self.content is None:
                raise RuleError(name, "content modifier without a preceding content")
            self.content_buffer = LEGACY_MODIFIERS[name]
        elif name in ("nocase", "fast_pattern", "startswith", "endswith"):
            if self.content is None:
                raise RuleError(name, "content modifier without a preceding content")
            if (
                name == "fast_pattern"
                and value not in (None, "only")
                and not re.fullmatch(r"\s*\d+\s*,\s*\d+\s*", value)
            ):
                raise RuleError("fast_pattern", f"fast_pattern:{value} not understood")
            # fast_pattern:offset,length only narrows what the prefilter looks for; prefiltering on
            # the whole content is stricter and gives the same matches.
            self.content[name] = True
        elif name in _CONTENT_INT_MODS:
            if self.content is None:
                raise RuleError(name, "content modifier without a preceding content")
            if self.content.get(name) is not None:
                raise RuleError(name, "given twice for one content")
            if value is None or not re.fullmatch(r"\s*-?\d+\s*", value):
                raise RuleError(name, f"needs an integer, got {value!r}", unsupported=value is not None)
            num = int(value)
            if name != "distance" and num < 0:
                raise RuleError(name, f"must not be negative: {num}")
            self.content[name] = num
        elif name in ("content", "uricontent"):
            self.flush()
            if value is None:
                raise RuleError(name, "needs a value")
            negated = value.startswith("!")
            self.content = {"pattern": parse_content_bytes(unquote(value[1:] if negated else value, name)),
                            "negated": negated}  # fmt: skip
            # uricontent is the old spelling of `content; http_uri`
            self.content_buffer = "http.uri" if name == "uricontent" else self.cur_buffer
        elif name == "pcre":
            self.flush()
            if value is None:
                raise RuleError("pcre", "needs a value")
            regex, neg, rel, anch, buf, src = parse_pcre(value)
            self._append(buf or self.cur_buffer, Pcre(src, regex, neg, rel, anch))
        elif name == "bsize":
            self.flush()
            if value is None:
                raise RuleError("bsize", "needs a value")
            if self.cur_buffer == "payload":
                raise RuleError("bsize", "needs a sticky buffer")
            self._append(self.cur_buffer, Bsize(parse_num(value, "bsize")))
        elif name == "flowbits":
            if value is None:
                raise RuleError("flowbits", "needs a value")
            fb = parse_flowbits(value)
            if fb is None:
                self.noalert = True
            else:
                self.flowbits.append(fb)
        elif handler is not None:
            if name in self.fields:
                raise RuleError(name, "given twice")
            self.fields[name] = handler(value, name)
        elif name in _IGNORED:
            if name == "target" and (value or "").strip() not in ("src_ip", "dest_ip"):
                raise RuleError("target", f"must be src_ip or dest_ip, not {value!r}")
            self.fields.setdefault("references" if name == "reference" else name, []).append(value or "")
        else:
            raise RuleError(name, "keyword not supported by Veille", unsupported=True)


def _need(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise RuleError(name, "needs a value")
    return value.strip()


def _int(value: str | None, name: str) -> int:
    v = _need(value, name)
    if not v.isdigit():
        raise RuleError(name, f"needs a non-negative integer, got {v!r}")
    return int(v)


def _flow(value: str | None, name: str) -> FlowCheck:
    to_server: bool | None = None
    established: bool | None = None
    stateless = False
    for part in _need(value, name).split(","):
        p = part.strip()
        if p in ("to_server", "from_client", "to_client", "from_server"):
            d = p in ("to_server", "from_client")
            if to_server is not None and to_server != d:
                raise RuleError("flow", "both directions given")
            to_server = d
        elif p in ("established", "not_established"):
            established = p == "established"
        elif p == "stateless":
            stateless = True
        else:
            raise RuleError(f"flow:{p}", "flow option not supported", unsupported=True)
    return FlowCheck(to_server, established, stateless)


def _num(lo: int, hi: int) -> Any:
    return lambda value, name: parse_num(_need(value, name), name, lo, hi)


_HANDLERS: dict[str, Any] = {
    "msg": lambda value, name: unquote(_need(value, name), name).replace('\\"', '"').replace("\\;", ";"),
    "sid": _int,
    "rev": _int,
    "gid": _int,
    "classtype": lambda value, name: _need(value, name),
    "priority": _int,
    "flow": _flow,
    "flags": lambda value, name: parse_flags(_need(value, name)),
    "dsize": _num(0, 65535),  # IP payloads are at most 65535 bytes (RFC 791 total length)
    "ttl": _num(0, 255),  # 8-bit field (RFC 791)
    "itype": _num(0, 255),  # 8-bit ICMP type/code (RFC 792, RFC 4443)
    "icode": _num(0, 255),
    "icmp_id": _num(0, 65535),  # 16-bit echo identifier / sequence (RFC 792)
    "icmp_seq": _num(0, 65535),
    "ip_proto": lambda value, name: parse_ip_proto(_need(value, name)),
    "threshold": lambda value, name: parse_threshold(_need(value, name), name),
    "detection_filter": lambda value, name: parse_threshold(_need(value, name), name),
}

_HEADER = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+|\[[^\]]*\])\s+(\S+|\[[^\]]*\])\s+(->|<>)\s+(\S+|\[[^\]]*\])"
                     r"\s+(\S+|\[[^\]]*\])\s*\((.*)\)\s*$", re.S)  # fmt: skip
_SID = re.compile(r"[;(\s]sid\s*:\s*(\d+)")


def guess_sid(text: str) -> int | None:
    """The sid of a rule that may not parse, for error messages."""
    m = _SID.search(text)
    return int(m.group(1)) if m else None


def parse_rule(
    text: str,
    variables: Mapping[str, str],
    *,
    file: str = "",
    line: int = 0,
    classification: Classification | None = None,
    cache: dict[tuple[str, str], Any] | None = None,
) -> Rule:
    """Parse one rule; raises `RuleError` naming the keyword at fault.

    `cache` (one per load) memoises header address/port expressions, which repeat across a file.
    """
    if len(text) > MAX_RULE_TEXT:
        raise RuleError("rule", f"longer than {MAX_RULE_TEXT} characters")
    m = _HEADER.match(text)
    if m is None:
        raise RuleError("header", "expected 'action proto src sport -> dst dport (options)'")
    action, proto, src, sport, direction, dst, dport, body = m.groups()
    if action not in ACTIONS:
        raise RuleError(f"action:{action}", "action not supported", unsupported=True)
    proto = proto.lower()
    if proto not in PACKET_PROTOS and proto not in APP_PROTOS:
        raise RuleError(f"protocol:{proto}", "protocol not supported by Veille", unsupported=True)
    b = _Builder()
    for name, value in split_options(body):
        b.option(name, value)
    b.flush()
    f = b.fields
    if "sid" not in f:
        raise RuleError("sid", "missing")
    cls = classification or default_classification()
    classtype = f.get("classtype")
    priority = f.get("priority")
    if classtype is not None:
        entry = cls.get(classtype)
        if entry is None:
            raise RuleError("classtype", f"unknown classtype {classtype!r}")
        if priority is None:
            priority = entry.priority
    buffers = tuple((name, tuple(b.buffers[name])) for name in b.order)
    obs_types = {BUFFER_OBSERVATION[n] for n, _ in buffers if n in BUFFER_OBSERVATION}
    if len(obs_types) > 1:
        raise RuleError("buffers", f"mixes buffers of different messages: {sorted(obs_types)}", unsupported=True)
    memo = cache if cache is not None else {}

    def header(kind: str, text: str) -> Any:
        key = (kind, text)
        got = memo.get(key)
        if got is None:
            got = memo[key] = parse_addresses(text, variables) if kind == "a" else parse_ports(text, variables)
        return got

    rule = Rule(
        action=action,
        proto=proto,
        src=header("a", src),
        sport=header("p", sport),
        dst=header("a", dst),
        dport=header("p", dport),
        bidirectional=direction == "<>",
        sid=f["sid"],
        gid=f.get("gid", 1),
        rev=f.get("rev", 0),
        msg=f.get("msg", ""),
        classtype=classtype,
        priority=priority if priority is not None else 3,
        references=tuple(f.get("references", ())),
        metadata=tuple(f.get("metadata", ())),
        buffers=buffers,
        flow=f.get("flow"),
        flags=f.get("flags"),
        dsize=f.get("dsize"),
        ttl=f.get("ttl"),
        ip_proto=f.get("ip_proto"),
        itype=f.get("itype"),
        icode=f.get("icode"),
        icmp_id=f.get("icmp_id"),
        icmp_seq=f.get("icmp_seq"),
        threshold=f.get("threshold"),
        detection_filter=f.get("detection_filter"),
        flowbits=tuple(b.flowbits),
        noalert=b.noalert,
        file=file,
        line=line,
        text=text,
    )
    _check_proto_keywords(rule)
    return rule


def _check_proto_keywords(rule: Rule) -> None:
    icmp_kw = rule.itype or rule.icode or rule.icmp_id or rule.icmp_seq
    if icmp_kw is not None and rule.proto not in ("icmp", "ip"):
        raise RuleError("itype", f"ICMP keywords on a {rule.proto} rule never match")
    if rule.flags is not None and rule.proto in ("udp", "icmp", "dns", "dhcp"):
        raise RuleError("flags", f"TCP flags on a {rule.proto} rule never match")


def iter_rule_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, rule text) for each rule, joining `\\`-continued lines, skipping comments."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    # Lines end at "\n" only (as Suricata and editors count them), not at every Unicode separator.
    for no, raw in enumerate(text.split("\n"), 1):
        stripped = raw.strip()
        if not pending:
            if not stripped or stripped.startswith("#"):
                continue
            start = no
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        out.append((start, " ".join(pending)))
        pending = []
    if pending:
        out.append((start, " ".join(pending)))
    return out


def load_text(
    text: str,
    variables: Mapping[str, str],
    file: str = "<text>",
    classification: Classification | None = None,
    into: RuleSet | None = None,
) -> RuleSet:
    """Parse the rules of one file's text into `into` (or a new RuleSet)."""
    rs = into if into is not None else RuleSet()
    seen = {(r.gid, r.sid) for r in rs.rules}
    cache: dict[tuple[str, str], Any] = {}
    for line, rule_text in iter_rule_lines(text):
        try:
            rule = parse_rule(rule_text, variables, file=file, line=line, classification=classification, cache=cache)
        except RuleError as exc:
            rs.skipped.append(SkippedRule(file, line, guess_sid(rule_text), exc.keyword, exc.reason))
            continue
        if (rule.gid, rule.sid) in seen:
            rs.skipped.append(SkippedRule(file, line, rule.sid, "sid", f"duplicate sid {rule.sid} (gid {rule.gid})"))
            continue
        seen.add((rule.gid, rule.sid))
        rs.rules.append(rule)
    return rs


# Defaults of Suricata's suricata.yaml `vars` for the names ET Open rules use; a site overrides
# them in its config. EXTERNAL_NET defaults to "not HOME_NET" once HOME_NET is set.
DEFAULT_VARIABLES = {
    "HOME_NET": "any", "HTTP_SERVERS": "$HOME_NET", "SMTP_SERVERS": "$HOME_NET",
    "SQL_SERVERS": "$HOME_NET", "DNS_SERVERS": "$HOME_NET", "TELNET_SERVERS": "$HOME_NET",
    "AIM_SERVERS": "$EXTERNAL_NET", "DC_SERVERS": "$HOME_NET", "DNP3_SERVER": "$HOME_NET",
    "DNP3_CLIENT": "$HOME_NET", "MODBUS_CLIENT": "$HOME_NET", "MODBUS_SERVER": "$HOME_NET",
    "ENIP_CLIENT": "$HOME_NET", "ENIP_SERVER": "$HOME_NET",
    "HTTP_PORTS": "80", "SHELLCODE_PORTS": "!80", "ORACLE_PORTS": "1521", "SSH_PORTS": "22",
    "DNP3_PORTS": "20000", "MODBUS_PORTS": "502", "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
    "FTP_PORTS": "21", "GENEVE_PORTS": "6081", "VXLAN_PORTS": "4789", "TEREDO_PORTS": "3544",
}  # fmt: skip


def rule_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """Site variables over the defaults (names with or without the leading `$`)."""
    given: dict[str, str] = {}
    for k, v in variables.items():
        v = v.strip()
        # "192.0.2.0/24,2001:db8::/32" from a command line or config is a list without brackets
        given[k.lstrip("$")] = f"[{v}]" if "," in v and not v.startswith("[") else v
    merged = {**DEFAULT_VARIABLES, **given}
    if "EXTERNAL_NET" not in given:
        merged["EXTERNAL_NET"] = "!$HOME_NET" if merged["HOME_NET"].strip() != "any" else "any"
    return merged


def load_rules(
    paths: Sequence[str | Path],
    variables: Mapping[str, str],
    classification: Classification | None = None,
) -> RuleSet:
    """Load rule files. Unreadable files raise `RuleFileError`; bad rules are skipped, never fatal."""
    rs = RuleSet()
    merged = rule_variables(variables)
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise RuleFileError(str(p), exc.strerror or str(exc)) from None
        before = len(rs.skipped)
        load_text(text, merged, file=str(p), classification=classification, into=rs)
        for s in rs.skipped[before:]:
            log.warning("rule skipped: %s", s)
    return rs


class RuleFileError(RuleError):
    """A rule file that cannot be read."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("file", f"{path}: {reason}")
        self.path = path


__all__ = [
    "APP_PROTOS",
    "BUFFER_OBSERVATION",
    "NumCheck",
    "RuleFileError",
    "RuleSet",
    "SkippedRule",
    "load_rules",
    "load_text",
    "parse_rule",
]
