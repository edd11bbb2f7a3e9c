"""`python -m collector.fleet ...`: the `veille collector bundle` commands, runnable on their own."""

from __future__ import annotations

import sys

from collector.fleet.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
