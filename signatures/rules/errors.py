"""The rule loader's error: what keyword was wrong and why; the loader adds file, line and sid."""

from __future__ import annotations

from capture.errors import VeilleError


class RuleError(VeilleError):
    """A rule Veille cannot honour: malformed, or using a keyword outside the supported subset."""

    def __init__(self, keyword: str, reason: str, *, unsupported: bool = False) -> None:
        self.keyword = keyword
        self.reason = reason
        self.unsupported = unsupported
        super().__init__(f"{keyword}: {reason}")
