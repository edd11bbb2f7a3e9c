#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run every test.
# Usage: bash scripts/test.sh [pytest args...]
# Installs Debian packages (as root), creates .venv, starts PostgreSQL and NATS when absent,
# runs ruff, mypy and pytest. pytest's "no tests collected" (exit 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# gcc and python3-dev: scripts/test_accel.sh compiles the accelerator (mypyc, Cython).
DEBS=(tshark p0f tcpreplay tcpdump libndpi-bin chromium chromium-driver postgresql nats-server iproute2 systemd ieee-data faketime
      gcc python3-dev)
if [ "$(id -u)" = 0 ]; then
    missing=()
    for p in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
else
    echo "== not root: skipping Debian packages (${DEBS[*]}); tests needing them will skip"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PY" -m venv .venv
fi
echo "== installing the project and test dependencies"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true

# Services the collector tests use: start them when none is running.
if [ "$(id -u)" = 0 ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        echo "== starting PostgreSQL"
        ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
        if [ -n "$ver" ]; then
            pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
            for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
            # Trust auth on loopback for the throwaway test database.
            hba=/etc/postgresql/$ver/main/pg_hba.conf
            if ! grep -q "veille-test" "$hba"; then
                sed -i '1i host all all 127.0.0.1/32 trust # veille-test' "$hba"
                pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
            fi
            su postgres -c "psql -tc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test" || true
        fi
    fi
    if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
        if command -v nats-server >/dev/null; then
            echo "== starting NATS with JetStream"
            mkdir -p /var/lib/nats-server
            start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
                -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
            for _ in $(seq 20); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.5; done
        fi
    fi
fi

if [ -d "$ROOT/../shared/corpora" ]; then
    export VEILLE_REQUIRE_CORPORA=1
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc = 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
if [ $rc = 0 ] && [ "${VEILLE_SKIP_ACCEL:-0}" != 1 ] && [ $# = 0 ]; then
    bash scripts/test_accel.sh || rc=$?
fi
exit $rc
