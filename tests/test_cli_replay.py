"""`veille replay` as a tester runs it: formats, bad files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PCAPS = REPO / "pcaps"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_jsonl_is_the_default_off_a_terminal_and_stats_come_last() -> None:
    out = run("replay", str(PCAPS / "vlan.pcap"))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert all("type" in x for x in lines)
    assert lines[-1]["type"] == "stats" and lines[-1]["packets"] == lines[-1]["decoded"] > 0
    assert {x["vlan"] for x in lines if x["type"] == "flow"} >= {10, 20, 30}


def test_table_format_for_people() -> None:
    out = run("replay", str(PCAPS / "school_morning.pcap"), "--format", "table")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Packets 1373")
    assert "Devices (" in out.stdout and "Top flows by bytes" in out.stdout


def test_truncated_file_keeps_events_before_and_names_file_and_offset() -> None:
    out = run("replay", str(PCAPS / "truncated_file.pcap"), str(PCAPS / "sll.pcap"))
    assert out.returncode == 1
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "truncated_file.pcap: offset " in err[0] and "truncated record" in err[0]
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    stats = lines[-1]
    assert stats["files"] == 2 and stats["packets"] > 20  # frames before the cut and the next file
    assert any(x["type"] == "flow" for x in lines)


def test_not_a_capture_is_one_line_error() -> None:
    out = run("replay", str(PCAPS / "not_a_capture.pcap"))
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == f"veille: error: {PCAPS / 'not_a_capture.pcap'}: offset 0: not a capture file (magic "
        + ((PCAPS / "not_a_capture.pcap").read_bytes()[:4].hex() + ")")
    )


def test_malformed_packets_are_counted_never_raised() -> None:
    out = run("replay", str(PCAPS / "malformed.pcap"))
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.splitlines()[-1])
    assert stats["packets"] == 28
    assert sum(stats["errors"].values()) >= 10
    assert {"dns.compression_loop", "tcp.zero_length_option", "ipv6.too_many_ext_headers"} <= set(stats["errors"])


def test_output_file_option(tmp_path: Path) -> None:
    dest = tmp_path / "events.jsonl"
    out = run("replay", str(PCAPS / "raw_ip.pcap"), "-o", str(dest))
    assert out.returncode == 0 and out.stdout == ""
    assert json.loads(dest.read_text().splitlines()[-1])["type"] == "stats"


def test_bad_knowledge_files_are_one_line_errors(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("x = [")
    typo = tmp_path / "typo.toml"
    typo.write_text('[detections]\nalowed_dhcp_servers = ["192.0.2.1"]\n')
    cases = [
        (["--rules", str(tmp_path / "none.rules")], "none.rules"),
        (["--ioc", str(tmp_path / "none.txt")], "none.txt"),
        (["--detections", str(bad_toml)], "not valid TOML"),
        (["--detections", str(typo)], "detections.alowed_dhcp_servers: unknown key"),
        (["--p0f", str(tmp_path / "none.fp")], "no such p0f database"),
        (["-o", str(tmp_path / "no" / "dir.jsonl")], "No such file or directory"),
    ]
    for extra, needle in cases:
        out = run("replay", str(PCAPS / "raw_ip.pcap"), *extra)
        assert out.returncode == 2, (extra, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("veille: error: ") and needle in lines[0], (extra, lines)
