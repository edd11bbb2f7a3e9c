"""scripts/install.sh: the dry run lists every step, a run under --root is idempotent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell")
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = run("--dry-run", "--collector", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    headings = [line for line in out.splitlines() if line.startswith("== ")]
    assert [h.split(".")[0] for h in headings] == ["== 1", "== 2", "== 3", "== 4", "== 5", "== 6"]
    for expected in (
        f"python3 -m venv {root}/opt/veille/venv",
        f"pip install --upgrade --quiet {REPO}",
        f"install -m 0640 {REPO}/etc/agent.example.toml {root}/etc/veille/agent.toml",
        f"install -d -m 0700 {root}/etc/veille/credentials",
        f"{REPO}/systemd/veille-agent.service {root}/etc/systemd/system/veille-agent.service",
        f"{REPO}/systemd/veille-collector.service {root}/etc/systemd/system/veille-collector.service",
        "(dry run: nothing was changed)",
    ):
        assert expected in out, expected
    assert not root.exists()


def test_dry_run_as_on_site_hardware() -> None:
    proc = run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "veille-collector.service" not in proc.stdout
    assert "useradd --system" in proc.stdout or "user veille exists" in proc.stdout
    assert "systemctl enable veille-agent.service" in proc.stdout or "skip: systemctl" in proc.stdout


def test_accel_builds_the_compiled_modules_without_build_isolation(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = run("--dry-run", "--accel", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    pip = f"{root}/opt/veille/venv/bin/pip"
    assert f"{pip} install --quiet setuptools>=68 wheel mypy>=1.10 cython>=3.0" in proc.stdout
    compiled = f"env VEILLE_COMPILE=1 {pip} install --quiet --no-build-isolation --no-deps --force-reinstall {REPO}"
    # the pure install first brings the dependencies that mypyc type-checks against
    assert proc.stdout.index(f"{pip} install --upgrade --quiet {REPO}") < proc.stdout.index(compiled)


def test_unknown_option_is_refused() -> None:
    proc = run("--frobnicate")
    assert proc.returncode == 2
    assert "unknown option --frobnicate" in proc.stderr


def test_install_under_root_twice_keeps_the_edited_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = run("--root", str(root), "--skip-venv", "--collector")
    assert first.returncode == 0, first.stderr
    config = root / "etc/veille/agent.toml"
    assert config.read_text() == (REPO / "etc/agent.example.toml").read_text()
    assert config.stat().st_mode & 0o777 == 0o640
    assert (root / "etc/veille/credentials").stat().st_mode & 0o777 == 0o700
    unit = root / "etc/systemd/system/veille-agent.service"
    assert unit.read_text() == (REPO / "systemd/veille-agent.service").read_text()
    config.write_text(config.read_text().replace('id = "mediatheque-nord-gw1"', 'id = "edited"'))
    second = run("--root", str(root), "--skip-venv", "--collector")
    assert second.returncode == 0, second.stderr
    assert "agent.toml exists" in second.stdout
    assert 'id = "edited"' in config.read_text()

    from collector.config import load_config

    collector = load_config(root / "etc/veille/collector.toml")
    assert (collector.host, collector.port) == ("127.0.0.1", 8080)
