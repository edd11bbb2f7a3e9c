"""Value parsers for single rule options: content strings, pcre, numbers, flags, thresholds.

Each function takes the option's text and returns a value or raises `RuleError` naming the
keyword. The PCRE dialect is translated to Python's `re` where the two agree; anything `re`
cannot express the same way (ungreedy /G, dollar-end-only /E, \\K, \\Q..\\E, ...) is refused so a
rule is never half-applied.
"""

from __future__ import annotations

import re

from signatures.rules.errors import RuleError
from signatures.rules.model import FlagsCheck, Flowbit, NumCheck, Threshold

# Suricata's `content` size limit is the signature buffer; 64 KiB is far above any real rule.
MAX_CONTENT = 65535
# Suricata's integer keyword syntax (rules/integer-keywords): decimal or 0x hex, an optional
# kb/mb/gb multiplier, comparison operators, exclusive ranges `a-b` / `a<>b` (negatable), and
# bitmasks `&mask=value` (negatable).
_INT = r"(0[xX][0-9a-fA-F]+|\d+)\s*([kKmMgG](?:[iI]?[bB]))?"
_NUM = re.compile(rf"\s*(!=|!|<=|>=|<|>|=)?\s*{_INT}\s*(?:(<>|-)\s*{_INT})?\s*$")
_MASK = re.compile(rf"\s*(!)?&\s*{_INT}\s*=\s*{_INT}\s*$")
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}

# TCP flag letters (Suricata "flags"): 1/2 are the old names of CWR/ECE.
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80,
              "2": 0x40, "1": 0x80}  # fmt: skip

# pcre modifiers: Python flags, buffer selectors (Suricata's HTTP modifiers), and no-ops.
_PCRE_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}
PCRE_BUFFERS = {"U": "http.uri", "I": "http.uri.raw", "H": "http.header", "D": "http.header.raw",
                "M": "http.method", "V": "http.user_agent", "W": "http.host", "Z": "http.host.raw"}  # fmt: skip
_PCRE_NOOPS = {"B", "O"}  # rawbytes (our payload is raw already), match-limit override
# PCRE constructs Python's `re` lacks or reads differently (\Z means "before a final newline" in
# PCRE; \v, \h are classes there and a tab in Python): refused rather than approximated.
_PCRE_UNSUPPORTED = re.compile(r"(?<!\\)(?:\\\\)*\\[KQERXhHvVgCNZ]|\(\?(?:\||[R0-9]|[+-][0-9]|C|&|P>)|\(\*")
_PCRE_ABS_END = re.compile(r"(?<!\\)((?:\\\\)*)\\z")
_NAMED_GROUP = re.compile(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_NAMED_REF = re.compile(r"\\k<([A-Za-z_][A-Za-z0-9_]*)>")

IP_PROTOCOLS = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
                "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmp6": 58, "ipv6-icmp": 58,
                "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132}  # IANA protocol numbers  # fmt: skip


def unquote(value: str, keyword: str) -> str:
    """Strip the surrounding double quotes of an option value."""
    v = value.strip()
    if len(v) < 2 or not (v.startswith('"') and v.endswith('"')):
        raise RuleError(keyword, f"value must be quoted: {value!r}")
    return v[1:-1]


def parse_content_bytes(text: str) -> bytes:
    """Decode a content string: `|41 42|` hex runs, `\\`-escapes, the rest as UTF-8."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "|":
            end = text.find("|", i + 1)
            if end < 0:
                raise RuleError("content", f"unterminated hex run in {text!r}")
            hexpart = text[i + 1 : end].replace(" ", "")
            if len(hexpart) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", hexpart):
                raise RuleError("content", f"bad hex run |{text[i + 1 : end]}|")
            out += bytes.fromhex(hexpart)
            i = end + 1
        elif ch == "\\":
            if i + 1 >= n:
                raise RuleError("content", "dangling backslash")
            out += text[i + 1].encode()
            i += 2
        elif ch in ';"':
            raise RuleError("content", f"unescaped {ch!r} in content")
        else:
            out += ch.encode()
            i += 1
    if not out:
        raise RuleError("content", "empty content")
    if len(out) > MAX_CONTENT:
        raise RuleError("content", f"longer than {MAX_CONTENT} bytes")
    return bytes(out)


def _int(text: str, unit: str | None) -> int:
    v = int(text, 16) if text[:2].lower() == "0x" else int(text)
    return v * _UNITS[unit[0].lower()] if unit else v


def parse_num(value: str, keyword: str, lo: int = 0, hi: int = 1 << 32) -> NumCheck:
    """Parse Suricata's integer syntax: `N`, `=N`, `!N`, `!=N`, `<N`, `>N`, `<=N`, `>=N`,
    exclusive ranges `N-M` / `N<>M` and their negation `!N-M`, bitmasks `&M=V` / `!&M=V`."""
    mm = _MASK.match(value)
    if mm is not None:
        neg, mask_s, mask_u, val_s, val_u = mm.groups()
        mask, val = _int(mask_s, mask_u), _int(val_s, val_u)
        if val & ~mask:
            raise RuleError(keyword, f"value {val:#x} has bits outside mask {mask:#x}")
        return NumCheck("!&" if neg else "&", mask, val)
    m = _NUM.match(value)
    if m is None:
        raise RuleError(keyword, f"not a number or range: {value!r}")
    op, a_s, a_u, rng, b_s, b_u = m.groups()
    a = _int(a_s, a_u)
    if rng:
        if op not in (None, "!"):
            raise RuleError(keyword, f"operator {op} with a range: {value!r}")
        b = _int(b_s, b_u)
        if not (lo <= a < b <= hi) or b - a < 2:
            raise RuleError(keyword, f"empty or out-of-range range (bounds are exclusive): {value!r}")
        return NumCheck("!<>" if op == "!" else "<>", a, b)
    if not (lo <= a <= hi):
        raise RuleError(keyword, f"value {a} out of range {lo}..{hi}")
    return NumCheck({None: "=", "!=": "!"}.get(op, op or "="), a)


def parse_ip_proto(value: str) -> NumCheck:
    v = value.strip()
    op = ""
    if v[:1] in "!<>":
        op, v = v[0], v[1:].strip()
    num = IP_PROTOCOLS.get(v.lower())
    if num is None:
        if not v.isdigit():
            raise RuleError("ip_proto", f"unknown protocol {value!r}")
        num = int(v)
    if not 0 <= num <= 255:
        raise RuleError("ip_proto", f"protocol {num} out of range 0..255")
    return NumCheck(op or "=", num)


def parse_flags(value: str) -> FlagsCheck:
    text, _, ignore = value.strip().partition(",")
    text = text.strip()
    mode = "exact"
    if text[:1] in "+*!":
        mode = {"+": "plus", "*": "any", "!": "not"}[text[0]]
        text = text[1:]
    elif text[-1:] in "+*" and len(text) > 1:
        mode = {"+": "plus", "*": "any"}[text[-1]]
        text = text[:-1]
    bits = 0
    for ch in text.strip():
        if ch == "0":
            continue
        if ch not in _FLAG_BITS:
            raise RuleError("flags", f"unknown flag {ch!r} in {value!r}")
        bits |= _FLAG_BITS[ch]
    if not text.strip():
        raise RuleError("flags", "no flags given")
    mask = 0xFF
    for ch in ignore.strip():
        if ch not in _FLAG_BITS:
            raise RuleError("flags", f"unknown flag {ch!r} in ignore mask of {value!r}")
        mask &= ~_FLAG_BITS[ch]
    return FlagsCheck(bits, mode, mask)


def parse_threshold(value: str, keyword: str) -> Threshold:
    """Parse `type T, track X, count N, seconds S` (detection_filter has no type)."""
    parts: dict[str, str] = {}
    for item in value.split(","):
        k, _, v = item.strip().partition(" ")
        if not v.strip():
            raise RuleError(keyword, f"expected 'name value', got {item.strip()!r}")
        parts[k] = v.strip()
    kind = "detection_filter" if keyword == "detection_filter" else parts.pop("type", "")
    if keyword == "threshold" and kind not in ("limit", "threshold", "both"):
        raise RuleError(keyword, f"type must be limit, threshold or both, not {kind!r}")
    track = parts.pop("track", "")
    if track not in ("by_src", "by_dst", "by_rule", "by_both", "by_flow"):
        raise RuleError(keyword, f"track must be by_src, by_dst, by_rule, by_both or by_flow, not {track!r}")
    try:
        count, seconds = int(parts.pop("count")), int(parts.pop("seconds"))
    except (KeyError, ValueError):
        raise RuleError(keyword, f"count and seconds must be integers in {value!r}") from None
    if parts:
        raise RuleError(keyword, f"unknown fields {sorted(parts)}", unsupported=True)
    if count < 1 or seconds < 0:
        raise RuleError(keyword, "count must be >= 1 and seconds >= 0")
    return Threshold(kind, track, count, seconds)


def parse_flowbits(value: str) -> Flowbit | None:
    """Parse a flowbits option; None for `noalert`."""
    op, _, names = (p.strip() for p in value.partition(","))
    if op == "noalert":
        if names:
            raise RuleError("flowbits", "noalert takes no name")
        return None
    if op not in ("set", "unset", "toggle", "isset", "isnotset"):
        raise RuleError("flowbits", f"unsupported operation {op!r}", unsupported=True)
    if not names:
        raise RuleError("flowbits", f"{op} needs a name")
    if "|" in names and "&" in names:
        raise RuleError("flowbits", f"cannot mix | and & in {names!r}")
    any_of = "|" in names
    parts = tuple(n.strip() for n in re.split(r"[|&]", names))
    if any(not p or " " in p for p in parts):
        raise RuleError("flowbits", f"bad name list {names!r}")
    if any_of and op not in ("isset", "isnotset"):
        raise RuleError("flowbits", f"'|' is only allowed with isset/isnotset, not {op}")
    return Flowbit(op, parts, any_of)


def parse_pcre(value: str) -> tuple[re.Pattern[bytes], bool, bool, bool, str | None, str]:
    """Parse `"/re/flags"` (optionally `!"..."`): (regex, negated, relative, anchored, buffer, source)."""
    v = value.strip()
    negated = v.startswith("!")
    body = unquote(v[1:] if negated else v, "pcre")
    if not body.startswith("/") or body.rfind("/") == 0:
        raise RuleError("pcre", f"expected /regex/flags, got {body!r}")
    end = body.rfind("/")
    pattern, mods = body[1:end], body[end + 1 :]
    flags = 0
    relative = anchored = False
    buffer: str | None = None
    for ch in mods:
        if ch in _PCRE_FLAGS:
            flags |= _PCRE_FLAGS[ch]
        elif ch == "R":
            relative = True
        elif ch == "A":
            anchored = True
        elif ch in PCRE_BUFFERS:
            if buffer is not None and buffer != PCRE_BUFFERS[ch]:
                raise RuleError("pcre", f"two buffer modifiers in /{mods}")
            buffer = PCRE_BUFFERS[ch]
        elif ch in _PCRE_NOOPS:
            continue
        else:
            raise RuleError(f"pcre/{ch}", f"modifier {ch!r} not supported", unsupported=True)
    bad = _PCRE_UNSUPPORTED.search(pattern)
    if bad is not None:
        raise RuleError("pcre", f"construct {bad.group()!r} has no Python equivalent", unsupported=True)
    pattern = _PCRE_ABS_END.sub(r"\1\\Z", pattern)
    py = _NAMED_REF.sub(r"(?P=\1)", _NAMED_GROUP.sub(r"(?P<\1>", pattern))
    try:
        raw = py.encode("latin-1")
    except UnicodeEncodeError:
        raw = py.encode("utf-8")
    try:
        regex = re.compile(raw, flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise RuleError("pcre", f"does not compile: {exc}") from None
    return regex, negated, relative, anchored, buffer, body
