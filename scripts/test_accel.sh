#!/usr/bin/env bash
# Build the optional accelerator (mypyc and Cython) from the same sources in a scratch copy of the tree and run the
# pipeline's tests against the compiled modules, so both paths stay correct.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/veille-accel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -r capture signatures agent telemetry collector veille pcaps bench tests scripts docs etc setup.py pyproject.toml README.md "$WORK/"
cd "$WORK"
find . -name "*.so" -delete
echo "== building the accelerator (mypyc and Cython)"
VEILLE_COMPILE=1 "$ROOT/.venv/bin/python" setup.py -q build_ext --inplace >build.log 2>&1 || { tail -30 build.log; exit 1; }
ls capture/fastpath.*.so >/dev/null || { echo "the Cython bypass walk was not built" >&2; exit 1; }
# Every module that setup.py lists must now be imported from its compiled build, not from its .py.
n=$("$ROOT/.venv/bin/python" -c '
import importlib, re, sys
listed = open("setup.py").read().split("HOT_MODULES = [", 1)[1].split("]", 1)[0]
mods = re.findall(r"\"([a-z_/0-9]+)\.py\"", listed)
pure = [m for m in mods if not importlib.import_module(m.replace("/", ".")).__file__.endswith(".so")]
if pure or not mods:
    sys.exit(f"not compiled: {pure or listed}")
print(len(mods))
')
echo "== $n mypyc modules and the Cython walk built; running the pipeline, fingerprint, rule and inventory tests on them"
VEILLE_ACCEL=1 VEILLE_CORPORA="$ROOT/../shared/corpora" "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/capture tests/signatures tests/test_golden.py tests/test_cli_replay.py \
    tests/agent/test_contract.py tests/agent/test_pipeline_reference.py tests/agent/test_bypass.py \
    tests/agent/test_gc.py tests/agent/test_inventory.py tests/agent/test_inventory_golden.py \
    tests/agent/test_detections.py tests/agent/test_daemon.py tests/agent/test_privacy.py
