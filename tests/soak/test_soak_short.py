"""The short soak profile (bench/soak) as a test: two minutes of faults against real processes.

Runs `Soak(Profile(minutes=2))` in this process: collectors on SQLite and PostgreSQL (SQLite twice
when no PostgreSQL answers), two `veille agent run` processes on veth pairs in namespaces it creates,
every fault kind at least once, then asserts the pass conditions from the report: nothing acknowledged
lost, nothing stored twice, every missing event shed (with a reason) or lost at a kill by design,
every process alive or restarted by design, every fault recovered. About 2.5 minutes on 2 cores.
"""

from __future__ import annotations

import json

import pytest

from bench.soak.report import KINDS, render
from bench.soak.run import FAULTS, Profile, Soak, preflight

pytestmark = [pytest.mark.netns, pytest.mark.slow]


@pytest.fixture(scope="module")
def report() -> dict:
    why = preflight()
    if why:
        pytest.skip(why)
    result = Soak(Profile(minutes=2.0, seed=7)).run()
    print(render(result))
    print(json.dumps(result["faults"], indent=1, default=str))
    return result


def test_soak_passes(report: dict) -> None:
    assert report["failures"] == []
    assert report["pass"] is True


def test_every_fault_kind_ran_and_recovered(report: dict) -> None:
    ran = {f["fault"] for f in report["faults"]}
    assert ran == set(FAULTS)
    for f in report["faults"]:
        assert f["ok"], f
        assert f["recovery_s"] is not None and f["recovery_s"] < 60, f


def test_events_flow_end_to_end(report: dict) -> None:
    for name, agent in report["agents"].items():
        for kind in KINDS:
            row = agent["kinds"][kind]
            assert row["captured"] > 0, (name, kind, row)
            assert row["stored"] > 0, (name, kind, row)
            assert row["duplicates"] == 0, (name, kind, row)
            assert row["unexplained"] == 0, (name, kind, row)
            # Every captured event is stored or accounted for, one by one.
            accounted = row["stored"] + row["lost_unacked_at_kill"] + row["quarantined_corrupt"] + row["shed"]
            assert accounted == row["captured"], (name, kind, row)
        assert agent["devices"]["stored"] >= agent["devices"]["generated"] - 1, (name, agent["devices"])


def test_faults_hit_what_they_claim(report: dict) -> None:
    by_kind = {f["fault"]: f for f in report["faults"]}
    assert "clock_skew" in by_kind["clock_skew"]["answers"]["+600s"]
    flood = by_kind["malformed_flood"]
    assert not any(int(s) >= 500 or int(s) == 0 for s in flood["statuses"])
    full = by_kind["spool_disk_full"]
    assert full["filler_bytes"] > 0 and full["agent_alive_while_full"]
    disk_agent = report["agents"][by_kind["spool_disk_full"]["target"]]
    # The full disk made the agent shed, and it said why.
    assert any("No space left" in r for r in disk_agent["health"]["shed_reasons"])
    corrupt = by_kind["spool_corrupt"]
    damaged = report["agents"][corrupt["target"]]
    assert corrupt["file"] in damaged["spool_files_damaged"]
    assert any(q.startswith(corrupt["file"]) for q in damaged["quarantined"])
    for rogue in report["rogue"].values():
        assert rogue["rogue_batches_stored"] == 0


def test_processes_measured_and_restarted_by_design(report: dict) -> None:
    for name, proc in report["processes"].items():
        assert proc["unexpected_exits"] == [], name
        assert proc["peak_rss_mb"] > 10, (name, proc)
        assert proc["cpu_seconds"] > 0, (name, proc)
    assert all(status == 0 for status in report["drain"]["agent_exit_status"].values())
