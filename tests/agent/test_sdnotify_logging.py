"""JSON-lines logs for journald: one object per line, extra fields kept, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from agent.logging import REDACTED, JsonFormatter, redact, redact_text, setup_logging


@pytest.fixture
def capture_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("veille.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_extra_fields(capture_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture_log
    logger.info("capture on %s re-opened", "eth1", extra={"iface": "eth1", "reopens": 2})
    logger.warning("multi\nline")
    first, second = lines(stream)
    assert first["level"] == "info"
    assert first["logger"] == "veille.test.json"
    assert first["msg"] == "capture on eth1 re-opened"
    assert (first["iface"], first["reopens"]) == ("eth1", 2)
    assert str(first["ts"]).endswith("Z") and "T" in str(first["ts"])
    assert second["msg"] == "multi\nline"
    assert len(stream.getvalue().splitlines()) == 2


def test_secrets_are_redacted_everywhere(capture_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture_log
    logger.error(
        "shipper refused: secret=hunter2 token: 'abc def' url=https://c.example.org",
        extra={
            "secret": "s3cr3t",
            "collector": {"url": "https://c.example.org", "api_key": "k", "nested": [{"password": "p"}]},
            "Authorization": "Bearer xyz",
        },
    )
    (rec,) = lines(stream)
    text = stream.getvalue()
    for leaked in ("hunter2", "s3cr3t", "abc def", "Bearer xyz", '"k"', '"p"'):
        assert leaked not in text
    assert rec["secret"] == REDACTED
    assert rec["Authorization"] == REDACTED
    assert rec["collector"] == {
        "url": "https://c.example.org",
        "api_key": REDACTED,
        "nested": [{"password": REDACTED}],
    }
    assert rec["msg"] == f"shipper refused: secret={REDACTED} token: {REDACTED} url=https://c.example.org"


def test_exceptions_are_included_and_redacted(capture_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture_log
    try:
        raise ValueError("bad password=letmein")
    except ValueError:
        logger.exception("failed")
    (rec,) = lines(stream)
    assert "ValueError" in str(rec["exc"])
    assert "letmein" not in stream.getvalue()


def test_redact_helpers() -> None:
    assert redact({"ok": 1, "client_secret": "x", "deep": {"refresh_token": "y"}}) == {
        "ok": 1,
        "client_secret": REDACTED,
        "deep": {"refresh_token": REDACTED},
    }
    assert redact_text("nothing to hide here") == "nothing to hide here"
    assert redact_text('passwd="two words" next') == f"passwd={REDACTED} next"


def test_setup_logging_routes_the_root_logger() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("warning", stream)
        logging.getLogger("veille.x").info("hidden")
        logging.getLogger("veille.x").warning("shown", extra={"n": 1})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    (rec,) = lines(stream)
    assert (rec["msg"], rec["n"], rec["level"]) == ("shown", 1, "warning")
