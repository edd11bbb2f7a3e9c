"""sign/verify: every refusal is its typed error with status and reason; forged requests learn nothing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.errors import AuthError, BadSignature, ClockSkew, RevokedAgent, UnknownAgent
from telemetry.signing import (
    HEADER_AGENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AgentCredential,
    generate_secret,
    sign,
    string_to_sign,
    verify,
)

SECRET = generate_secret()
NOW = 1732270000.0
BODY = b"\x28\xb5\x2f\xfd compressed batch"
AGENTS = {"gw-1": AgentCredential(SECRET.encode()), "gw-old": AgentCredential(b"k", revoked=True)}


def lookup(agent_id: str):
    return AGENTS.get(agent_id)


def test_round_trip_and_known_vector() -> None:
    headers = sign("gw-1", SECRET, BODY, NOW)
    assert headers[HEADER_TIMESTAMP] == "1732270000"
    assert verify(headers, BODY, lookup, NOW + 10) == "gw-1"
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify(lower, BODY, lambda a: SECRET.encode(), NOW) == "gw-1"  # bytes lookups accepted too
    assert string_to_sign("a", "1", b"") == (b"a\n1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    # Computed independently: printf 'a\n1\ne3b0…b855' | openssl dgst -sha256 -hmac key
    assert sign("a", "key", b"", 1.9)[HEADER_SIGNATURE] == (
        "68a93681f22dace75852c73ce16ef32963d5e089b5a2de7d30bc6d0fcd4c13d5"
    )


@pytest.mark.parametrize(
    ("change", "error", "reason", "status"),
    [
        (lambda h, b: (h, b + b"x"), BadSignature, "bad_signature", 401),
        (lambda h, b: ({**h, HEADER_TIMESTAMP: "1732269000"}, b), BadSignature, "bad_signature", 401),
        (lambda h, b: ({**h, HEADER_AGENT: "gw-9"}, b), UnknownAgent, "unknown_agent", 401),
        (lambda h, b: ({**h, HEADER_AGENT: "gw-old"}, b), RevokedAgent, "revoked_agent", 403),
        (lambda h, b: ({k: v for k, v in h.items() if k != HEADER_SIGNATURE}, b), BadSignature, "missing_header", 401),
        (lambda h, b: ({**h, HEADER_SIGNATURE: "zz"}, b), BadSignature, "malformed_header", 401),
        (lambda h, b: ({**h, HEADER_TIMESTAMP: "1.5"}, b), BadSignature, "malformed_header", 401),
        (lambda h, b: ({**h, HEADER_AGENT: "a\nb"}, b), BadSignature, "malformed_header", 401),
    ],
)
def test_refusals(change, error, reason, status) -> None:
    headers, body = change(sign("gw-1", SECRET, BODY, NOW), BODY)
    with pytest.raises(error) as info:
        verify(headers, body, lookup, NOW)
    assert (info.value.reason, info.value.status) == (reason, status)
    assert info.value.as_json()["error"] == reason


def test_wrong_key() -> None:
    with pytest.raises(BadSignature):
        verify(sign("gw-1", generate_secret(), BODY, NOW), BODY, lookup, NOW)


@pytest.mark.parametrize("offset", [-301.0, 301.0, -86400.0])
def test_clock_skew_only_for_authentic_requests(offset: float) -> None:
    headers = sign("gw-1", SECRET, BODY, NOW + offset)
    with pytest.raises(ClockSkew) as info:
        verify(headers, BODY, lookup, NOW)
    assert info.value.reason == "clock_skew" and "collector clock" in info.value.detail
    assert verify(headers, BODY, lookup, NOW, max_skew=abs(offset) + 1) == "gw-1"
    forged = {**headers, HEADER_SIGNATURE: "0" * 64}
    with pytest.raises(BadSignature):  # a forger is not told the clock is off
        verify(forged, BODY, lookup, NOW)


@given(
    st.dictionaries(st.sampled_from([HEADER_AGENT, HEADER_TIMESTAMP, HEADER_SIGNATURE, "x"]), st.text()),
    st.binary(max_size=64),
)
def test_verify_raises_only_auth_errors(headers: dict, body: bytes) -> None:
    with contextlib.suppress(AuthError):
        verify(headers, body, lookup, NOW)
