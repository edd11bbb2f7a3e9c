"""Shared test fixtures.

`corpora` points at ../shared/corpora (public captures with reference outputs). When the folder
is absent the tests that need it skip with the reason; when VEILLE_REQUIRE_CORPORA=1 (set by
.ci/run whenever the folder exists) a missing folder is a failure instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("VEILLE_CORPORA", REPO.parent / "shared" / "corpora"))


def corpora_path() -> Path:
    if not CORPORA.is_dir():
        if os.environ.get("VEILLE_REQUIRE_CORPORA") == "1":
            pytest.fail(f"corpora required but missing at {CORPORA}")
        pytest.skip(f"../shared/corpora not present ({CORPORA}); reference checks need it")
    return CORPORA


@pytest.fixture
def corpora() -> Path:
    return corpora_path()


@pytest.fixture
def repo() -> Path:
    return REPO
