"""`veille agent reveal` on real files: key, pseudonym map written by a replay, audit log, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.privacy import PrivacyConfig, PrivacyError, PseudonymRecord, is_pseudonym
from agent.reveal import PseudonymMap, SitePrivacy, new_key, read_key

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
REVEAL = "import sys; from agent.reveal import main; sys.exit(main(sys.argv[1:]))"


def _reveal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-c", REVEAL, *args], cwd=REPO, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})),
    )  # fmt: skip


def test_key_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    new_key(key)
    assert len(read_key(key)) == 32 and (key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        new_key(key)  # never overwrites the key that makes a site's pseudonyms
    key.chmod(0o644)
    with pytest.raises(PrivacyError, match="must not be readable by group or others"):
        read_key(key)
    short = tmp_path / "short"
    short.write_bytes(b"0123456789")
    short.chmod(0o600)
    with pytest.raises(PrivacyError, match="has 10 bytes, at least 32"):
        read_key(short)
    with pytest.raises(PrivacyError, match="cannot read"):
        read_key(tmp_path / "missing")


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    """A pseudonymised replay of school_morning.pcap through the real CLI, with its map."""
    key, pmap = tmp_path / "site.key", tmp_path / "pseudonyms.jsonl"
    new_key(key)
    pcap = str(REPO / "pcaps" / "school_morning.pcap")
    run = [PY, "-m", "veille", "replay", pcap]
    full = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=300)
    pseudo = subprocess.run(
        [*run, "--privacy-profile", "pseudonymised", "--privacy-key-file", str(key), "--privacy-map", str(pmap)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert full.returncode == 0 and pseudo.returncode == 0, pseudo.stderr
    devices = [json.loads(x) for x in full.stdout.splitlines() if '"type":"device"' in x]
    pdevices = [json.loads(x) for x in pseudo.stdout.splitlines() if '"type":"device"' in x]
    return {"key": key, "map": pmap, "audit": tmp_path / "audit.jsonl", "devices": devices, "pdevices": pdevices}


def test_every_device_pseudonym_reveals_its_mac_and_each_reveal_is_logged(site: dict[str, Any]) -> None:
    pseudo = [d["mac"] for d in site["pdevices"]]
    assert len(pseudo) == len(site["devices"]) > 10 and all(is_pseudonym(p) for p in pseudo)
    args = ["--key-file", str(site["key"]), "--map", str(site["map"]), "--audit", str(site["audit"])]
    out = _reveal(*pseudo, *args, "--json", "--reason", "ticket 4711", env={"SUDO_USER": "dpo-alice"})
    assert out.returncode == 0, out.stderr
    revealed = [json.loads(x) for x in out.stdout.splitlines()]
    # Devices come out in MAC order in both runs, so the i-th pseudonym is the i-th MAC.
    assert [r["value"] for r in revealed] == [d["mac"] for d in site["devices"]]
    assert {r["class"] for r in revealed} == {"mac"}
    log = [json.loads(x) for x in site["audit"].read_text().splitlines()]
    assert [e["pseudonym"] for e in log] == pseudo
    assert {(e["user"], e["reason"], e["found"]) for e in log} == {("dpo-alice", "ticket 4711", True)}
    assert (site["audit"].stat().st_mode & 0o777) == 0o600 and (site["map"].stat().st_mode & 0o777) == 0o600
    names = [n["name"] for d in site["pdevices"] for n in d["names"]]
    out = _reveal(names[0], *args)
    assert out.returncode == 0 and "\tname\t" in out.stdout
    print(f"\nrevealed {len(revealed)} device MACs and host name {out.stdout.split()[2]!r}; {len(log) + 1} audit lines")


def test_unknown_tampered_and_unlogged_reveals_are_refused(site: dict[str, Any], tmp_path: Path) -> None:
    args = ["--key-file", str(site["key"]), "--map", str(site["map"]), "--audit", str(site["audit"])]
    out = _reveal("pm:0000000000000000", *args)
    assert out.returncode == 1 and out.stdout == "" and "not in" in out.stderr
    assert json.loads(site["audit"].read_text())["found"] is False  # a miss is logged too
    # Edit the map: make the first device's pseudonym point at another MAC.
    target = site["pdevices"][0]["mac"]
    lines = site["map"].read_text().splitlines()
    edited = [json.dumps({**r, "v": "02:00:00:00:00:01"}) if (r := json.loads(x))["p"] == target else x for x in lines]
    site["map"].write_text("\n".join(edited) + "\n")
    out = _reveal(target, *args)
    assert out.returncode == 1 and out.stdout == "" and "do not match the key" in out.stderr
    assert json.loads(site["audit"].read_text().splitlines()[-1])["tampered"] == 1
    # Another site's key does not reproduce the map either.
    other = tmp_path / "other.key"
    new_key(other)
    good = site["pdevices"][1]["mac"]
    out = _reveal(good, "--key-file", str(other), "--map", str(site["map"]), "--audit", str(site["audit"]))
    assert out.returncode == 1 and out.stdout == ""
    # No audit log, no reveal.
    out = _reveal(good, *args[:4], "--audit", str(tmp_path / "no-such-dir" / "audit.jsonl"))
    assert out.returncode == 1 and out.stdout == "" and "nothing revealed" in out.stderr
    out = _reveal("aa:bb:cc:dd:ee:ff", *args)
    assert out.returncode == 2 and "not a pseudonym" in out.stderr


def test_the_map_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "map.jsonl"
    pmap = PseudonymMap(path, max_entries=10)
    for i in range(50):
        pmap.record([PseudonymRecord(f"pm:{i:016x}", "mac", f"02:00:00:00:00:{i:02x}", 690)])
    records = list(PseudonymMap(path, max_entries=10).read())
    assert 10 <= len(records) <= 20
    assert records[-1].pseudonym == f"pm:{49:016x}"  # the newest survive compaction
    assert pmap.record([records[-1]]) == 0  # already there: not written twice
    (tmp_path / "bad.jsonl").write_text('{"p": "pm:1"}\n')
    with pytest.raises(PrivacyError, match=r"bad\.jsonl:1: not a pseudonym record"):
        PseudonymMap(tmp_path / "bad.jsonl")


def test_site_privacy_full_needs_no_key_and_writes_no_map(tmp_path: Path) -> None:
    sp = SitePrivacy(PrivacyConfig(profile="full", map_file=str(tmp_path / "m.jsonl")))
    ev = {"type": "flow", "src": "192.0.2.1"}
    assert sp.apply([ev]) == [ev] and sp.map is None and not (tmp_path / "m.jsonl").exists()
    with pytest.raises(PrivacyError, match="cannot read the privacy key"):
        SitePrivacy(PrivacyConfig(profile="minimal", key_file=str(tmp_path / "none")))


def test_forward_pseudonym_for_a_subject_access_request(site: dict[str, Any]) -> None:
    mac = site["devices"][0]["mac"]
    ts = str(site["devices"][0]["last_seen"])
    code = "import sys; from agent.reveal import pseudonym_main; sys.exit(pseudonym_main(sys.argv[1:]))"
    out = subprocess.run(
        [PY, "-c", code, mac.upper(), "--class", "mac", "--key-file", str(site["key"]), "--at", ts],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == site["pdevices"][0]["mac"]
