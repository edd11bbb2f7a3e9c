#!/bin/sh
# Install Veille on site hardware (Debian gateway or mesh node) or on the collector host.
#
# Steps, each skipped when already done (the script is safe to run again, e.g. to upgrade):
#   1. packages: python3-venv, libpcap0.8 (BPF compilation), p0f (its fingerprint database)
#   2. the system user and group `veille` (no login, no home)            [agent only]
#   3. a virtual environment under /opt/veille/venv with Veille installed from SOURCE
#      (this checkout, a wheel or an sdist); an upgrade re-installs into the same venv
#   4. /etc/veille/agent.toml from etc/agent.example.toml, only if absent (0640 root:veille)
#      and /etc/veille/credentials/ (0700 root) for the collector secret  [agent]
#   5. the systemd units in /etc/systemd/system, then daemon-reload and enable
#   6. prints what is left to do: secret, config, check-config, start
#
# Usage: scripts/install.sh [--dry-run] [--collector] [--no-agent] [--source PATH] [--accel]
#                           [--root DIR] [--skip-packages] [--skip-venv] [--skip-systemctl]
#   --dry-run         print every step, change nothing
#   --accel           build the compiled accelerator (mypyc and Cython, from the package registry,
#                     with gcc and python3-dev) from the same sources: about 1.9x the replay speed
#   --collector       also install the collector unit and a default /etc/veille/collector.toml
#   --no-agent        collector host only
#   --source PATH     what pip installs (default: the checkout this script is in)
#   --root DIR        install files under DIR (packaging, tests); implies --skip-packages and
#                     no user creation or systemctl
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
SOURCE=$HERE
ROOT=""
DRY_RUN=0
AGENT=1
COLLECTOR=0
PACKAGES=1
VENV=1
SYSTEMCTL=1
ACCEL=0
PREFIX=/opt/veille
ETC=/etc/veille
UNITDIR=/etc/systemd/system

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --collector) COLLECTOR=1 ;;
        --no-agent) AGENT=0 ;;
        --source) SOURCE=${2:?--source needs a path}; shift ;;
        --root) ROOT=${2:?--root needs a directory}; shift; PACKAGES=0; SYSTEMCTL=0 ;;
        --skip-packages) PACKAGES=0 ;;
        --skip-venv) VENV=0 ;;
        --accel) ACCEL=1 ;;
        --skip-systemctl) SYSTEMCTL=0 ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done

step() { printf '\n== %s\n' "$*"; }
# run CMD...: print it; execute it unless --dry-run.
run() {
    printf '+ %s\n' "$*"
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}
skip() { printf '  (skip: %s)\n' "$*"; }

if [ "$DRY_RUN" -eq 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or with --dry-run to see the steps)" >&2
    exit 1
fi

step "1. packages"
if [ "$PACKAGES" -eq 1 ]; then
    missing=""
    wanted="python3-venv libpcap0.8 p0f"
    if [ "$ACCEL" -eq 1 ]; then wanted="$wanted gcc python3-dev"; fi
    for pkg in $wanted; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        run apt-get install -y --no-install-recommends $missing
    else
        skip "$wanted: installed"
    fi
else
    skip "packages not managed here"
fi

step "2. system user"
if [ "$AGENT" -eq 0 ]; then
    skip "no agent (the collector runs as a systemd DynamicUser)"
elif [ -n "$ROOT" ]; then
    skip "--root given: the package's postinst creates the user"
elif getent passwd veille >/dev/null; then
    skip "user veille exists"
else
    run useradd --system --user-group --no-create-home --home-dir /var/lib/veille \
        --shell /usr/sbin/nologin --comment "Veille network sensor" veille
fi

step "3. virtual environment in $PREFIX/venv"
if [ "$VENV" -eq 1 ]; then
    if [ -x "$ROOT$PREFIX/venv/bin/python" ]; then
        skip "venv exists; upgrading Veille in it"
    else
        run python3 -m venv "$ROOT$PREFIX/venv"
    fi
    run "$ROOT$PREFIX/venv/bin/pip" install --upgrade --quiet "$SOURCE"
    if [ "$ACCEL" -eq 1 ]; then
        # mypyc type-checks against the dependencies just installed, and the compilers live in this venv,
        # so the compiled build replaces the pure one without build isolation (about two minutes).
        run "$ROOT$PREFIX/venv/bin/pip" install --quiet "setuptools>=68" wheel "mypy>=1.10" "cython>=3.0"
        run env VEILLE_COMPILE=1 "$ROOT$PREFIX/venv/bin/pip" install --quiet --no-build-isolation --no-deps \
            --force-reinstall "$SOURCE"
    fi
else
    skip "--skip-venv"
fi
run install -d -m 0755 "$ROOT$PREFIX/share/etc"
run install -m 0644 "$HERE/etc/agent.example.toml" "$ROOT$PREFIX/share/etc/agent.example.toml"

step "4. configuration in $ETC"
run install -d -m 0750 "$ROOT$ETC"
if [ "$AGENT" -eq 1 ]; then
    if [ -e "$ROOT$ETC/agent.toml" ]; then
        skip "$ETC/agent.toml exists (kept as is; compare with $PREFIX/share/etc/agent.example.toml)"
    else
        run install -m 0640 "$HERE/etc/agent.example.toml" "$ROOT$ETC/agent.toml"
        if [ -z "$ROOT" ]; then run chgrp veille "$ROOT$ETC/agent.toml"; fi
    fi
    if [ -z "$ROOT" ]; then run chgrp veille "$ROOT$ETC"; fi
    run install -d -m 0700 "$ROOT$ETC/credentials"
fi
if [ "$COLLECTOR" -eq 1 ]; then
    if [ -e "$ROOT$ETC/collector.toml" ]; then
        skip "$ETC/collector.toml exists"
    else
        printf '+ write %s (SQLite under /var/lib/veille-collector, listen 127.0.0.1:8080)\n' "$ETC/collector.toml"
        if [ "$DRY_RUN" -eq 0 ]; then
            umask 022
            cat >"$ROOT$ETC/collector.toml" <<'TOML'
# Veille collector; see `veille collector serve --help`. StateDirectory=veille-collector holds the data.
[server]
listen = "127.0.0.1:8080"
[database]
url = "/var/lib/veille-collector/veille-collector.db"
TOML
        fi
    fi
fi

step "5. systemd units"
run install -d -m 0755 "$ROOT$UNITDIR"
units=""
if [ "$AGENT" -eq 1 ]; then units="veille-agent.service"; fi
if [ "$COLLECTOR" -eq 1 ]; then units="$units veille-collector.service"; fi
for unit in $units; do
    run install -m 0644 "$HERE/systemd/$unit" "$ROOT$UNITDIR/$unit"
done
if [ "$SYSTEMCTL" -eq 1 ] && command -v systemctl >/dev/null; then
    run systemctl daemon-reload
    # shellcheck disable=SC2086
    run systemctl enable $units
else
    skip "systemctl daemon-reload and enable ($units)"
fi

step "6. what is left to do"
if [ "$AGENT" -eq 1 ]; then
    cat <<EOF
  - put the agent's collector secret (from 'veille collector agent add') in
      $ETC/credentials/collector-secret   (mode 0600, owner root; systemd hands it over)
  - edit $ETC/agent.toml: agent.id, agent.site, capture.interfaces, [collector]
  - check it:  $PREFIX/venv/bin/veille agent check-config $ETC/agent.toml
  - start it:  systemctl start veille-agent; journalctl -u veille-agent -o cat
EOF
fi
if [ "$COLLECTOR" -eq 1 ]; then
    echo "  - start the collector: systemctl start veille-collector"
fi
if [ "$DRY_RUN" -eq 1 ]; then echo "(dry run: nothing was changed)"; fi
