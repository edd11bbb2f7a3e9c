"""Errors of the telemetry contract, shared by the shipper and the collector.

Every error carries the HTTP status a collector answers with and a short machine-readable `reason`, so the
collector can turn any of them into a 4xx JSON body (`as_json()`) and the shipper can count refusals by the
same reason the collector gave.
"""

from __future__ import annotations

from typing import ClassVar


class TelemetryError(Exception):
    """Root of the telemetry error tree."""

    status: ClassVar[int] = 400
    default_reason: ClassVar[str] = "invalid"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason or self.default_reason

    def as_json(self) -> dict[str, str]:
        """The body a collector answers with: `{"error": reason, "detail": ...}`."""
        return {"error": self.reason, "detail": self.detail}


class SchemaError(TelemetryError):
    """A batch that is not valid under the schema; `path` names the field (`$.events[3].sid`)."""

    status = 422
    default_reason = "schema"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{detail} at {path}")
        self.path = path
        self.problem = detail

    def as_json(self) -> dict[str, str]:
        return {"error": self.reason, "detail": self.problem, "path": self.path}


class EncodingError(TelemetryError):
    """A body whose compression is unknown, corrupt or truncated."""

    status = 400
    default_reason = "bad_encoding"


class UnsupportedEncoding(EncodingError):
    """A `Content-Encoding` the contract does not know."""

    status = 415
    default_reason = "unsupported_encoding"


class BodyTooLarge(EncodingError):
    """A body (compressed or once decompressed) larger than the cap: also what a zip bomb becomes."""

    status = 413
    default_reason = "too_large"


class AuthError(TelemetryError):
    """A request whose credentials are refused."""

    status = 401
    default_reason = "unauthorized"


class BadSignature(AuthError):
    """Missing or malformed signing headers, or an HMAC that does not match the body."""

    default_reason = "bad_signature"


class UnknownAgent(AuthError):
    """An agent id the collector never enrolled."""

    default_reason = "unknown_agent"


class RevokedAgent(AuthError):
    """An agent whose credentials were revoked."""

    status = 403
    default_reason = "revoked_agent"


class ClockSkew(AuthError):
    """A timestamp further from the collector's clock than the allowed skew (stale or replayed request)."""

    default_reason = "clock_skew"


class ConfigError(TelemetryError):
    """A bad shipper configuration; the message names the key path (`collector.url`)."""

    default_reason = "config"


AUTH_REASONS: frozenset[str] = frozenset(
    {
        BadSignature.default_reason,
        UnknownAgent.default_reason,
        RevokedAgent.default_reason,
        ClockSkew.default_reason,
        AuthError.default_reason,
    }
)
