"""Dashboard pages over HTTP (no browser): sessions, CSRF, audit rows, site scope, escaping, filters."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp

from collector.app import run_collector
from collector.dashboard.session import SESSION_COOKIE, safe_next

from ..collector.conftest import config_for
from .conftest import HOSTILE, Dash, hostile_device, login

PAGES = ["/", "/devices", "/devices/ecole/02:00:00:00:00:01", "/alerts", "/alerts?sid=9100001", "/agents"]


async def get(dash: Dash, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
    async with dash.h.session.get(f"{dash.url}{path}", allow_redirects=False) as resp:
        return resp.status, await resp.text(), resp


async def audit_rows(dash: Dash) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = await dash.h.store.audit_log(limit=1000)
    return rows


async def test_anonymous_visit_goes_to_login_and_is_audited(dash: Dash) -> None:
    status, _, resp = await get(dash, "/devices?type=laptop")
    assert status == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == ["/devices?type=laptop"]
    row = (await audit_rows(dash))[0]
    assert (row["path"], row["query"], row["status"], row["token_id"]) == ("/devices", "type=laptop", 303, None)
    status, page, resp = await get(dash, "/login")
    assert status == 200 and 'name="token"' in page
    row = (await audit_rows(dash))[0]
    assert (row["path"], row["status"], row["detail"]) == ("/login", 200, "dashboard login form")
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


async def test_login_sets_a_strict_httponly_cookie_and_every_view_is_audited(dash: Dash) -> None:
    token = await dash.h.token("admin")
    resp = await login(dash.h.session, dash.url, token, "/agents")
    assert resp.status == 303 and resp.headers["Location"] == "/agents"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert 0 < int(cookie["max-age"]) <= 24 * 3600
    before = len(await audit_rows(dash))
    for path in PAGES:
        status, page, resp = await get(dash, path)
        assert status == 200, (path, page[:500])
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
        assert "<script" not in page.replace(HOSTILE.replace("<", "&lt;"), "")  # no script of ours, ever
    rows = (await audit_rows(dash))[: len(PAGES)]
    assert len(await audit_rows(dash)) == before + len(PAGES)
    token_id = token.split("_")[1]
    assert [(r["path"], r["status"], r["token_id"], r["detail"]) for r in reversed(rows)] == [
        (p.split("?")[0], 200, token_id, "dashboard") for p in PAGES
    ]


async def test_bad_logins_are_refused_and_audited(dash: Dash) -> None:
    s, url = dash.h.session, dash.url
    resp = await login(s, url, "vt_nope_nope")
    assert resp.status == 401
    # No CSRF field / wrong one: refused even with a valid token.
    token = await dash.h.token("admin")
    async with s.post(f"{url}/login", data={"token": token, "csrf": "forged"}, allow_redirects=False) as r:
        assert r.status == 403 and SESSION_COOKIE not in r.cookies
    # A form posted from another origin.
    async with s.get(f"{url}/login") as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert csrf
    async with s.post(
        f"{url}/login",
        data={"token": token, "csrf": csrf.group(1)},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    ) as r:
        assert r.status == 403 and SESSION_COOKIE not in r.cookies
    details = [r["detail"] for r in await audit_rows(dash)][:5]
    assert details == [
        "dashboard login: cross-origin form",
        "dashboard login form",
        "dashboard login: bad CSRF value",
        "dashboard login: unknown or revoked token",
        "dashboard login form",
    ]


async def test_viewer_sees_only_their_site(dash: Dash) -> None:
    viewer = await dash.h.token("viewer", ["mairie"])
    assert (await login(dash.h.session, dash.url, viewer)).status == 303
    status, page, _ = await get(dash, "/devices/ecole/02:00:00:00:00:01")
    assert status == 404 and "02:00:00:00:00:01" in page and "Dell" not in page
    status, _, _ = await get(dash, "/devices/mairie/02:00:00:00:ee:01")
    assert status == 200
    status, page, _ = await get(dash, "/devices?site=ecole")
    assert status == 403 and "No access to this site" in page and "PC-0001" not in page
    status, page, _ = await get(dash, "/devices")
    assert "02:00:00:00:ee:01" in page and "ecole" not in page and "PC-0001" not in page
    status, page, _ = await get(dash, "/alerts?sid=2100498")
    assert status == 200 and "1:2100498" not in page
    status, page, _ = await get(dash, "/")
    assert "agent-ecole" not in page and ">ecole<" not in page and "mairie" in page
    status, page, _ = await get(dash, "/agents")
    assert "agent-mairie" in page and "agent-ecole" not in page
    rows = await audit_rows(dash)
    assert (rows[-0]["path"], rows[0]["status"], rows[0]["role"]) == ("/agents", 200, "viewer")
    assert any(r["path"] == "/devices/ecole/02:00:00:00:00:01" and r["status"] == 404 for r in rows)


async def test_everything_from_agents_is_escaped(dash: Dash) -> None:
    token = await dash.h.token("analyst")
    await login(dash.h.session, dash.url, token)
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    for path in ("/devices", "/devices/mairie/02:00:00:00:ee:01", "/alerts?sid=9100001"):
        status, page, _ = await get(dash, path)
        assert status == 200
        assert HOSTILE not in page, path
        assert escaped in page, path


async def test_logout_needs_the_session_csrf_and_ends_the_session(dash: Dash) -> None:
    token = await dash.h.token("admin")
    await login(dash.h.session, dash.url, token)
    status, page, _ = await get(dash, "/")
    csrf = re.search(r'action="/logout".*?name="csrf" value="([0-9a-f]+)"', page, re.S)
    assert status == 200 and csrf
    async with dash.h.session.post(f"{dash.url}/logout", data={"csrf": "0" * 64}, allow_redirects=False) as r:
        assert r.status == 403
    assert (await get(dash, "/"))[0] == 200
    async with dash.h.session.post(f"{dash.url}/logout", data={"csrf": csrf.group(1)}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/login"
    assert (await get(dash, "/"))[0] == 303


async def test_revoking_a_token_ends_its_sessions(dash: Dash) -> None:
    token = await dash.h.token("admin")
    await login(dash.h.session, dash.url, token)
    assert (await get(dash, "/devices"))[0] == 200
    assert await dash.h.store.revoke_token(token.split("_")[1], time.time())
    status, _, resp = await get(dash, "/devices")
    assert status == 303 and resp.headers["Location"].startswith("/login")


async def test_devices_filters_sort_and_pages_on_the_server(dash: Dash) -> None:
    await login(dash.h.session, dash.url, await dash.h.token("analyst"))

    async def macs(query: str) -> tuple[list[str], str]:
        status, page, _ = await get(dash, f"/devices?{query}")
        assert status == 200, page[:300]
        return re.findall(r'<a href="/devices/[^/"]+/[^"]+">([0-9a-f:]{17})</a>', page), page

    found, page = await macs("site=ecole")
    assert len(found) == 50 and "1–50 of 60" in page and "page 1 of 2" in page
    found, page = await macs("site=ecole&page=2")
    assert len(found) == 10 and "51–60 of 60" in page
    found, _ = await macs("sort=mac&site=ecole")
    assert found == sorted(found) and found[0] == "02:00:00:00:00:01"
    found, _ = await macs("type=printer")
    assert len(found) == 12  # i % 5 == 3 for i in 1..60
    found, _ = await macs("randomized=yes")
    assert len(found) == 6  # i % 10 == 0
    found, _ = await macs("vendor=apple&type=laptop")
    assert found == sorted({f"02:00:00:00:00:{i:02x}" for i in range(1, 61) if i % 5 == 0 and i % 3 == 0}, reverse=True)
    found, _ = await macs("q=PC-0042")
    assert found == ["02:00:00:00:00:2a"]
    status, page, _ = await get(dash, "/devices?sort=drop%20table&page=abc")
    assert (
        status == 200
        and "sort: &#39;drop table&#39; is not a column" in page
        and "page: &#39;abc&#39; is not a number" in page
    )


async def test_device_page_explains_its_conclusions(dash: Dash) -> None:
    await login(dash.h.session, dash.url, await dash.h.token("analyst"))
    status, page, _ = await get(dash, "/devices/ecole/02:00:00:00:00:01")
    assert status == 200
    why = page.split("Why Veille thinks so")[1].split("Names and addresses")[0]
    assert "OS: Windows" in why and "dhcp_vendor_class" in why
    # The Linux user agent contradicts the Windows conclusion and is shown as such.
    assert re.search(r'class="against">.*http_user_agent', why, re.S)
    assert "t13d1516h2_8daaf6152771_e5627efa2ab1" in page  # fingerprints
    assert "GPL ATTACK_RESPONSE" in page  # its alert


async def test_overview_and_agents_highlight_drops(dash: Dash) -> None:
    await login(dash.h.session, dash.url, await dash.h.token("admin"))
    status, page, _ = await get(dash, "/")
    assert status == 200
    rows = page.split("Agents needing attention")[1].split("<tr")
    ecole = next(r for r in rows if ">agent-ecole<" in r)
    mairie = next(r for r in rows if ">agent-mairie<" in r)
    # ecole's series has drops from its 21st report: 7 * 10 = 70 packets dropped at the last one.
    assert 'class="row-bad"' in ecole and "70 packets dropped" in ecole and "dropped" not in mairie
    # The harness dates its batches 2023 (T0): both show the lag between creation and arrival.
    assert "lag " in ecole and "lag " in mairie
    status, page, _ = await get(dash, "/agents?window=1h")
    assert status == 200
    section = page.split('id="agent-agent-ecole"')[1].split("</section>")[0]
    assert "30 health reports in the window" in section and "packets/s" in section and '<path d="M' in section
    assert "last 500" in section  # 30,000 packets a minute


def test_safe_next_keeps_redirects_on_the_collector() -> None:
    assert safe_next("/devices?q=1") == "/devices?q=1"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None, "devices"):
        assert safe_next(bad) == "/"


async def test_device_links_work_for_any_site_name(dash: Dash) -> None:
    odd = await dash.h.agent("école/annexe #2?", "agent-odd")
    await dash.h.send(odd, [hostile_device()])
    await login(dash.h.session, dash.url, await dash.h.token("analyst"))
    status, page, _ = await get(dash, "/devices?q=ee:01&sort=site")
    links = re.findall(r'<a href="(/devices/[^"]+)">02:00:00:00:ee:01</a>', page)
    assert status == 200 and len(links) == 2, page[-2000:]
    odd_link = next(link for link in links if "annexe" in link)
    assert odd_link == "/devices/%C3%A9cole%2Fannexe%20%232%3F/02%3A00%3A00%3A00%3Aee%3A01"
    status, page, _ = await get(dash, odd_link)
    assert status == 200 and "école/annexe #2?" in page


async def test_dashboard_can_be_turned_off(tmp_path: Path) -> None:
    config = dataclasses.replace(config_for(str(tmp_path / "c.db")), dashboard=False)
    async with run_collector(config) as running, aiohttp.ClientSession() as session:
        for path in ("/", "/login", "/devices"):
            async with session.get(f"{running.url}{path}", allow_redirects=False) as resp:
                assert resp.status == 404, path
        async with session.get(f"{running.url}/healthz") as resp:
            assert resp.status == 200


async def test_no_query_string_makes_a_page_fail(dash: Dash) -> None:
    """Random and hostile values for every parameter of every page: an answer, never a 500."""
    import random
    from urllib.parse import quote

    await login(dash.h.session, dash.url, await dash.h.token("viewer", ["mairie"]))
    rng = random.Random(20260907)
    names = ["q", "site", "type", "vendor", "os", "randomized", "sort", "page", "window", "severity", "sid", "mac"]
    values = [
        "",
        "0",
        "-1",
        "1e309",
        str(2**70),
        "nan",
        "yes",
        "ecole",
        "mairie",
        "%",
        "_",
        "'",
        '"',
        "\\",
        "\x00",
        "é" * 300,
        "x" * 5000,
        "{like}",
        "?",
        "a b",
        "<b>",
        "1;DROP TABLE devices",
    ]
    paths = ["/", "/devices", "/alerts", "/agents", "/devices/mairie/02:00:00:00:ee:01"]
    statuses: dict[int, int] = {}
    for _ in range(300):
        params = "&".join(
            f"{quote(rng.choice(names))}={quote(rng.choice(values), safe='')}" for _ in range(rng.randint(1, 4))
        )
        path = rng.choice(paths)
        if path == "/devices/mairie/02:00:00:00:ee:01" and rng.random() < 0.5:
            path = f"/devices/{quote(rng.choice(values), safe='')}/{quote(rng.choice(values), safe='')}"
        status, page, _ = await get(dash, f"{path}?{params}")
        statuses[status] = statuses.get(status, 0) + 1
        assert status in (200, 403, 404), (params, page[:500])
    print(f"\nfuzzed dashboard queries, answers by status: {dict(sorted(statuses.items()))}")
    assert statuses.get(200, 0) > 100 and statuses.get(403, 0) > 0 and statuses.get(404, 0) > 0
