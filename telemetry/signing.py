"""Per-agent request signing: HMAC-SHA256 over the agent id, a timestamp and the digest of the body as sent.

    string_to_sign = f"{agent_id}\\n{timestamp}\\n{sha256(body).hexdigest()}"
    X-Veille-Signature = hex(HMAC-SHA256(secret, string_to_sign))

`body` is the exact bytes on the wire (compressed), so the collector verifies before it decompresses
anything. `timestamp` is integer seconds since the epoch; the collector refuses one further than `max_skew`
from its clock, which bounds how long a captured request can be replayed (and a replay inside the window is
a sequence number already stored, so it is ignored). Pure functions: callers pass `now`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from telemetry.errors import BadSignature, ClockSkew, RevokedAgent, UnknownAgent

HEADER_AGENT: Final = "X-Veille-Agent"
HEADER_TIMESTAMP: Final = "X-Veille-Timestamp"
HEADER_SIGNATURE: Final = "X-Veille-Signature"
# Five minutes, as Kerberos (RFC 4120 section 1.6 "typically 5 minutes") and AWS SigV4 requests allow.
DEFAULT_MAX_SKEW: Final = 300.0
AGENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TIMESTAMP_RE: Final = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_RE: Final = re.compile(r"^[0-9a-f]{64}$")
# 32 random bytes: the HMAC-SHA256 key length RFC 2104 section 3 recommends (at least the output length).
SECRET_BYTES: Final = 32


class AgentCredential(NamedTuple):
    """What the collector knows about an agent: its shared secret and whether it was revoked."""

    secret: bytes
    revoked: bool = False


SecretLookup = Callable[[str], "AgentCredential | bytes | None"]


def generate_secret() -> str:
    """A new agent secret, URL-safe text (what `veille collector agent add` prints once)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def string_to_sign(agent_id: str, timestamp: str, body: bytes) -> bytes:
    """The signed text: agent id, timestamp and body digest, newline-separated."""
    return f"{agent_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()


def signature(secret: str | bytes, agent_id: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `string_to_sign`."""
    return hmac.new(_key(secret), string_to_sign(agent_id, timestamp, body), hashlib.sha256).hexdigest()


def sign(agent_id: str, secret: str | bytes, body: bytes, now: float) -> dict[str, str]:
    """The three signing headers for a request carrying `body` (exact bytes sent) at time `now`."""
    timestamp = str(int(now))
    return {
        HEADER_AGENT: agent_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature(secret, agent_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    if value is None:
        raise BadSignature(f"missing header {name}", reason="missing_header")
    return value.strip()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret_lookup: SecretLookup,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW,
) -> str:
    """Check a request's signature and return its agent id.

    Raises UnknownAgent, RevokedAgent, BadSignature (also for missing/malformed headers) or ClockSkew.
    The skew is checked only once the signature is valid, so an unsigned request learns nothing about the
    collector's clock.
    """
    agent_id = _header(headers, HEADER_AGENT)
    timestamp = _header(headers, HEADER_TIMESTAMP)
    given = _header(headers, HEADER_SIGNATURE).lower()
    if not AGENT_ID_RE.match(agent_id):
        raise BadSignature(f"malformed {HEADER_AGENT} header", reason="malformed_header")
    if not _TIMESTAMP_RE.match(timestamp):
        raise BadSignature(f"{HEADER_TIMESTAMP} must be integer seconds", reason="malformed_header")
    if not _SIGNATURE_RE.match(given):
        raise BadSignature(f"{HEADER_SIGNATURE} must be 64 hex digits", reason="malformed_header")
    found = secret_lookup(agent_id)
    if found is None:
        raise UnknownAgent(f"agent {agent_id!r} is not enrolled")
    cred = found if isinstance(found, AgentCredential) else AgentCredential(found)
    if cred.revoked:
        raise RevokedAgent(f"agent {agent_id!r} is revoked")
    expected = signature(cred.secret, agent_id, timestamp, body)
    if not hmac.compare_digest(expected, given):
        raise BadSignature("signature does not match the body")
    skew = float(timestamp) - now
    if abs(skew) > max_skew:
        raise ClockSkew(f"timestamp is {skew:+.0f} s from the collector clock (allowed ±{max_skew:.0f} s)")
    return agent_id
