"""`veille rules check FILE...`: load rule files and print what loaded and what was skipped, by reason.

Exit status: 0 when every rule loaded, 1 when some were skipped, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

from signatures.rules.parser import RuleFileError, load_rules


def _variables(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--var expects NAME=VALUE, got {item!r}")
        out[name.strip().lstrip("$")] = value.strip()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; `argv` excludes the program name and may start with `rules`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["rules"]:
        args = args[1:]
    parser = argparse.ArgumentParser(prog="veille rules", description="Check Suricata rule files")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load rule files and summarise what Veille can honour")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--home-net", default=None, help="value of $HOME_NET")
    check.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a rule variable")
    check.add_argument("-v", "--verbose", action="store_true", help="list every skipped rule")
    ns = parser.parse_args(args)
    variables = _variables(ns.var)
    if ns.home_net:
        variables["HOME_NET"] = ns.home_net
    try:
        rs = load_rules(ns.files, variables)
    except RuleFileError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    print(f"loaded: {rs.loaded}")
    print(f"skipped: {len(rs.skipped)}")
    by_keyword = Counter(s.keyword for s in rs.skipped)
    for keyword, n in sorted(by_keyword.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {keyword}: {n}")
    for s in rs.skipped if ns.verbose else rs.skipped[:20]:
        print(f"warning: {s}", file=sys.stderr)
    if not ns.verbose and len(rs.skipped) > 20:
        print(f"warning: ... {len(rs.skipped) - 20} more (use -v)", file=sys.stderr)
    return 1 if rs.skipped else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
