"""agent.config: the example file, every problem with its key path, typed sections."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import (
    AgentConfig,
    ConfigInvalid,
    ConfigProblem,
    check_config,
    load_config,
    parse_config,
)
from telemetry.config import ShipperConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "agent.example.toml"
REQUIRED = {"agent.id", "agent.site", "capture.interfaces"}
COLLECTOR_REQUIRED = {"url", "agent_id", "site", "secret", "secret_file"}


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "collector-secret").write_text("kJ8x-secret-from-systemd-credentials\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    return creds


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


GOOD = """
[agent]
id = "gw1"
site = "school-a"
[capture]
interfaces = ["eth1", "eth2"]
"""


def test_example_loads_without_problems(credentials: Path) -> None:
    assert check_config(EXAMPLE) == []
    config = load_config(EXAMPLE)
    assert config.collector is not None
    assert config.collector.secret == "kJ8x-secret-from-systemd-credentials"
    assert config.capture.interfaces == ["eth1"]


def _leaves(table: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _defaults(obj: object, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if f.name in ("collector", "fleet", "path"):  # tables documented in their own docs
            continue
        value = getattr(obj, f.name)
        path = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value):
            out.update(_defaults(value, path))
        else:
            out[path] = value
    return out


def test_example_documents_every_key_with_its_default() -> None:
    example = _leaves(tomllib.loads(EXAMPLE.read_text()))
    defaults = _defaults(AgentConfig())
    assert set(defaults) <= set(example), f"undocumented: {sorted(set(defaults) - set(example))}"
    wrong = {k: (example[k], v) for k, v in defaults.items() if k not in REQUIRED and example[k] != v}
    assert wrong == {}
    shipper_fields = {f.name: f for f in dataclasses.fields(ShipperConfig)}
    for key, value in example.items():
        if not key.startswith("collector.") or key.split(".")[1] in COLLECTOR_REQUIRED:
            continue
        f = shipper_fields[key.split(".")[1]]
        default = f.default
        assert str(value) == str(default), key
    # Optional collector keys left commented out are still documented.
    text = EXAMPLE.read_text()
    for name in shipper_fields:
        assert f"{name} =" in text, name


def test_a_good_minimal_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.capture.interfaces == ["eth1", "eth2"]
    assert config.collector is None
    live = config.capture.live_config()
    assert (live.block_size, live.block_count, live.ring) == (262144, 32, True)


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    text = """
[agent]
site = "s"
log_level = "loud"
colour = "blue"
[capture]
interfaces = ["eth1", "this-name-is-far-too-long"]
snaplen = "big"
bpf = "udp prt 53"
[capture.ring]
block_size = 5000
frame_size = 40
[pipeline]
max_flows = 0
udp_timeout = -1
[rules]
files = ["missing.rules"]
home_net = ["192.0.2.0/33"]
encryption_handling = "bypass"
[detections]
gateways = ["198.51.100.1", "not-an-ip"]
[privacy]
profile = "pseudonymised"
[health]
interval = true
[nonsense]
"""
    problems = [str(p) for p in check_config(write(tmp_path, text))]
    expected = [
        "agent.colour: unknown key",
        "agent.log_level: 'loud' is not one of 'debug', 'info', 'warning', 'error'",
        "agent.id: missing",
        "capture.interfaces[1]: 'this-name-is-far-too-long' is not a Linux interface name",
        "capture.snaplen: expected int, got str 'big'",
        "capture.bpf: ",
        "capture.ring.block_size: must be a power of two multiple of the page size",
        "capture.ring.frame_size: must be a multiple of 16 and at least 68",
        "pipeline.max_flows: must be at least 1",
        "pipeline.udp_timeout: must be positive",
        f"rules.files[0]: {tmp_path / 'missing.rules'}: no such file",
        "rules.home_net[0]: '192.0.2.0/33' is not an IP network",
        "rules.encryption_handling: 'bypass': must be default or full",
        "detections.gateways[1]: 'not-an-ip' is not IP or IP=MAC",
        'privacy.key_file: required with profile = "pseudonymised"',
        "health.interval: expected float, got bool True",
        "nonsense: unknown key",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected)
    with pytest.raises(ConfigInvalid) as info:
        load_config(tmp_path / "agent.toml")
    assert len(info.value.problems) == len(expected)


def test_a_table_where_a_value_belongs(tmp_path: Path) -> None:
    problems = check_config(write(tmp_path, GOOD + "\n[capture.interfaces]\n"))
    assert problems[0].key == "" and "not valid TOML" in problems[0].message
    problems = check_config(write(tmp_path, 'agent = 3\n[capture]\ninterfaces = ["e"]\nring = 4\n'))
    assert ConfigProblem("agent", "expected a table, got int 3") in problems
    assert ConfigProblem("capture.ring", "expected a table, got int 4") in problems


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    problems = check_config(write(tmp_path, '[agent]\nid = "gw1\n'))
    assert len(problems) == 1
    assert "line 2" in problems[0].message


def test_missing_file() -> None:
    problems = check_config("/nonexistent/agent.toml")
    assert problems == [ConfigProblem("", "/nonexistent/agent.toml: cannot read: No such file or directory")]


def test_collector_problems_carry_their_key(tmp_path: Path) -> None:
    text = GOOD + '[collector]\nurl = "http://collector.example.org"\nagent_id = "gw1"\nsite = "school-a"\n'
    problems = check_config(write(tmp_path, text + 'secret = "x"\n'))
    assert [p.key for p in problems] == ["collector.url"]
    assert "plain http" in problems[0].message
    problems = check_config(write(tmp_path, text.replace("http:", "https:") + 'secrett = "x"\n'))
    assert [p.key for p in problems] == ["collector.secrett"]


def test_collector_must_match_the_agent(tmp_path: Path) -> None:
    text = GOOD + '[collector]\nurl = "https://c.example.org"\nagent_id = "gw2"\nsite = "b"\nsecret = "x"\n'
    keys = [p.key for p in check_config(write(tmp_path, text))]
    assert keys == ["collector.agent_id", "collector.site"]


def test_secret_file_from_systemd_credentials(tmp_path: Path, credentials: Path) -> None:
    text = (
        GOOD
        + '[collector]\nurl = "https://c.example.org"\nagent_id = "gw1"\nsite = "school-a"\n'
        + 'secret_file = "${CREDENTIALS_DIRECTORY}/collector-secret"\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.collector is not None
    assert config.collector.secret == "kJ8x-secret-from-systemd-credentials"
    assert "kJ8x" not in repr(config)


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "local.rules").write_text("")
    config, problems = parse_config(
        tomllib.loads(GOOD + '[rules]\nfiles = ["local.rules"]\n'), base=tmp_path, source="x"
    )
    assert problems == []
    assert config.rules.files == [str(tmp_path / "local.rules")]


def test_floats_accept_integers_but_ints_refuse_floats(tmp_path: Path) -> None:
    text = GOOD + "[pipeline]\ntcp_timeout = 120\nmax_flows = 1.5\n"
    config, problems = parse_config(tomllib.loads(text))
    assert config.pipeline.tcp_timeout == 120.0
    assert [str(p) for p in problems] == ["pipeline.max_flows: expected int, got float 1.5"]


_KEYS = st.sampled_from(
    [
        "agent",
        "capture",
        "ring",
        "pipeline",
        "rules",
        "collector",
        "interfaces",
        "block_size",
        "bpf",
        "id",
        "site",
        "files",
        "home_net",
        "gateways",
        "profile",
        "url",
        "secret",
        "interval",
        "x",
    ]
)
_SCALARS = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.booleans(), st.text(max_size=20))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_toml_shape_gives_problems_never_an_exception(data: dict[str, object]) -> None:
    config, problems = parse_config(data)
    assert isinstance(config, AgentConfig)
    assert all(isinstance(p, ConfigProblem) and p.message for p in problems)


def test_detections_section_feeds_the_lan_detector(tmp_path: Path) -> None:
    from agent.detections import LanConfig

    text = GOOD + (
        "[detections]\n"
        'dhcp_servers = ["192.0.2.1", "02:00:00:00:00:01"]\n'
        'gateways = ["192.0.2.1=02:00:00:00:00:01", "2001:db8::1"]\n'
        'closed_segments = ["198.51.100.0/24"]\nknown_macs = ["02:00:00:00:00:aa"]\n'
        "scan_port_threshold = 30\n"
    )
    config = load_config(write(tmp_path, text))
    lan = LanConfig.from_any(config.detections)
    assert lan.gateways == (("192.0.2.1", "02:00:00:00:00:01"), ("2001:db8::1", None))
    assert lan.closed_segments == (("198.51.100.0/24", ("02:00:00:00:00:aa",)),)
    assert lan.dhcp_servers == ("192.0.2.1", "02:00:00:00:00:01")
    assert lan.scan_port_threshold == 30
    # Every default of the section is the detector's own default.
    defaults = LanConfig.from_any(AgentConfig().detections)
    assert defaults == LanConfig()


def test_bad_detection_entries_are_named(tmp_path: Path) -> None:
    text = GOOD + (
        '[detections]\ndhcp_servers = ["dhcp.example.org"]\ngateways = ["192.0.2.1=zz"]\n'
        'known_macs = ["02:00:00:00:00"]\nlearn_seconds = -1\n'
    )
    keys = [p.key for p in check_config(write(tmp_path, text))]
    assert keys == [
        "detections.dhcp_servers[0]",
        "detections.gateways[0]",
        "detections.known_macs[0]",
        "detections.learn_seconds",
    ]


def test_changed_keys_split_reloadable_from_restart() -> None:
    from agent.config import changed_keys

    old, _ = parse_config(tomllib.loads(GOOD))
    text = GOOD.replace('["eth1", "eth2"]', '["eth1"]') + (
        'bpf = "not port 22"\n[capture.ring]\nblock_count = 64\n[pipeline]\nudp_timeout = 30.0\n'
    )
    new, problems = parse_config(tomllib.loads(text))
    assert problems == []
    live, restart = changed_keys(old, new)
    assert live == ["capture.bpf", "pipeline.udp_timeout"]
    assert restart == ["capture.interfaces", "capture.ring"]
    assert changed_keys(old, old) == ([], [])
