"""ShipperConfig from the `[collector]` TOML table: keys, defaults, path resolution, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.config import DEFAULT_BATCH_MAX_EVENTS, ShipperConfig
from telemetry.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(body)
    return path


def test_full_table(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    path = write(
        tmp_path,
        """
[collector]
url = "https://collector.example.net:8443"
agent_id = "agent-7"
secret_file = "secret"
site = "school-a"
ca_file = "ca.pem"
client_cert = "/etc/veille/agent.pem"
client_key = "/etc/veille/agent.key"
allow_insecure = false
spool_dir = "spool"
spool_max_bytes = 1048576
batch_max_events = 100
batch_max_bytes = 65536
batch_max_age = 2
""",
    )
    cfg = ShipperConfig.from_toml(path)
    assert cfg.secret == "s3cret" and cfg.agent_id == "agent-7" and cfg.site == "school-a"
    assert cfg.ca_file == tmp_path / "ca.pem" and cfg.spool_dir == tmp_path / "spool"
    assert cfg.client_cert == Path("/etc/veille/agent.pem") and cfg.batch_max_age == 2.0
    assert "s3cret" not in repr(cfg)


def test_minimal_table_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[collector]\nurl = "http://127.0.0.1:8080"\nagent_id = "a"\nsecret = "x"\nsite = "s"\n')
    cfg = ShipperConfig.from_toml(path)
    assert cfg.batch_max_events == DEFAULT_BATCH_MAX_EVENTS and cfg.encoding == "zstd"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('url = "http://192.0.2.1:8080"\nagent_id = "a"\nsecret = "x"\nsite = "s"', "collector.url: plain http"),
        ('url = "ftp://x"\nagent_id = "a"\nsecret = "x"\nsite = "s"', "collector.url"),
        ('agent_id = "a"\nsecret = "x"\nsite = "s"', "collector.url: missing"),
        ('url = "https://x"\nagent_id = "a b"\nsecret = "x"\nsite = "s"', "collector.agent_id"),
        ('url = "https://x"\nagent_id = "a"\nsite = "s"', "collector.secret: missing"),
        (
            'url = "https://x"\nagent_id = "a"\nsecret = "x"\nsite = "s"\nbatch_max_events = "9"',
            "collector.batch_max_events: expected int",
        ),
        (
            'url = "https://x"\nagent_id = "a"\nsecret = "x"\nsite = "s"\nspool_max_bytes = 0',
            "collector.spool_max_bytes",
        ),
        ('url = "https://x"\nagent_id = "a"\nsecret = "x"\nsite = "s"\nbogus = 1', "collector.bogus: unknown key"),
        ('url = "https://x"\nagent_id = "a"\nsecret_file = "nope"\nsite = "s"', "collector.secret_file: cannot read"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "[collector]\n" + body + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        ShipperConfig.from_toml(path)
    assert str(path) in str(info.value)


def test_insecure_allowed_explicitly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[collector]\nurl = "http://192.0.2.1"\nagent_id = "a"\nsecret = "x"\nsite = "s"\nallow_insecure = true\n',
    )
    assert ShipperConfig.from_toml(path).allow_insecure


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        ShipperConfig.from_toml(write(tmp_path, "[collector\n"))
