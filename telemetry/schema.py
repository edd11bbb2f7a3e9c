"""The wire schema: a `Batch` envelope holding a tagged union of events, as msgspec Structs.

Strategy
- Structs encode as MessagePack *maps* (not msgspec's array_like): any MessagePack library reads a batch as
  plain dicts with named keys, and fields are matched by name, so a new version only appends fields with
  defaults and the previous version still decodes. Measured cost against array_like: ~3.3 B per flow
  summary after zstd (bench/wire_bytes.py).
- Flow summaries are the volume, so `FlowEvent` alone uses short wire names (msgspec `rename`, table in
  docs/wire.md) and leaves `community_id` out by default: it is a hash of the 5-tuple (random bytes to a
  compressor, ~23 B per flow after zstd) that the collector recomputes
  (`telemetry.community.community_id`).
- `omit_defaults=True`: unknown/empty values cost nothing on the wire; readers fill the defaults.
- Every string, list and map has a cap (`Meta(max_length=...)`) so a hostile batch cannot make the
  collector store unbounded values; decode errors name the field path.

Versions: 2 is current. Version 1 lacked `ObservationEvent`, `FlowEvent.app`/`vlan`,
`DeviceEvent.fingerprints`/`pseudonymised`, and the health counters `shed`, `uplink_bytes`,
`events_by_type`, `auth_refused`, `events_invalid`, `alarms`; all of those have defaults, so a v1 batch
decodes with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION: Final = 2
SUPPORTED_VERSIONS: Final = frozenset({1, 2})

# Caps. A MAC in text is 17 chars, an IPv6 address at most 45 (RFC 4291 text with embedded IPv4); a
# pseudonym (HMAC, docs/wire.md) is at most 64. DNS names are at most 253 chars (RFC 1035 2.3.4).
# Free text (alert messages, user agents, banners) is capped at 1 KiB, lists and maps at 256 entries:
# far above any real value, small enough that one event stays under a few hundred KiB.
MAX_ADDR: Final = 64
MAX_NAME: Final = 253
MAX_TEXT: Final = 1024
MAX_ITEMS: Final = 256
# One batch: the shipper closes batches at 5,000 events by default (telemetry/config.py); the decoder
# refuses anything past 4x that, collectors may set a smaller `max_events`.
MAX_EVENTS: Final = 20_000

Addr = Annotated[str, Meta(max_length=MAX_ADDR)]
Name = Annotated[str, Meta(max_length=MAX_NAME)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Label = Annotated[str, Meta(max_length=64)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Count = Annotated[int, Meta(ge=0)]
Time = Annotated[float, Meta(ge=0.0)]
Unit = Annotated[float, Meta(ge=0.0, le=1.0)]
# `tcp`/`udp`/`icmp`/`icmp6`, or the IP protocol number when it has no name (docs/events.md).
Proto = Label | Annotated[int, Meta(ge=0, le=255)]
# Open-ended values (observation fields, alert app fields): scalars, or a list/map of anything.
Value = str | int | float | bool | None | list[Any] | dict[str, Any]
Fields = Annotated[dict[Label, Value], Meta(max_length=MAX_ITEMS)]
Counters = Annotated[dict[Label, Count], Meta(max_length=MAX_ITEMS)]


class _Event(Struct, frozen=True, omit_defaults=True, tag_field="type"):
    """Base of every event: frozen, map-encoded, tagged by `type`."""


class FlowEvent(
    _Event,
    frozen=True,
    tag="flow",
    rename={
        "ts_start": "t0",
        "ts_end": "t1",
        "proto": "p",
        "src": "s",
        "sport": "sp",
        "dst": "d",
        "dport": "dp",
        "pkts_fwd": "pf",
        "pkts_rev": "pr",
        "bytes_fwd": "bf",
        "bytes_rev": "br",
        "tcp_flags": "fl",
        "end_reason": "er",
        "community_id": "ci",
        "app": "a",
        "src_mac": "sm",
        "dst_mac": "dm",
        "vlan": "v",
    },
):
    """A flow summary (docs/events.md `flow`); `src` is the side that sent the first packet."""

    ts_start: Time
    ts_end: Time
    proto: Proto
    src: Addr
    sport: Port
    dst: Addr
    dport: Port
    pkts_fwd: Count = 0
    pkts_rev: Count = 0
    bytes_fwd: Count = 0
    bytes_rev: Count = 0
    tcp_flags: Label = ""
    end_reason: Label = ""
    community_id: Label | None = None
    src_mac: Addr | None = None
    dst_mac: Addr | None = None
    # v2
    app: Label | None = None
    vlan: Annotated[int, Meta(ge=0, le=4095)] | None = None


class DeviceName(Struct, frozen=True, omit_defaults=True):
    """A name a device goes by and where it was seen (`dhcp`, `mdns`, `nbns`, ...)."""

    name: Name
    source: Label = ""


class OsGuess(Struct, frozen=True, omit_defaults=True):
    family: Label
    version: Label | None = None


class Evidence(Struct, frozen=True, omit_defaults=True):
    """One observation matched against knowledge: what it suggests (`{"vendor": "Apple"}`) and how much."""

    source: Label
    value: Text
    suggests: Annotated[dict[Label, Text], Meta(max_length=16)] = {}
    weight: float = 0.0
    first_seen: Time = 0.0
    last_seen: Time = 0.0


class DeviceEvent(_Event, frozen=True, tag="device"):
    """The current state of one inventory entry, keyed by MAC (or its pseudonym)."""

    mac: Addr
    first_seen: Time
    last_seen: Time
    vendor: Text | None = None
    randomized_mac: bool = False
    ips: Annotated[list[Addr], Meta(max_length=MAX_ITEMS)] = []
    names: Annotated[list[DeviceName], Meta(max_length=MAX_ITEMS)] = []
    os: OsGuess | None = None
    device_type: Label | None = None
    confidence: Unit = 0.0
    evidence: Annotated[list[Evidence], Meta(max_length=MAX_ITEMS)] = []
    # v2
    fingerprints: Annotated[dict[Label, Text | list[Text]], Meta(max_length=MAX_ITEMS)] = {}
    pseudonymised: bool = False


class AlertEvent(_Event, frozen=True, tag="alert"):
    """A rule or detection hit with the fields SOC tools expect (Suricata EVE `alert` names)."""

    ts: Time
    sid: Count
    msg: Text
    gid: Count = 1
    rev: Count = 1
    classtype: Label = ""
    severity: Annotated[int, Meta(ge=1, le=255)] = 3
    src: Addr | None = None
    sport: Port | None = None
    dst: Addr | None = None
    dport: Port | None = None
    proto: Proto | None = None
    community_id: Label | None = None
    app_proto: Label | None = None
    app_fields: Fields = {}
    rule_file: Text | None = None
    src_mac: Addr | None = None


class HealthEvent(_Event, frozen=True, tag="health"):
    """Agent health every interval; counters are totals since the agent started."""

    ts: Time
    packets: Count = 0
    drops_kernel: Count = 0
    drops_pipeline: Count = 0
    flows_live: Count = 0
    devices: Count = 0
    batches_sent: Count = 0
    batches_acked: Count = 0
    batches_spooled: Count = 0
    batches_rejected: Count = 0
    spool_bytes: Count = 0
    cpu: Annotated[float, Meta(ge=0.0)] = 0.0
    rss: Count = 0
    uptime: Annotated[float, Meta(ge=0.0)] = 0.0
    rules_version: Label | None = None
    fingerprints_version: Label | None = None
    agent_version: Label | None = None
    # v2
    events_by_type: Counters = {}
    shed: Counters = {}
    uplink_bytes: Count = 0
    auth_refused: Counters = {}
    events_invalid: Count = 0
    alarms: Annotated[list[Text], Meta(max_length=64)] = []
    privacy_profile: Label | None = None  # the profile the agent applies: full, pseudonymised, minimal


class ObservationEvent(_Event, frozen=True, tag="obs"):
    """A raw observation a site chooses to ship (docs/events.md observation types); v2 only."""

    ts: Time
    kind: Label
    src_mac: Addr | None = None
    src: Addr | None = None
    dst: Addr | None = None
    sport: Port | None = None
    dport: Port | None = None
    community_id: Label | None = None
    fields: Fields = {}


Event = FlowEvent | DeviceEvent | AlertEvent | HealthEvent | ObservationEvent
EVENT_TYPES: Final[dict[str, type[Event]]] = {
    "flow": FlowEvent,
    "device": DeviceEvent,
    "alert": AlertEvent,
    "health": HealthEvent,
    "obs": ObservationEvent,
}


class Batch(Struct, frozen=True):
    """What crosses the wire: one POST body. `seq` is per agent and never reused."""

    schema: int
    agent_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    site: Annotated[str, Meta(min_length=1, max_length=64)]
    seq: Count
    created: Time
    events: Annotated[list[Event], Meta(max_length=MAX_EVENTS)] = []


def event_type(event: Event) -> str:
    """The `type` tag of an event (`flow`, `device`, `alert`, `health`, `obs`)."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


# Fields every replay observation line carries (docs/events.md) that ObservationEvent holds itself.
_OBS_COMMON: Final = ("ts", "src_mac", "src", "dst", "sport", "dport", "community_id")


def to_event(value: Event | dict[str, Any]) -> Event:
    """Convert a replay JSON line (docs/events.md names, a `type` key) to its event Struct.

    `flow`, `device`, `alert`, `health`, `obs` map to their Struct by attribute name (a flow's
    `community_id` is dropped, see the module docstring); any other type is an observation kind (`dhcp`,
    `tls_client`, ...) and becomes an `ObservationEvent` whose `fields` hold the rest of the line.
    Raises `msgspec.ValidationError` naming the field when the line does not fit.
    """
    if isinstance(value, Struct):
        return value
    kind = value.get("type")
    if not isinstance(kind, str):
        raise msgspec.ValidationError("Expected `str` - at `$.type`")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        obs: dict[str, Any] = {k: value.get(k) for k in _OBS_COMMON if value.get(k) is not None}
        obs["kind"] = kind
        obs["fields"] = {k: v for k, v in value.items() if k != "type" and k not in _OBS_COMMON}
        return msgspec.convert(obs, ObservationEvent)
    args = {k: v for k, v in value.items() if k in cls.__struct_fields__ and v is not None}
    if cls is FlowEvent:
        args.pop("community_id", None)  # recomputed by the collector (module docstring)
    try:
        built = cls(**args)
    except TypeError as exc:
        raise msgspec.ValidationError(f"{exc} - at `$`") from None
    # Constructors do not check constraints: round-trip through builtins to validate.
    return msgspec.convert(msgspec.to_builtins(built), cls)
