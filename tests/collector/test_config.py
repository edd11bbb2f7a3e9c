"""Collector configuration: defaults, TOML, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import DEFAULT_RETENTION_DAYS, ConfigError, load_config, parse_listen


def test_zero_config_defaults() -> None:
    config = load_config()
    assert (config.host, config.port, config.db) == ("127.0.0.1", 8080, "veille-collector.db")
    assert config.url == "http://127.0.0.1:8080"
    assert config.retention_days == DEFAULT_RETENTION_DAYS


def test_toml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\nlisten = "[::1]:9000"\n[database]\nurl = "postgresql://x@h/db"\n'
        "[limits]\nmax_events = 500\nrate = 5\n[retention]\nflows = 7\n"
        '[nats]\nurl = "nats://127.0.0.1:4222"\n'
    )
    config = load_config(path, port=9100)
    assert (config.host, config.port, config.db) == ("::1", 9100, "postgresql://x@h/db")
    assert config.url == "http://[::1]:9100"
    assert (config.limits.max_events, config.limits.rate) == (500, 5.0)
    assert config.retention_days["flows"] == 7 and config.retention_days["alerts"] == 365
    assert config.nats.url == "nats://127.0.0.1:4222" and config.nats.required


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_events = 'many'\n", "limits.max_events: expected int"),
        ("[limits]\nmax_bodyy = 1\n", "limits.max_bodyy: unknown key"),
        ("[retention]\nflows = -1\n", "retention.flows: must not be negative"),
        ("[server]\nlisten = 'nohost'\n", "listen: expected HOST:PORT"),
        ("[server]\ntls_cert = 'a.pem'\n", "tls_cert and server.tls_key"),
        ("[serve]\n", "(top).serve: unknown key"),
        ("[limits\n", "c.toml"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    with pytest.raises(ConfigError):
        parse_listen("host:99999")
