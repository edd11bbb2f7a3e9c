"""Structured logs: one JSON object per line (journald and log shippers read it as is).

`JsonFormatter` writes ts (RFC 3339, UTC), level, logger, msg, the `extra=` fields
of the call and an exception's traceback. Any field whose name looks like a secret
(secret, token, password, key material, authorization) is replaced by "[redacted]",
at any depth of nested dicts, and `secret=...`-style pairs inside the message text
are masked as well, so a careless log call cannot ship a credential.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any, TextIO

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"secret|token|passw(or)?d|passphrase|authorization|api[_-]?key|private[_-]?key|cookie", re.I)
_SECRET_IN_TEXT = re.compile(
    r"(?P<key>\b[\w-]*(?:secret|token|passw(?:or)?d|passphrase|api[_-]?key)[\w-]*\b\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|\S+)",
    re.I,
)
# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# Nested structures deeper than this are cut: a log line is not a data dump.
MAX_DEPTH = 8


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with secret-looking keys' values replaced, recursively."""
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_KEY.search(str(k)) else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


def redact_text(text: str) -> str:
    """Mask `secret=...`, `token: ...` and the like inside free text."""
    return _SECRET_IN_TEXT.sub(lambda m: m.group("key") + REDACTED, text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in out:
                continue
            out[key] = REDACTED if _SECRET_KEY.search(key) else redact(value)
        if record.exc_info:
            out["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Route the root logger to `stream` (stderr) as JSON lines at `level`; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
