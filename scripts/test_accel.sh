#!/usr/bin/env bash
# Build the optional accelerator (mypyc and Cython) from the same sources in a scratch copy of the tree and run the
# pipeline's tests against the compiled modules, so both paths stay correct.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/veille-accel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -r capture signatures agent telemetry collector veille pcaps bench tests setup.py pyproject.toml README.md "$WORK/"
cd "$WORK"
find . -name "*.so" -delete
echo "== building the accelerator (mypyc and Cython)"
VEILLE_COMPILE=1 "$ROOT/.venv/bin/python" setup.py -q build_ext --inplace >build.log 2>&1 || { tail -30 build.log; exit 1; }
n=$(ls capture/*.so agent/*.so | wc -l)
ls capture/fastpath.*.so >/dev/null || { echo "the Cython bypass walk was not built" >&2; exit 1; }
echo "== $n compiled modules; running the pipeline tests against them"
VEILLE_ACCEL=1 VEILLE_CORPORA="$ROOT/../shared/corpora" "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/capture/test_decode.py tests/capture/test_flows.py tests/capture/test_pcapfile.py \
    tests/capture/test_community_id.py tests/test_golden.py tests/agent/test_contract.py \
    tests/agent/test_pipeline_reference.py tests/test_cli_replay.py tests/agent/test_bypass.py
