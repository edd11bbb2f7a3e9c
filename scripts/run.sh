#!/usr/bin/env bash
# Set up Veille in .venv and run the main job: the one-command demo (collector + agent replaying the
# bundled school captures through the real shipping path, dashboard left running), or, with
# `--replay`, a replay of the bundled school-morning capture printed as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "$(id -u)" = 0 ] && ! dpkg-query -W -f='${Status}' p0f 2>/dev/null | grep -q "ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq p0f >/dev/null || true
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
if [ "${1:-}" = "--replay" ]; then
    exec .venv/bin/veille replay pcaps/school_morning.pcap --format table
fi
if .venv/bin/python -c "import veille.demo" 2>/dev/null; then
    exec .venv/bin/veille demo "$@"
fi
exec .venv/bin/veille replay pcaps/school_morning.pcap --format table
