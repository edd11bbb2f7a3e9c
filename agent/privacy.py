"""Privacy profiles: what of each event may leave the site, and keyed pseudonyms for what identifies people.

Strategy
- One table, `SPECS`, names every field of every event kind the agent emits (the replay contract,
  docs/events.md) and gives it a *data class*: `mac`, `ip`, `name`, `ident`, `user_agent`, `server_name`,
  `dns_query`, `uri`, `community_id`, `text` or `keep`. `TREATMENT` says what each profile does to each
  class. The filter walks an event against its spec; a field the table does not name is dropped in the
  `pseudonymised` and `minimal` profiles (fail closed), so a field added later never leaks by default.
  docs/privacy.md is generated from these two tables (scripts/gen_privacy_doc.py), so it cannot drift.
- Pseudonyms are keyed HMAC-SHA256: the key of a period is HMAC(master key, period index), the period
  index is the event's own time divided by the period length, so pseudonyms are stable within a period
  and the same capture always gives the same pseudonyms. A pseudonym is a prefix naming its class
  (`pm:` MAC, `p4:`/`p6:` IPv4/IPv6, `pn:` name, `pi:` DHCP client id/DUID/UPnP USN, `pc:` Community ID)
  and 16 hex digits (64 bits of the HMAC). Classification (vendor, randomised-MAC flag, OS, type) is done
  on the site before this filter, so it survives untouched.
- Pure: no I/O, no clock. The filter keeps a bounded record of pseudonym -> value so the site can map
  back (`take_mappings()`; agent/reveal.py writes it to a site-local file).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

Profile = Literal["full", "pseudonymised", "minimal"]
PROFILES: Final[tuple[Profile, ...]] = ("full", "pseudonymised", "minimal")
# Per-site switches: each turns one kind of clear-text content off, in every profile.
SWITCHES: Final = ("names", "user_agents", "sni", "dns_queries")

# HMAC-SHA256 keys should be at least the hash's output length (RFC 2104 section 3; NIST SP 800-107r1 5.3.4).
MIN_KEY_BYTES: Final = 32
# 64 bits of the HMAC: the birthday bound (~4e9 values per period) is far above any site's address count.
PSEUDONYM_HEX: Final = 16
# Default key period: 30 days, the collector's retention for flow roll-ups (collector/config.py), so one
# device keeps one pseudonym across the flow data an investigation can still read.
DEFAULT_PERIOD_DAYS: Final = 30.0
# Pseudonym -> value records kept in memory for the reveal map: a site has at most ~10k devices
# (agent/inventory.py max_devices) with a few addresses and names each.
DEFAULT_MAP_ENTRIES: Final = 100_000
DEFAULT_MAP_FILE: Final = "/var/lib/veille/pseudonyms.jsonl"
_KDF_LABEL: Final = b"veille/pseudonym-period/v1/"

# ---- data classes ------------------------------------------------------------------------------------
KEEP: Final = "keep"
MAC: Final = "mac"
IP: Final = "ip"
NAME: Final = "name"
IDENT: Final = "ident"
USER_AGENT: Final = "user_agent"
SERVER_NAME: Final = "server_name"
DNS_QUERY: Final = "dns_query"
URI: Final = "uri"
COMMUNITY_ID: Final = "community_id"
TEXT: Final = "text"

CLASSES: Final[dict[str, str]] = {
    KEEP: "protocol constants, counters, times, ports, fingerprints (JA3/JA4/HASSH/p0f/DHCP option lists), "
    "knowledge (OUI vendor, OS, device type, rule messages)",
    MAC: "MAC addresses (source, destination, DHCP client, ARP/NDP, device key)",
    IP: "IP addresses (flow endpoints, device addresses, DHCP/ARP/NDP addresses, DNS A/AAAA answers)",
    NAME: "names a device announces (DHCP hostname, DHCPv6 FQDN, NBNS, mDNS/LLMNR names and records)",
    IDENT: "stable client identifiers (DHCP client id, DHCPv6 DUID, UPnP USN)",
    USER_AGENT: "User-Agents and software banners (HTTP and SSDP User-Agent, SSDP Server, SSH banner)",
    SERVER_NAME: "server names a device contacts (TLS SNI, HTTP Host)",
    DNS_QUERY: "unicast DNS query names and answers",
    URI: "request targets and URLs (HTTP URI, SSDP LOCATION)",
    COMMUNITY_ID: "Community ID flow hash (a hash of the real addresses and ports)",
    TEXT: "free text (alert messages, IOC indicators, segments): addresses inside are treated as addresses",
}
# Which switch governs a class (None: not switchable).
SWITCH_OF: Final[dict[str, str]] = {
    NAME: "names",
    USER_AGENT: "user_agents",
    SERVER_NAME: "sni",
    DNS_QUERY: "dns_queries",
}

# What each profile does with each class.
CLEAR, PSEUDONYM, TRUNCATE, DROP = "clear", "pseudonym", "truncate", "drop"
TREATMENT: Final[dict[Profile, dict[str, str]]] = {
    "full": {c: CLEAR for c in CLASSES},
    "pseudonymised": {
        KEEP: CLEAR, MAC: PSEUDONYM, IP: PSEUDONYM, NAME: PSEUDONYM, IDENT: PSEUDONYM, USER_AGENT: CLEAR,
        SERVER_NAME: CLEAR, DNS_QUERY: CLEAR, URI: DROP, COMMUNITY_ID: PSEUDONYM, TEXT: PSEUDONYM,
    },
    "minimal": {
        KEEP: CLEAR, MAC: PSEUDONYM, IP: TRUNCATE, NAME: DROP, IDENT: PSEUDONYM, USER_AGENT: CLEAR,
        SERVER_NAME: CLEAR, DNS_QUERY: DROP, URI: DROP, COMMUNITY_ID: PSEUDONYM, TEXT: TRUNCATE,
    },
}  # fmt: skip
# Prefix truncation in `minimal`: IPv4 /24 and IPv6 /48 (a site's LAN or an operator's allocation).
TRUNCATE_V4: Final = 24
TRUNCATE_V6: Final = 48
PREFIX: Final[dict[str, str]] = {MAC: "pm:", NAME: "pn:", IDENT: "pi:", COMMUNITY_ID: "pc:"}
PREFIX_V4, PREFIX_V6 = "p4:", "p6:"


class PrivacyError(ValueError):
    """A privacy setting or key that cannot be used; the message names the key or file."""


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """The `[privacy]` table of an agent config."""

    profile: Profile = "full"
    # Master key file (site-local; >= 32 bytes). Required unless profile = "full".
    key_file: str = ""
    # Where agent/reveal.py keeps pseudonym -> value records on the site.
    map_file: str = DEFAULT_MAP_FILE
    period_days: float = DEFAULT_PERIOD_DAYS
    map_max_entries: int = DEFAULT_MAP_ENTRIES
    names: bool = True
    user_agents: bool = True
    sni: bool = True
    dns_queries: bool = True

    def treatment(self, cls: str) -> str:
        """What this site does with data class `cls` (profile, then the class's switch)."""
        how = TREATMENT[self.profile][cls]
        switch = SWITCH_OF.get(cls)
        if switch is not None and not getattr(self, switch):
            return DROP
        return how


def parse_privacy(table: Mapping[str, Any], prefix: str = "privacy") -> PrivacyConfig:
    """A `PrivacyConfig` from a TOML table; raises `PrivacyError` naming the first bad key."""
    defaults = PrivacyConfig()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in PrivacyConfig.__dataclass_fields__:
            known = ", ".join(sorted(PrivacyConfig.__dataclass_fields__))
            raise PrivacyError(f"{prefix}.{key}: unknown key (known: {known})")
        want = type(getattr(defaults, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not want:
            raise PrivacyError(f"{prefix}.{key}: expected {want.__name__}, got {value!r}")
        values[key] = value
    if values.get("profile", "full") not in PROFILES:
        raise PrivacyError(f"{prefix}.profile: expected one of {', '.join(PROFILES)}, got {values['profile']!r}")
    if values.get("period_days", 1.0) <= 0 or values.get("map_max_entries", 1) <= 0:
        raise PrivacyError(f"{prefix}: period_days and map_max_entries must be positive")
    config = PrivacyConfig(**values)
    if config.profile != "full" and not config.key_file:
        raise PrivacyError(f'{prefix}.key_file: required with profile = "{config.profile}"')
    return config


# ---- pseudonyms ----------------------------------------------------------------------------------------
class PseudonymRecord(NamedTuple):
    """One pseudonym and the value it stands for (as first seen), in key period `period`."""

    pseudonym: str
    cls: str
    value: str
    period: int


def period_key(master: bytes, period: int) -> bytes:
    """The HMAC key of one period, derived from the site's master key."""
    return hmac.new(master, _KDF_LABEL + str(period).encode("ascii"), hashlib.sha256).digest()


def pseudonym_with(key: bytes, cls: str, norm: str) -> str:
    """The pseudonym of the normalised value `norm` of data class `cls` under a period key."""
    msg = cls.encode("ascii") + b"\0" + norm.encode("utf-8", "surrogatepass")
    digest = hmac.new(key, msg, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
    if cls == IP:
        return (PREFIX_V6 if ":" in norm else PREFIX_V4) + digest
    return PREFIX[cls] + digest


def pseudonym(master: bytes, period: int, cls: str, value: str) -> str:
    """The pseudonym of `value` of data class `cls` in `period` (what the filter ships)."""
    return pseudonym_with(period_key(master, period), cls, normalise(cls, value))


_PSEUDONYM_RE: Final = re.compile(rf"^(pm|p4|p6|pn|pi|pc):[0-9a-f]{{{PSEUDONYM_HEX}}}$")


def is_pseudonym(text: str) -> bool:
    """True for text shaped like one of our pseudonyms."""
    return _PSEUDONYM_RE.match(text) is not None


def normalise(cls: str, value: str) -> str:
    """The form a value is hashed in: MACs lower-case, IPs canonical, names lower-case without a final dot."""
    if cls == MAC:
        return value.lower()
    if cls == IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if cls in (NAME, IDENT):
        return value.strip().rstrip(".").lower()
    return value


def _special_mac(mac: str) -> bool:
    # Group (multicast/broadcast) bit of the first octet (IEEE 802-2014 8.2), and the all-zero placeholder.
    try:
        return bool(int(mac[:2], 16) & 1) or mac == "00:00:00:00:00:00"
    except ValueError:
        return False


def _special_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Addresses that name no host: unspecified, multicast, limited broadcast, loopback.
    return (
        addr.is_unspecified or addr.is_multicast or addr.is_loopback or (addr.version == 4 and int(addr) == 0xFFFFFFFF)
    )


_MAC_RE: Final = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}(?![0-9A-Fa-f:])")
_V4_RE: Final = re.compile(r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9])")
_V6_RE: Final = re.compile(
    r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![0-9A-Za-z:])"
)
_REVERSE: Final = (".in-addr.arpa", ".ip6.arpa")
# Classes shipped as text when switched on; addresses inside them are still replaced (a Yealink phone puts
# its MAC in its User-Agent, a Host header may be an address).
_FREE_TEXT: Final = frozenset({"user_agent", "server_name", "dns_query"})
_CACHED: Final = frozenset({"mac", "ip", "community_id", "ident"})


class _Event(NamedTuple):
    period: int
    event: Mapping[str, Any]


class PrivacyFilter:
    """Applies one site's `PrivacyConfig` to event dicts; holds the period keys and the reveal record."""

    def __init__(self, config: PrivacyConfig, master_key: bytes | None = None) -> None:
        if config.profile != "full" and (master_key is None or len(master_key) < MIN_KEY_BYTES):
            raise PrivacyError(f"privacy.key_file: a key of at least {MIN_KEY_BYTES} bytes is required "
                               f'with profile = "{config.profile}"')  # fmt: skip
        self.config = config
        self._master = master_key or b""
        self._period_seconds = config.period_days * 86400.0
        self._how = {cls: config.treatment(cls) for cls in CLASSES}
        self._keys: dict[int, bytes] = {}
        self._full = config.profile == "full"
        self._cache: OrderedDict[tuple[str, int, str], str] = OrderedDict()
        # Finished leaf values (raw text -> what is shipped) for the classes that repeat on every flow.
        self._leaves: dict[tuple[str, int, str], Any] = {}
        self._new: list[PseudonymRecord] = []
        self.dropped_events = 0

    @property
    def active(self) -> bool:
        """False when events pass unchanged (profile `full` with every switch on)."""
        return any(how != CLEAR for how in self._how.values())

    # -- events ------------------------------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event as this site ships it, or None when nothing of it may leave."""
        if not self.active:
            return event
        kind = event.get("type")
        spec = SPECS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            if kind in PASS_THROUGH:
                return event
            if self.config.profile == "full":
                return event
            self.dropped_events += 1
            return None
        ts = _event_time(event)
        ctx = _Event(int(ts // self._period_seconds) if ts > 0 else 0, event)
        out = self._map(spec, event, ctx)
        if kind == "device" and self.config.profile != "full":
            out["pseudonymised"] = True
        return out

    def take_mappings(self) -> list[PseudonymRecord]:
        """Pseudonyms made since the last call (for the site-local reveal map)."""
        out, self._new = self._new, []
        return out

    # -- walking ------------------------------------------------------------------------------------
    def _map(self, spec: Mapping[str, Any], value: Mapping[str, Any], ctx: _Event) -> dict[str, Any]:
        full = self._full
        leaf, sub_value, get = self._leaf, self._value, spec.get
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = get(key)
            if sub is None:
                if full:
                    out[key] = item
                continue
            if item is None:
                out[key] = None
                continue
            res = leaf(sub, item, ctx) if type(sub) is str else sub_value(sub, item, value, ctx)
            out[key] = None if res is _DROPPED else res
        return out

    def _value(self, spec: Any, item: Any, parent: Mapping[str, Any], ctx: _Event) -> Any:
        if item is None:
            return None
        if isinstance(spec, Dyn):
            spec = spec.resolve(parent, ctx.event)
        if isinstance(spec, str):
            return self._leaf(spec, item, ctx)
        if isinstance(spec, Item):
            if not isinstance(item, Mapping):
                return _DROPPED
            res = self._map(spec.fields, item, ctx)
            if any(res.get(k) is None and item.get(k) is not None for k in spec.required):
                return _DROPPED
            return res
        if isinstance(spec, ListOf):
            if not isinstance(item, list | tuple):
                return _DROPPED
            out = []
            for x in item:
                r = self._value(spec.item, x, parent, ctx)
                if r is not _DROPPED and (r not in out if spec.dedupe else True):
                    out.append(r)
            return out
        if isinstance(spec, dict):
            return self._map(spec, item, ctx) if isinstance(item, Mapping) else _DROPPED
        raise TypeError(f"bad spec {spec!r}")  # pragma: no cover - the table is ours

    def _leaf(self, cls: str, item: Any, ctx: _Event) -> Any:
        how = self._how[cls]
        if cls == KEEP and how == CLEAR:
            return item
        if cls in _CACHED and how != CLEAR and type(item) is str:
            key = (cls, ctx.period, item)
            hit = self._leaves.get(key)
            if hit is None:
                hit = self._leaf_uncached(cls, how, item, ctx)
                if len(self._leaves) >= self.config.map_max_entries:
                    self._leaves.clear()
                self._leaves[key] = hit
            return hit
        return self._leaf_uncached(cls, how, item, ctx)

    def _leaf_uncached(self, cls: str, how: str, item: Any, ctx: _Event) -> Any:
        if how == CLEAR:
            if cls in _FREE_TEXT and isinstance(item, str) and self._how[IP] != CLEAR:
                return self._server(item, ctx) if cls != USER_AGENT else self.scrub(item, ctx.period)
            return item
        if how == DROP:
            return _DROPPED
        if isinstance(item, list | tuple):
            return [self._leaf(cls, x, ctx) for x in item]
        if not isinstance(item, str):
            return item if cls == KEEP else _DROPPED
        if cls == IP:
            return self._ip(item, ctx)
        if cls == MAC:
            return item if _special_mac(item.lower()) else self._pseudonym(MAC, item, ctx)
        if cls == TEXT:
            return self.scrub(item, ctx.period)
        if cls == NAME:
            return self._name(item, ctx)
        return self._pseudonym(cls, item, ctx)

    # -- the classes ------------------------------------------------------------------------------
    def _pseudonym(self, cls: str, value: str, ctx: _Event | int) -> str:
        period = ctx if isinstance(ctx, int) else ctx.period
        norm = normalise(cls, value)
        key = (cls, period, norm)
        cache = self._cache
        hit = cache.get(key)
        if hit is not None:
            return hit
        pkey = self._keys.get(period)
        if pkey is None:
            pkey = self._keys[period] = period_key(self._master, period)
        out = pseudonym_with(pkey, cls, norm)
        cache[key] = out
        if len(cache) > self.config.map_max_entries:
            cache.popitem(last=False)
        self._new.append(PseudonymRecord(out, cls, value, period))
        return out

    def _ip(self, text: str, ctx: _Event | int) -> str:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return self._pseudonym(NAME, text, ctx) if text else text  # not an address: never in clear
        if _special_ip(addr):
            return text
        if self._how[IP] == TRUNCATE:
            bits = TRUNCATE_V4 if addr.version == 4 else TRUNCATE_V6
            return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))
        return self._pseudonym(IP, text, ctx)

    def _name(self, text: str, ctx: _Event) -> str:
        """Local (mDNS/LLMNR/NetBIOS) names: the labels before the first `_service` label are hashed.

        Quoted TXT record data is hashed whole.
        """
        if text.startswith('"'):
            return self._pseudonym(NAME, text, ctx)
        labels = text.split(".")
        cut = next((i for i, lab in enumerate(labels) if lab.startswith("_")), len(labels))
        if cut == 0:
            return text  # a service type (`_ipp._tcp.local`): names no one
        head, tail = ".".join(labels[:cut]), labels[cut:]
        if not tail and head.lower().endswith(".local"):
            head, tail = head[: -len(".local")], ["local"]
        return ".".join([self._pseudonym(NAME, head, ctx), *tail])

    def _server(self, text: str, ctx: _Event) -> str:
        """A server or query name shipped in clear, unless it is (or embeds) an address."""
        if text.startswith("["):  # [v6]:port (RFC 3986 3.2.2)
            host = text[1 : text.find("]")]
        else:
            host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return self._ip(host, ctx)
        low = text.lower().rstrip(".")
        if low.endswith(_REVERSE):
            return self._pseudonym(NAME, text, ctx)
        return self.scrub(text, ctx.period)

    def scrub(self, text: str, period: int) -> str:
        """Free text with every MAC and IP address inside replaced as this profile treats them.

        Greedy on purpose: a version number shaped like an IPv4 address (`108.86.0.90`) is replaced too.
        """
        if self._how[IP] == CLEAR:
            return text

        def mac(m: re.Match[str]) -> str:
            v = m.group(0).replace("-", ":").lower()
            return m.group(0) if _special_mac(v) else self._pseudonym(MAC, v, period)

        def ip(m: re.Match[str]) -> str:
            try:
                ipaddress.ip_address(m.group(0))
            except ValueError:
                return m.group(0)
            return self._ip(m.group(0), period)

        text = _MAC_RE.sub(mac, text)
        text = _V4_RE.sub(ip, text)
        return _V6_RE.sub(ip, text)


class _Dropped:
    __slots__ = ()


_DROPPED: Final = _Dropped()


def _event_time(event: Mapping[str, Any]) -> float:
    for key in ("ts", "ts_start", "last_seen"):
        v = event.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return 0.0


# ---- the field table -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Item:
    """A map inside a list; when a `required` field is dropped the whole item is left out."""

    fields: Mapping[str, Any]
    required: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Any
    dedupe: bool = False


@dataclass(frozen=True, slots=True)
class Dyn:
    """A field whose class depends on a sibling field (`doc` says how; `classes` lists the possible ones)."""

    doc: str
    classes: tuple[str, ...]
    resolve: Callable[[Mapping[str, Any], Mapping[str, Any]], str]


# Evidence sources (signatures/evidence.py) -> class of their `value`. An unknown source is left out.
EVIDENCE_VALUE: Final[dict[str, str]] = {
    "oui": KEEP, "dhcp": KEEP, "dhcp6": KEEP, "dhcp_vendor_class": KEEP, "tcp_syn": KEEP, "ttl": KEEP,
    "mdns_service": KEEP, "mdns_txt": KEEP, "ssdp_type": KEEP, "nbns_suffix": NAME,
    "dhcp_hostname": NAME, "dhcp6_fqdn": NAME, "nbns_name": NAME, "mdns_name": NAME, "llmnr_name": NAME,
    "dns_query": DNS_QUERY, "http_host": SERVER_NAME,
    "http_user_agent": USER_AGENT, "ssdp_user_agent": USER_AGENT, "ssdp_server": USER_AGENT,
    "ssh_banner": USER_AGENT, "dhcp_server": IP,
}  # fmt: skip
# Inventory links between MACs (agent/inventory.py) -> class of the shared value.
LINK_VALUE: Final[dict[str, str]] = {"dhcp_client_id": IDENT, "dhcp6_duid": IDENT, "hostname+dhcp_fingerprint": NAME}
# DNS record types whose data is an address (A, AAAA) or a name (NS, CNAME, PTR, MX, TXT, SRV); RFC 1035, 3596, 2782.
_RR_ADDR: Final = frozenset({1, 28})
_RR_NAME: Final = frozenset({2, 5, 12, 15, 16, 33})
_DROP_CLASS: Final = URI  # a dynamic field with no known class is treated as something never sent by default


def _dns_name_class(_parent: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    return DNS_QUERY if event.get("proto_name", "dns") == "dns" else NAME


def _answer_data_class(parent: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    rtype = parent.get("type")
    if rtype in _RR_ADDR:
        return IP
    if rtype in _RR_NAME:
        return _dns_name_class(parent, event)
    return _DROP_CLASS


def _ssdp_target(key: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], str]:
    # ST/NT name a service type (`urn:...`, `upnp:rootdevice`) or one device (`uuid:...`, UPnP DA 1.1 1.1.2).
    return lambda parent, _e: IDENT if str(parent.get(key) or "").lower().startswith("uuid:") else KEEP


_SSDP_ST: Final = Dyn("`ident` when it names one device (`uuid:...`), else `keep`", (KEEP, IDENT), _ssdp_target("st"))
_SSDP_NT: Final = Dyn("`ident` when it names one device (`uuid:...`), else `keep`", (KEEP, IDENT), _ssdp_target("nt"))
DNS_NAME: Final = Dyn("`dns_query` for unicast DNS, `name` for mDNS/LLMNR", (DNS_QUERY, NAME), _dns_name_class)
_ANSWER_DATA: Final = Dyn(
    "by record type: A/AAAA `ip`; NS/CNAME/PTR/MX/TXT/SRV as the query name; other types `uri` (full only)",
    (IP, DNS_QUERY, NAME, URI),
    _answer_data_class,
)
_EVIDENCE: Final = Dyn(
    "by evidence source (table below); an unknown source leaves the item out",
    tuple(sorted(set(EVIDENCE_VALUE.values()))),
    lambda parent, _e: EVIDENCE_VALUE.get(str(parent.get("source")), _DROP_CLASS),
)
_LINK: Final = Dyn(
    "by link basis: DHCP client id / DUID `ident`, hostname+DHCP fingerprint `name`",
    (IDENT, NAME),
    lambda parent, _e: LINK_VALUE.get(str(parent.get("basis")), _DROP_CLASS),
)

OBS_COMMON: Final[dict[str, Any]] = {
    "type": KEEP, "ts": KEEP, "src_mac": MAC, "dst_mac": MAC, "src": IP, "dst": IP, "sport": KEEP,
    "dport": KEEP, "proto": KEEP, "community_id": COMMUNITY_ID, "pkt": KEEP,
}  # fmt: skip
_INTS = ListOf(KEEP)
OBSERVATIONS: Final[dict[str, dict[str, Any]]] = {
    "dhcp": {
        "msg_type": KEEP, "msg_type_name": KEEP, "client_mac": MAC, "hostname": NAME, "params": _INTS,
        "vendor_class": KEEP, "client_id": IDENT, "requested_ip": IP, "server_id": IP, "max_msg_size": KEEP,
        "options": _INTS, "yiaddr": IP, "ciaddr": IP,
    },
    "dhcp6": {
        "msg_type": KEEP, "msg_type_name": KEEP, "duid": IDENT, "duid_type": KEEP, "duid_mac": MAC, "oro": _INTS,
        "vendor_class": KEEP, "enterprise": KEEP, "fqdn": NAME, "options": _INTS, "addresses": ListOf(IP),
    },
    "dns": {
        "proto_name": KEEP, "id": KEEP, "response": KEEP, "query": DNS_NAME, "qtype": KEEP,
        "queries": ListOf(DNS_NAME), "rcode": KEEP,
        "answers": ListOf(Item({"name": DNS_NAME, "type": KEEP, "ttl": KEEP, "data": _ANSWER_DATA}, ("name",))),
        "additionals": ListOf(Item({"name": DNS_NAME, "type": KEEP, "ttl": KEEP, "data": _ANSWER_DATA}, ("name",))),
    },
    "nbns": {"name": NAME, "suffix": KEEP, "response": KEEP, "opcode": KEEP},
    "ssdp": {
        "method": KEEP, "st": _SSDP_ST, "nt": _SSDP_NT, "nts": KEEP, "usn": IDENT, "server": USER_AGENT,
        "user_agent": USER_AGENT, "location": URI,
    },
    "http": {"method": KEEP, "host": SERVER_NAME, "uri": URI, "user_agent": USER_AGENT, "version": KEEP},
    "tls_client": {
        "sni": SERVER_NAME, "version": KEEP, "supported_versions": _INTS, "alpn": _INTS, "ciphers": _INTS,
        "extensions": _INTS, "groups": _INTS, "ec_point_formats": _INTS, "sig_algs": _INTS, "quic": KEEP,
        "ja3": KEEP, "ja3_string": KEEP, "ja4": KEEP, "ja4_r": KEEP,
    },
    "tls_server": {
        "version": KEEP, "selected_version": KEEP, "cipher": KEEP, "extensions": _INTS, "alpn": _INTS,
        "ja3s": KEEP, "ja3s_string": KEEP,
    },
    "ssh": {
        "banner": USER_AGENT, "role": KEEP, "kex": ListOf(KEEP), "hassh": KEEP, "hassh_string": KEEP,
        "hassh_server": KEEP, "hassh_server_string": KEEP,
    },
    "tcp_syn": {
        "ttl": KEEP, "window": KEEP, "mss": KEEP, "wscale": KEEP, "options": KEEP, "synack": KEEP, "p0f": KEEP,
    },
    "arp": {"op": KEEP, "sender_mac": MAC, "sender_ip": IP, "target_mac": MAC, "target_ip": IP},
    "ndp": {"ndp_type": KEEP, "target": IP, "lladdr": MAC},
}  # fmt: skip

FLOW: Final[dict[str, Any]] = {
    "type": KEEP, "ts_start": KEEP, "ts_end": KEEP, "proto": KEEP, "src": IP, "sport": KEEP, "dst": IP,
    "dport": KEEP, "src_mac": MAC, "dst_mac": MAC, "pkts_fwd": KEEP, "pkts_rev": KEEP, "bytes_fwd": KEEP,
    "bytes_rev": KEEP, "tcp_flags": KEEP, "end_reason": KEEP, "community_id": COMMUNITY_ID, "app": KEEP,
    "vlan": KEEP,
}  # fmt: skip

# Alert app fields: rule buffers (signatures/rules/buffers.py APP_FIELDS), IOC hits (signatures/ioc.py) and
# LAN detections (agent/detections.py).
ALERT_APP: Final[dict[str, Any]] = {
    "app": KEEP, "app_proto": KEEP, "method": KEEP, "host": SERVER_NAME, "uri": URI, "user_agent": USER_AGENT,
    "query": DNS_QUERY,
    "sni": SERVER_NAME, "ja3": KEEP, "ja4": KEEP, "ja3s": KEEP, "banner": USER_AGENT, "msg_type_name": KEEP,
    "hostname": NAME, "list": KEEP, "indicator": TEXT, "server_id": IP, "server_mac": MAC, "ip": IP, "mac": MAC,
    "previous_mac": MAC, "segment": TEXT, "hosts": KEEP, "port": KEEP,
}  # fmt: skip
ALERT: Final[dict[str, Any]] = {
    "type": KEEP, "ts": KEEP, "sid": KEEP, "gid": KEEP, "rev": KEEP, "msg": TEXT, "classtype": KEEP,
    "severity": KEEP, "src": IP, "sport": KEEP, "dst": IP, "dport": KEEP, "proto": KEEP,
    "community_id": COMMUNITY_ID, "app": ALERT_APP, "rule_file": KEEP, "src_mac": MAC, "action": KEEP,
}  # fmt: skip

_SEEN = {"first_seen": KEEP, "last_seen": KEEP}
DEVICE: Final[dict[str, Any]] = {
    "type": KEEP, "ts": KEEP, "mac": MAC, "vendor": KEEP, "randomized_mac": KEEP,
    "ips": ListOf(IP, dedupe=True),
    "names": ListOf(Item({"name": NAME, "source": KEEP, **_SEEN}, ("name",))),
    "os": {"family": KEEP, "version": KEEP, "confidence": KEEP},
    "device_type": KEEP, "confidence": KEEP,
    "evidence": ListOf(Item({"source": KEEP, "value": _EVIDENCE, "suggests": {
        "vendor": KEEP, "os_family": KEEP, "os_version": KEEP, "device_type": KEEP,
    }, "weight": KEEP, "note": KEEP, "count": KEEP, **_SEEN}, ("value",))),
    "fingerprints": {k: ListOf(KEEP) for k in
                     ("ja4", "ja3", "ja3s", "hassh", "hassh_server", "dhcp", "dhcp6", "p0f", "tcp_syn")},
    **_SEEN,
    "contradictions": ListOf(Item({"between": ListOf(KEEP), "sources": ListOf(ListOf(KEEP)),
                                   "scores": ListOf(KEEP)})),
    "linked": Item({"mac": MAC, "basis": KEEP, "value": _LINK, "ts": KEEP}, ("mac",)),
    "pseudonymised": KEEP,
}  # fmt: skip

SPECS: Final[dict[str, dict[str, Any]]] = {
    "flow": FLOW,
    "alert": ALERT,
    "device": DEVICE,
    **{kind: {**OBS_COMMON, **fields} for kind, fields in OBSERVATIONS.items()},
}
# Lines that describe the agent or the run, never the network: passed unchanged.
PASS_THROUGH: Final = frozenset({"stats", "health"})


def field_table(spec: Mapping[str, Any] | None = None, prefix: str = "") -> list[tuple[str, str]]:
    """(path, class or Dyn doc) for every field of a spec, `[]` marking list items (docs, tests)."""
    out: list[tuple[str, str]] = []
    for key, sub in (spec or {}).items():
        path = f"{prefix}{key}"
        while isinstance(sub, ListOf):
            sub, path = sub.item, path + "[]"
        if isinstance(sub, Item):
            sub = sub.fields
        if isinstance(sub, dict):
            out.extend(field_table(sub, path + "."))
        elif isinstance(sub, Dyn):
            out.append((path, "dyn:" + sub.doc))
        else:
            out.append((path, str(sub)))
    return out


def classes_of(spec_class: str) -> tuple[str, ...]:
    """The classes a `field_table` entry can take (one, or a Dyn's list)."""
    if not spec_class.startswith("dyn:"):
        return (spec_class,)
    doc = spec_class[4:]
    for dyn in (DNS_NAME, _ANSWER_DATA, _EVIDENCE, _LINK, _SSDP_ST):
        if dyn.doc == doc:
            return dyn.classes
    raise KeyError(doc)  # pragma: no cover - the table is ours
