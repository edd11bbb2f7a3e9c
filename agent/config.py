"""The agent's TOML configuration: typed sections, every problem reported with its key path.

Each TOML table maps onto a frozen dataclass; one generic walker reads a table against
the dataclass's type hints (str, int, float, bool, list[str], Literal choices, nested
tables), records a `ConfigProblem` for every wrong type or unknown key and keeps the
default in its place, so a single pass finds all problems. Section checks (ring geometry
from capture.live, CIDRs, files that must exist) then add theirs. `[pipeline]` is
capture.flows.FlowConfig and `[collector]` is telemetry.config.ShipperConfig, read by
their own code. `etc/agent.example.toml` documents every key with its default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from agent.fleet import FleetConfig, FleetConfigError
from agent.privacy import PrivacyConfig
from capture.flows import FlowConfig
from capture.live import LiveConfig, check_ring
from telemetry.config import ShipperConfig
from telemetry.errors import ConfigError

DEFAULT_PATH = "/etc/veille/agent.toml"
# Linux IFNAMSIZ is 16 including the terminating NUL.
IFNAMSIZ = 16
# systemd sets this for units with LoadCredential=; `${CREDENTIALS_DIRECTORY}` in a path expands to it.
CREDENTIALS_VAR = "CREDENTIALS_DIRECTORY"
# A config file is a few KiB; refuse anything absurd before parsing it.
MAX_CONFIG_BYTES = 1024 * 1024

LogLevel = Literal["debug", "info", "warning", "error"]
_LIVE = LiveConfig()


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file, at `key` (dotted path; "" for the file as a whole)."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigInvalid(ValueError):
    """A config file with problems; `problems` lists every one of them."""

    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class AgentSection:
    id: str = ""
    site: str = ""
    log_level: LogLevel = "info"


@dataclass(frozen=True, slots=True)
class RingSection:
    enabled: bool = _LIVE.ring
    block_size: int = _LIVE.block_size
    block_count: int = _LIVE.block_count
    frame_size: int = _LIVE.frame_size
    timeout_ms: int = _LIVE.timeout_ms


@dataclass(frozen=True, slots=True)
class CaptureSection:
    interfaces: list[str] = field(default_factory=list)
    bpf: str = _LIVE.bpf
    promisc: bool = _LIVE.promisc
    snaplen: int = _LIVE.snaplen
    queue_blocks: int = _LIVE.queue_blocks
    wait_for_interfaces: bool = _LIVE.wait_for_interfaces
    ring: RingSection = field(default_factory=RingSection)

    def live_config(self) -> LiveConfig:
        """The capture room's settings for `LiveSource`."""
        r = self.ring
        return LiveConfig(
            bpf=self.bpf,
            snaplen=self.snaplen,
            promisc=self.promisc,
            ring=r.enabled,
            block_size=r.block_size,
            block_count=r.block_count,
            frame_size=r.frame_size,
            timeout_ms=r.timeout_ms,
            queue_blocks=self.queue_blocks,
            wait_for_interfaces=self.wait_for_interfaces,
        )


@dataclass(frozen=True, slots=True)
class RulesSection:
    files: list[str] = field(default_factory=list)
    home_net: list[str] = field(default_factory=list)
    ioc_files: list[str] = field(default_factory=list)
    # Suricata's tls encryption-handling: "default" stops content inspection of a TLS direction
    # once it turns to ciphertext (and lets those packets bypass decoding); "full" inspects it.
    encryption_handling: str = "default"


@dataclass(frozen=True, slots=True)
class FingerprintsSection:
    # Debian's p0f package installs its database here.
    p0f: str = "/etc/p0f/p0f.fp"
    # "" means the DHCP fingerprint database shipped with Veille.
    dhcp_db: str = ""


@dataclass(frozen=True, slots=True)
class DetectionsSection:
    """Keys of agent.detections.LanConfig.from_any; empty lists turn the matching detection off."""

    # IPs or MACs allowed to answer DHCP.
    dhcp_servers: list[str] = field(default_factory=list)
    # "ip" or "ip=mac" (a pinned gateway MAC).
    gateways: list[str] = field(default_factory=list)
    resolvers: list[str] = field(default_factory=list)
    # CIDRs where a new device alerts; known_macs are the devices expected there.
    closed_segments: list[str] = field(default_factory=list)
    known_macs: list[str] = field(default_factory=list)
    # Zeek's scan.zeek defaults: 15 ports on one host or 25 hosts on one port within 5 minutes.
    scan_port_threshold: int = 15
    scan_host_threshold: int = 25
    scan_window: float = 300.0
    # Devices seen in a closed segment this many seconds after the first event count as known.
    learn_seconds: float = 0.0
    # An offender alerts again only after this long (one hour: one alert per shift, not per packet).
    realert_seconds: float = 3600.0
    # Bound on every detection table (entries).
    max_tracked: int = 65536


@dataclass(frozen=True, slots=True)
class HealthSection:
    # Seconds between health events.
    interval: float = 60.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole agent configuration."""

    agent: AgentSection = field(default_factory=AgentSection)
    capture: CaptureSection = field(default_factory=CaptureSection)
    pipeline: FlowConfig = field(default_factory=FlowConfig)
    rules: RulesSection = field(default_factory=RulesSection)
    fingerprints: FingerprintsSection = field(default_factory=FingerprintsSection)
    detections: DetectionsSection = field(default_factory=DetectionsSection)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    health: HealthSection = field(default_factory=HealthSection)
    collector: ShipperConfig | None = None
    fleet: FleetConfig | None = None  # [fleet]: bundles from the collector (docs/fleet.md)
    path: str = ""


def load_config(path: str | Path) -> AgentConfig:
    """Read and check `path`; raises `ConfigInvalid` listing every problem."""
    config, problems = _read(Path(path))
    if problems or config is None:
        raise ConfigInvalid(str(path), problems)
    return config


def check_config(path: str | Path) -> list[ConfigProblem]:
    """Every problem in `path` with its key path; [] for a good file."""
    return _read(Path(path))[1]


def _read(path: Path) -> tuple[AgentConfig | None, list[ConfigProblem]]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        return None, [ConfigProblem("", f"{path}: cannot read: {exc.strerror}")]
    if len(raw) > MAX_CONFIG_BYTES:
        return None, [ConfigProblem("", f"{path}: larger than {MAX_CONFIG_BYTES} bytes")]
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return None, [ConfigProblem("", f"{path}: not valid TOML: {exc}")]
    return parse_config(data, base=path.parent, source=str(path))


def parse_config(
    data: dict[str, Any], base: Path | None = None, source: str = ""
) -> tuple[AgentConfig, list[ConfigProblem]]:
    """Build an AgentConfig from parsed TOML; relative paths resolve against `base`."""
    problems: list[ConfigProblem] = []
    data = dict(data)
    collector_table = data.pop("collector", None)
    fleet_table = data.pop("fleet", None)
    sections = _read_table(AgentConfig, data, "", problems, skip=frozenset({"collector", "fleet", "path"}))
    collector = _collector(collector_table, base, problems)
    fleet = _fleet(fleet_table, collector, base, problems)
    config = dataclasses.replace(sections, collector=collector, fleet=fleet, path=source)
    config = _resolve_paths(config, base)
    problems.extend(_check(config, data))
    return config, problems


def _read_table(
    cls: type[Any], table: Any, prefix: str, problems: list[ConfigProblem], skip: frozenset[str] = frozenset()
) -> Any:
    if not isinstance(table, dict):
        problems.append(ConfigProblem(prefix, f"expected a table, got {_kind(table)}"))
        table = {}
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    for key in table:
        if key not in names:
            known = ", ".join(names)
            problems.append(ConfigProblem(_join(prefix, key), f"unknown key (known here: {known})"))
    args: dict[str, Any] = {}
    for name in names:
        if name not in table:
            continue
        key = _join(prefix, name)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            args[name] = _read_table(hint, table[name], key, problems)  # type: ignore[arg-type]
            continue
        value = _typed(hint, table[name], key, problems)
        if value is not _BAD:
            args[name] = value
    return cls(**args)


_BAD = object()


def _typed(hint: Any, value: Any, key: str, problems: list[ConfigProblem]) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        if value in choices and type(value) is type(choices[0]):
            return value
        problems.append(ConfigProblem(key, f"{value!r} is not one of {', '.join(map(repr, choices))}"))
        return _BAD
    if origin is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        problems.append(ConfigProblem(key, f"expected a list of strings, got {_kind(value)}"))
        return _BAD
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    name = hint.__name__ if isinstance(hint, type) else str(hint)
    problems.append(ConfigProblem(key, f"expected {name}, got {_kind(value)}"))
    return _BAD


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _expand(value: str, base: Path | None) -> str:
    creds = os.environ.get(CREDENTIALS_VAR)
    if creds is not None:
        value = value.replace("${" + CREDENTIALS_VAR + "}", creds)
    path = Path(value).expanduser()
    return str(path if path.is_absolute() or base is None else base.resolve() / path)


def _collector(table: Any, base: Path | None, problems: list[ConfigProblem]) -> ShipperConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.append(ConfigProblem("collector", f"expected a table, got {_kind(table)}"))
        return None
    table = dict(table)
    if isinstance(table.get("secret_file"), str):
        if "${" + CREDENTIALS_VAR + "}" in table["secret_file"] and CREDENTIALS_VAR not in os.environ:
            problems.append(
                ConfigProblem(
                    "collector.secret_file",
                    f"${{{CREDENTIALS_VAR}}} is set by systemd (LoadCredential=) when the unit runs; "
                    "outside the unit, give the secret file's path",
                )
            )
            return None
        table["secret_file"] = _expand(table["secret_file"], base)
    try:
        return ShipperConfig.from_mapping(table, base=base)
    except ConfigError as exc:
        key, _, message = exc.detail.partition(": ")
        problems.append(ConfigProblem(key, message) if message else ConfigProblem("collector", exc.detail))
        return None


def _fleet(
    table: Any, collector: ShipperConfig | None, base: Path | None, problems: list[ConfigProblem]
) -> FleetConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.append(ConfigProblem("fleet", f"expected a table, got {_kind(table)}"))
        return None
    table = dict(table)
    if isinstance(table.get("state_dir"), str) and table["state_dir"]:
        table["state_dir"] = _expand(table["state_dir"], base)
    shared = {"url": collector.url, "agent_id": collector.agent_id, "secret": collector.secret} if collector else None
    try:
        return FleetConfig.from_mapping(table, shared)
    except FleetConfigError as exc:
        key, _, message = str(exc).partition(": ")
        problems.append(ConfigProblem(key, message or str(exc)))
        return None


def _resolve_paths(config: AgentConfig, base: Path | None) -> AgentConfig:
    r, fp, pv = config.rules, config.fingerprints, config.privacy
    return dataclasses.replace(
        config,
        rules=dataclasses.replace(
            r, files=[_expand(p, base) for p in r.files], ioc_files=[_expand(p, base) for p in r.ioc_files]
        ),
        fingerprints=dataclasses.replace(
            fp,
            p0f=_expand(fp.p0f, base) if fp.p0f else "",
            dhcp_db=_expand(fp.dhcp_db, base) if fp.dhcp_db else "",
        ),
        privacy=dataclasses.replace(
            pv,
            key_file=_expand(pv.key_file, base) if pv.key_file else "",
            map_file=_expand(pv.map_file, base) if pv.map_file else "",
        ),
    )


def _given(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _check(c: AgentConfig, data: dict[str, Any]) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    add = out.append
    if not c.agent.id:
        add(ConfigProblem("agent.id", "missing"))
    if not c.agent.site:
        add(ConfigProblem("agent.site", "missing"))
    if c.collector is not None:
        if c.agent.id and c.collector.agent_id != c.agent.id:
            add(ConfigProblem("collector.agent_id", f"differs from agent.id {c.agent.id!r}"))
        if c.agent.site and c.collector.site != c.agent.site:
            add(ConfigProblem("collector.site", f"differs from agent.site {c.agent.site!r}"))
    cap = c.capture
    if not cap.interfaces and _given(data, "capture.interfaces"):
        add(ConfigProblem("capture.interfaces", "must name at least one interface"))
    elif not cap.interfaces:
        add(ConfigProblem("capture.interfaces", "missing"))
    for i, name in enumerate(cap.interfaces):
        if not 1 <= len(name) < IFNAMSIZ or "/" in name or name.strip() != name:
            add(ConfigProblem(f"capture.interfaces[{i}]", f"{name!r} is not a Linux interface name"))
    if len(set(cap.interfaces)) != len(cap.interfaces):
        add(ConfigProblem("capture.interfaces", "lists an interface twice"))
    if cap.bpf:
        out.extend(_check_bpf(cap.bpf, cap.snaplen))
    # Ethernet header + 802.1Q tag (18 bytes) is the least a decoder can use.
    if not 18 <= cap.snaplen <= _LIVE.snaplen:
        add(ConfigProblem("capture.snaplen", f"must be between 18 and {_LIVE.snaplen}"))
    if cap.queue_blocks < 1:
        add(ConfigProblem("capture.queue_blocks", "must be at least 1"))
    r = cap.ring
    for key, message in check_ring(r.block_size, r.block_count, r.frame_size, r.timeout_ms):
        add(ConfigProblem(f"capture.ring.{key}", message))
    p = c.pipeline
    for name in ("tcp_timeout", "udp_timeout", "other_timeout", "closed_linger", "active_timeout"):
        if getattr(p, name) <= 0:
            add(ConfigProblem(f"pipeline.{name}", "must be positive"))
    if p.max_flows < 1:
        add(ConfigProblem("pipeline.max_flows", "must be at least 1"))
    for name in ("stream_depth", "max_pending_segments"):
        if getattr(p, name) < 0:
            add(ConfigProblem(f"pipeline.{name}", "must not be negative"))
    for key, paths in (("rules.files", c.rules.files), ("rules.ioc_files", c.rules.ioc_files)):
        for i, path in enumerate(paths):
            if not os.path.isfile(path):
                add(ConfigProblem(f"{key}[{i}]", f"{path}: no such file"))
    out.extend(_networks("rules.home_net", c.rules.home_net))
    if c.rules.encryption_handling not in ("default", "full"):
        add(ConfigProblem("rules.encryption_handling", f"{c.rules.encryption_handling!r}: must be default or full"))
    for key in ("fingerprints.p0f", "fingerprints.dhcp_db"):
        path = getattr(c.fingerprints, key.split(".")[1])
        if path and _given(data, key) and not os.path.isfile(path):
            add(ConfigProblem(key, f"{path}: no such file"))
    d = c.detections
    for i, text in enumerate(d.dhcp_servers):
        if not (_is_mac(text) or _is_ip(text)):
            add(ConfigProblem(f"detections.dhcp_servers[{i}]", f"{text!r} is neither an IP nor a MAC address"))
    for i, text in enumerate(d.gateways):
        ip, sep, mac = text.partition("=")
        if not _is_ip(ip.strip()) or (sep and not _is_mac(mac.strip())):
            add(ConfigProblem(f"detections.gateways[{i}]", f"{text!r} is not IP or IP=MAC"))
    out.extend(_addresses("detections.resolvers", d.resolvers))
    out.extend(_networks("detections.closed_segments", d.closed_segments))
    for i, text in enumerate(d.known_macs):
        if not _is_mac(text):
            add(ConfigProblem(f"detections.known_macs[{i}]", f"{text!r} is not a MAC address"))
    for key in ("scan_port_threshold", "scan_host_threshold", "max_tracked"):
        if getattr(d, key) < 1:
            add(ConfigProblem(f"detections.{key}", "must be at least 1"))
    for key in ("scan_window", "realert_seconds"):
        if getattr(d, key) <= 0:
            add(ConfigProblem(f"detections.{key}", "must be positive"))
    if d.learn_seconds < 0:
        add(ConfigProblem("detections.learn_seconds", "must not be negative"))
    if c.privacy.profile != "full":
        if not c.privacy.key_file:
            add(ConfigProblem("privacy.key_file", f'required with profile = "{c.privacy.profile}"'))
        elif not os.path.isfile(c.privacy.key_file):
            add(ConfigProblem("privacy.key_file", f"{c.privacy.key_file}: no such file"))
    if c.privacy.period_days <= 0:
        add(ConfigProblem("privacy.period_days", "must be positive"))
    if c.health.interval <= 0:
        add(ConfigProblem("health.interval", "must be positive"))
    return out


# Keys a running capture cannot change: a new value takes effect at the next restart.
RESTART_KEYS = (
    "capture.interfaces",
    "capture.promisc",
    "capture.snaplen",
    "capture.queue_blocks",
    "capture.wait_for_interfaces",
    "capture.ring",
    "collector",
    "agent.id",
    "agent.site",
)


def changed_keys(old: AgentConfig, new: AgentConfig) -> tuple[list[str], list[str]]:
    """Keys that differ between two configs, split into (applied by a reload, needing a restart).

    A SIGHUP reload applies the first list (BPF filter, pipeline, rules, fingerprints,
    detections, privacy, health, log level) and reports the second.
    """
    live: list[str] = []
    restart: list[str] = []
    for section in dataclasses.fields(AgentConfig):
        if section.name == "path":
            continue
        a, b = getattr(old, section.name), getattr(new, section.name)
        if a == b:
            continue
        keys = [section.name]
        if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
            keys = [
                f"{section.name}.{f.name}" for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)
            ]
        for key in keys:
            (restart if key.startswith(RESTART_KEYS) else live).append(key)
    return live, restart


def _check_bpf(expression: str, snaplen: int) -> list[ConfigProblem]:
    from capture.bpf import BpfError, compile_bpf

    try:
        compile_bpf(expression, min(max(snaplen, 1), _LIVE.snaplen))
    except BpfError as exc:
        return [ConfigProblem("capture.bpf", exc.message)]
    return []


_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


def _is_mac(text: str) -> bool:
    return _MAC.match(text) is not None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _networks(key: str, values: list[str]) -> list[ConfigProblem]:
    out = []
    for i, text in enumerate(values):
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            out.append(ConfigProblem(f"{key}[{i}]", f"{text!r} is not an IP network (CIDR)"))
    return out


def _addresses(key: str, values: list[str]) -> list[ConfigProblem]:
    out = []
    for i, text in enumerate(values):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            out.append(ConfigProblem(f"{key}[{i}]", f"{text!r} is not an IP address"))
    return out


__all__ = [
    "RESTART_KEYS",
    "AgentConfig",
    "ConfigInvalid",
    "ConfigProblem",
    "changed_keys",
    "check_config",
    "load_config",
    "parse_config",
]
