"""Query API: roles, site scope, filters, pagination and the audit trail, on both back-ends."""

from __future__ import annotations

import time

import pytest

from .conftest import T0, Harness, alert, device, flow, health


async def populate(h: Harness) -> None:
    a = await h.agent("school-a", "agent-a")
    b = await h.agent("school-b", "agent-b")
    await h.send(
        a,
        [
            device("02:00:00:00:00:01"),
            device("02:00:00:00:00:02", vendor="Dell", device_type="laptop"),
            alert(1),
            alert(2, sid=2000001, severity=1),
            health(),
        ]
        + [flow(i, bytes_fwd=100 * (i + 1)) for i in range(20)]
        + [flow(i, src_mac="02:00:00:00:00:02", bytes_fwd=10) for i in range(3)],
    )
    await h.send(
        b,
        [
            device("02:00:00:00:00:bb", vendor="HP", device_type="printer"),
            alert(3, src_mac="02:00:00:00:00:bb"),
            health(),
        ],
    )


async def test_viewer_of_site_a_sees_nothing_of_site_b(harness: Harness) -> None:
    h = harness
    await populate(h)
    viewer = await h.token("viewer", ["school-a"])
    status, body = await h.get("/api/v1/sites", viewer)
    assert status == 200
    assert [s["site"] for s in body["items"]] == ["school-a"]
    status, body = await h.get("/api/v1/devices", viewer)
    assert {d["site"] for d in body["items"]} == {"school-a"}
    assert body["total"] == 2
    status, body = await h.get("/api/v1/alerts", viewer)
    assert {a["site"] for a in body["items"]} == {"school-a"} and body["total"] == 2
    status, body = await h.get("/api/v1/agents", viewer)
    assert [a["agent_id"] for a in body["items"]] == ["agent-a"]
    for path in ("/api/v1/devices?site=school-b", "/api/v1/alerts?site=school-b", "/api/v1/sites/school-b/top-talkers"):
        status, body = await h.get(path, viewer)
        assert (status, body["error"]) == (403, "forbidden"), path
    status, body = await h.get("/api/v1/devices/school-b/02:00:00:00:00:bb", viewer)
    assert (status, body["error"]) == (404, "not_found")
    status, body = await h.get("/api/v1/agents/agent-b/health", viewer)
    assert status == 404
    status, body = await h.get("/api/v1/audit", viewer)
    assert status == 403
    # The same calls by an analyst see both sites.
    analyst = await h.token("analyst")
    status, body = await h.get("/api/v1/devices", analyst)
    assert body["total"] == 3
    status, body = await h.get("/api/v1/devices/school-b/02:00:00:00:00:bb", analyst)
    assert status == 200 and body["vendor"] == "HP"
    status, body = await h.get("/api/v1/sites", analyst)
    assert [(s["site"], s["agents"], s["devices"], s["alerts"]) for s in body["items"]] == [
        ("school-a", 1, 2, 2),
        ("school-b", 1, 1, 1),
    ]


async def test_unauthenticated_and_revoked_tokens_are_refused(harness: Harness) -> None:
    h = harness
    status, body = await h.get("/api/v1/sites", None)
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await h.get("/api/v1/sites", "vt_nope_nope")
    assert status == 401
    token = await h.token("admin")
    assert (await h.get("/api/v1/sites", token))[0] == 200
    token_id = token.split("_")[1]
    assert await h.store.revoke_token(token_id, time.time())
    assert (await h.get("/api/v1/sites", token))[0] == 401


async def test_device_filters_search_and_pagination(harness: Harness) -> None:
    h = harness
    await populate(h)
    token = await h.token("analyst")
    cases = {
        "type=printer": {"02:00:00:00:00:bb"},
        "vendor=dell": {"02:00:00:00:00:02"},
        "os=ios": {"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:bb"},
        "q=pupil": {"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:bb"},
        "q=00:bb": {"02:00:00:00:00:bb"},
        "site=school-a&type=phone": {"02:00:00:00:00:01"},
        "randomized=false&site=school-b": {"02:00:00:00:00:bb"},
        "randomized=true": set(),
        f"since={T0 + 1}": set(),
    }
    for query, expected in cases.items():
        status, body = await h.get(f"/api/v1/devices?{query}", token)
        assert status == 200, (query, body)
        assert {d["mac"] for d in body["items"]} == expected, query
    seen = []
    offset: int | None = 0
    while offset is not None:
        status, body = await h.get(f"/api/v1/devices?limit=2&sort=mac&offset={offset}", token)
        seen += [d["mac"] for d in body["items"]]
        offset = body["next_offset"]
    assert seen == ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:bb"]
    status, body = await h.get("/api/v1/devices?limit=0", token)
    assert (status, body["field"]) == (400, "limit")
    status, body = await h.get("/api/v1/devices?randomized=maybe", token)
    assert (status, body["field"]) == (400, "randomized")


async def test_device_detail_alerts_and_top_talkers(harness: Harness) -> None:
    h = harness
    await populate(h)
    token = await h.token("analyst")
    status, body = await h.get("/api/v1/devices/school-a/02:00:00:00:00:01", token)
    assert status == 200
    assert [e["source"] for e in body["evidence"]] == ["dhcp", "oui"]
    assert body["evidence"][0]["suggests"] == {"os": "iOS"}
    assert body["names"] == [{"name": "pupil-ipad", "source": "dhcp"}]
    assert len(body["alerts"]) == 2
    assert body["traffic"]["flows"] == 20
    status, body = await h.get("/api/v1/alerts?sid=2000001", token)
    assert [a["severity"] for a in body["items"]] == [1]
    status, body = await h.get(f"/api/v1/alerts?since={T0 + 2}&until={T0 + 3}", token)
    assert [a["site"] for a in body["items"]] == ["school-a"]
    status, body = await h.get(f"/api/v1/sites/school-a/top-talkers?since={T0 - 3600}", token)
    assert status == 200
    # Gateway MAC sees every flow's bytes; device 01 sent 100+200+...+2000 and received 20*5000.
    talkers = {t["mac"]: t["bytes"] for t in body["items"]}
    assert talkers["02:00:00:00:00:01"] == sum(100 * (i + 1) for i in range(20)) + 20 * 5000
    assert talkers["02:00:00:00:00:02"] == 3 * 10 + 3 * 5000
    assert body["items"][0]["mac"] == "02:00:00:00:00:fe"
    status, body = await h.get("/api/v1/agents", token)
    agent_a = next(a for a in body["items"] if a["agent_id"] == "agent-a")
    assert agent_a["version"] == "0.1.0" and agent_a["health"]["packets"] == 1000
    assert agent_a["rejected"] == 0 and agent_a["lag"] is not None
    status, body = await h.get(f"/api/v1/agents/agent-a/health?since={T0 - 1}", token)
    assert [p["packets"] for p in body["items"]] == [1000]


async def test_every_call_is_audited_and_readable_by_admins(harness: Harness) -> None:
    h = harness
    viewer = await h.token("viewer", ["school-a"])
    admin = await h.token("admin")
    await h.get("/api/v1/devices?site=school-a", viewer)
    await h.get("/api/v1/devices?site=school-b", viewer)
    await h.get("/api/v1/sites", None)
    status, body = await h.get("/api/v1/audit", admin)
    assert status == 200
    rows = list(reversed(body["items"]))
    assert [(r["path"], r["query"], r["status"], r["role"]) for r in rows] == [
        ("/api/v1/devices", "site=school-a", 200, "viewer"),
        ("/api/v1/devices", "site=school-b", 403, "viewer"),
        ("/api/v1/sites", "", 401, None),
    ]
    assert all(r["remote"] == "127.0.0.1" for r in rows)
    assert rows[0]["token_id"] == viewer.split("_")[1]
    # The admin's own read of the audit log is itself audited.
    status, body = await h.get("/api/v1/audit?limit=1", admin)
    assert body["items"][0]["path"] == "/api/v1/audit" and body["items"][0]["role"] == "admin"


async def test_unknown_paths_and_methods_answer_json(harness: Harness) -> None:
    h = harness
    token = await h.token("analyst")
    status, body = await h.get("/api/v1/nothing-here", token)
    assert (status, body["error"]) == (404, "not_found")
    status, body = await h.get("/api/v1/ingest", None)
    assert (status, body["error"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    "path", ["/api/v1/devices?q=%00", "/api/v1/devices/a%00/b", "/api/v1/alerts?mac=%00", "/api/v1/sites?x=%00"]
)
async def test_nul_characters_are_a_400_not_a_500(harness: Harness, path: str) -> None:
    token = await harness.token("admin")
    status, body = await harness.get(path, token)
    assert status == 400, body
    assert "NUL" in body["detail"]
