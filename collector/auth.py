"""Operator tokens and roles.

A token is `vt_<id>_<secret>`: the id names it in lists and the audit log, the whole text is stored only as
its SHA-256 hash (a token has 256 random bits, so a fast hash is enough: nothing to brute-force). Roles:
`admin` (everything, including the audit log), `analyst` (every site, read-only), `viewer` (read-only,
listed sites only). Scope is a set of sites or None for all, and is applied by the store's queries.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

ROLES: Final = ("admin", "analyst", "viewer")
TOKEN_PREFIX: Final = "vt_"
# 32 random bytes, as for agent secrets (telemetry.signing.SECRET_BYTES): 256 bits, unguessable.
TOKEN_BYTES: Final = 32
# Tokens longer than this are refused before hashing (ours are ~60 characters).
MAX_TOKEN_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id and name, its role, and the sites a viewer may read."""

    token_id: str
    name: str
    role: str
    sites: frozenset[str]

    @property
    def scope(self) -> frozenset[str] | None:
        """Sites this principal may read, None for all."""
        return self.sites if self.role == "viewer" else None

    def may_read(self, site: str) -> bool:
        """True when the principal may see data of `site`."""
        return self.role != "viewer" or site in self.sites

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def new_token() -> tuple[str, str]:
    """A fresh (token_id, token_text) pair."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(TOKEN_BYTES)}"


def hash_token(text: str) -> str:
    """Hex SHA-256 of a token's text: what the store keeps."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_LENGTH:
        return None
    return value
