"""The dashboard in a real browser (Debian's chromium driven by Playwright): sign in with a pasted
token, see the empty states, post an event through the events API, see the region's figure change
without a reload, see a person's post fill the roles donut, see the reconnecting state, switch
languages (labels of event types, talent groups and post roles in both), and keep screenshots."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from common.testing.plugin import wait_until
from support import EVENTS, TALENT, event_data, event_message, free_port, person_message, prepare, running_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[1] / "output"
VENDOR = Path(__file__).resolve().parents[2] / "src/reporting/static/dashboard/vendor/echarts.min.js"
PROVINCE = "630000"  # Qinghai: nothing else in these tests records an event there
PARTNER_PROVINCE = "540000"  # Tibet: signs the partner test's agreements
# Collects every Content-Security-Policy violation of the page (init scripts run before the page's own).
WATCH_CSP = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def watch_console(page) -> list[str]:
    """The page's console errors and warnings (a CSP violation is reported there too)."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))
    return seen


async def assert_fits_the_window(page) -> None:  # type: ignore[no-untyped-def]
    """Nothing sticks out on the right (a wide table scrolls in its own box, the panels shrink to the window)."""
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"


def assert_dashboard_policy(headers: dict[str, str]) -> None:
    policy = headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"], policy  # no inline script, no eval
    assert directives["default-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"], policy
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


@pytest.fixture(autouse=True)
def browser_and_assets_installed() -> None:
    """Missing pieces fail loudly: a skipped browser test would hide a broken setup (`make test` installs both)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run deploy/local/chromium.sh")
    if not VENDOR.exists():
        pytest.fail("ECharts is missing: run deploy/local/reporting-assets.sh")


class ServiceProcess:
    """A real upstream service (`events`, `partners`), run as its own process (reporting never imports it)."""

    def __init__(self, name: str, database_url: str, bootstrap: str, prefix: str, secret: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        upper = name.upper()
        self.env = {
            **os.environ,
            f"{upper}_DATABASE_URL": database_url,
            f"{upper}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            f"{upper}_TOPIC_PREFIX": prefix,
            f"{upper}_JWT_SECRET": secret,
            f"{upper}_ENVIRONMENT": "test",
            **{f"{upper}_{key.upper()}": value for key, value in env.items()},
        }
        self.cli = str(Path(sys.executable).parent / name)
        self.available = Path(self.cli).exists()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> bool:
        if not self.available:
            return False
        migrate = await asyncio.create_subprocess_exec(self.cli, "migrate", env=self.env)
        if await migrate.wait() != 0:
            return False
        self.process = await asyncio.create_subprocess_exec(
            self.cli, "serve", "--port", str(self.port), env=self.env, stderr=asyncio.subprocess.DEVNULL
        )

        async def up() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(self.url + "/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            await wait_until(up, 30)
        except AssertionError:
            return False
        return True

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)


async def test_dashboard_updates_live_in_a_real_browser(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    from playwright.async_api import async_playwright, expect

    prefix = f"{topic_prefix}dash."
    settings = await prepare(make_database, "rep_dash", kafka_bootstrap, prefix, jwt_secret)
    events = ServiceProcess("events", await make_database("ev_dash"), kafka_bootstrap, prefix, jwt_secret)
    events_ready = await events.start()
    reader = token("hq", "HQ", "reporting:read")
    OUTPUT.mkdir(exist_ok=True)
    try:
        async with running_service(settings, reader) as service, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            external = [r.url for r in []]
            page.on("request", lambda r: external.append(r.url) if not r.url.startswith(service.base_url) else None)
            console = watch_console(page)
            await page.add_init_script(WATCH_CSP)
            loaded = await page.goto(service.base_url + "/dashboard/")
            assert loaded is not None
            assert_dashboard_policy(await loaded.all_headers())
            await page.get_by_test_id("token").fill(reader)
            await page.get_by_test_id("signin").click()
            await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=15000)
            cell = page.get_by_test_id(f"cell-cn:{PROVINCE}-events.count")
            await expect(cell).to_have_text("0")
            # Nothing recorded yet: every chart says so instead of drawing empty axes or a grey ring.
            for chart in ("chart-regions", "chart-trend", "chart-roles"):
                await expect(page.get_by_test_id(f"empty-{chart}")).to_have_text("暂无数据")
                await expect(page.get_by_test_id(f"empty-{chart}")).to_be_visible()
            await expect(page.get_by_test_id("as-of")).to_have_text(re.compile(r"^更新于 \d{1,2}:\d{2}:\d{2}$"))
            await expect(page.get_by_test_id("target-people")).to_contain_text("/ 10,000")  # thousands separators
            await page.screenshot(path=str(OUTPUT / "dashboard-empty.png"), full_page=True)
            await page.evaluate("window.__sameDocument = true")
            await page.evaluate(
                """() => { window.__states = [];
                new MutationObserver(() => window.__states.push(document.getElementById('status').dataset.state))
                  .observe(document.getElementById('status'), {attributes: true}); }"""
            )

            if events_ready:
                body = {
                    "external_ref": f"dash-{uuid.uuid4().hex[:8]}",
                    "title": "青海国际科技论坛",
                    "type": "forum",
                    "start_date": f"{datetime.now(UTC).year}-06-01",
                    "end_date": f"{datetime.now(UTC).year}-06-02",
                    "host_country": "CN",
                    "host_province": PROVINCE,
                    "city": "Xining",
                    "participants": 250,
                    "foreign_participants": 40,
                    "papers": 12,
                    "countries": ["DE", "KZ"],
                }
                async with httpx.AsyncClient(base_url=events.url) as client:
                    response = await client.post(
                        "/v1/events", json=body, headers={"Authorization": token("province", PROVINCE, "events:write")}
                    )
                assert response.status_code == 201, response.text
            else:  # the events service could not start here: publish what it would have published
                warning = "events service unavailable: produced an exchange.event.recorded CloudEvent instead"
                warnings.warn(warning, stacklevel=1)
                await service.producer.send(
                    EVENTS, event_message(event_data(host_province=PROVINCE, organizer=("province", PROVINCE)))
                )

            await expect(cell).to_have_text("1", timeout=15000)
            await expect(page.get_by_test_id(f"cell-cn:{PROVINCE}-events.participants")).to_have_text(
                "250" if events_ready else "100"
            )
            assert await page.evaluate("window.__sameDocument === true")  # updated in place, no reload
            await expect(page.get_by_test_id("empty-chart-regions")).to_be_hidden()
            await expect(page.get_by_test_id("empty-chart-trend")).to_be_hidden()
            await expect(page.get_by_test_id("empty-chart-roles")).to_be_visible()  # still no posts

            # The detail view (region "all" is selected) labels event types, talent groups and post roles.
            detail = page.get_by_test_id("detail")
            await expect(page.get_by_test_id("detail-events.by_type.forum")).to_have_text("1")
            for text in (
                "活动（按类型）",
                "论坛",
                "来访团组",
                "人才（按群体）",
                "青少年",
                "国际任职（按职务）",
                "秘书长",
            ):
                await expect(detail).to_contain_text(text)
            assert not re.search(r"delegation_in|young_scientist|secretary_general|by_type", await detail.inner_text())

            # A person holding a post: the roles donut fills; a group this page has no label for reads well.
            post = {
                "organization": "WFEO",
                "organization_country": "FR",
                "role": "secretary_general",
                "start_date": f"{datetime.now(UTC).year - 1}-01-01",
                "end_date": None,
            }
            person = person_message(
                str(uuid.uuid4()), groups=["youth", "returnee_scholar"], province="310000", posts=[post]
            )
            await service.producer.send(TALENT, person)
            await expect(page.get_by_test_id("detail-talent.posts_by_role.secretary_general")).to_have_text(
                "1", timeout=15000
            )
            await expect(page.get_by_test_id("empty-chart-roles")).to_be_hidden()
            await expect(page.locator("#detail dt", has_text="Returnee scholar")).to_have_count(1)

            # An event three years back: the trend keeps every year between on its axis (a gap keeps its
            # width), draws straight segments and nothing below zero.
            year = datetime.now(UTC).year
            earlier = event_data(
                start_date=f"{year - 3}-05-10", host_province=PROVINCE, organizer=("province", PROVINCE)
            )
            await service.producer.send(EVENTS, event_message(earlier))
            await expect(page.get_by_test_id("total-events.count")).to_have_text("2", timeout=15000)
            trend = """() => { const o = echarts.getInstanceByDom(document.getElementById('chart-trend')).getOption();
                return {years: o.xAxis[0].data, min: o.yAxis[0].min, smooth: o.series.map((s) => s.smooth),
                        events: o.series[0].data}; }"""

            async def trend_has_every_year() -> bool:
                return (await page.evaluate(trend))["years"] == [str(y) for y in range(year - 3, year + 1)]

            await wait_until(trend_has_every_year, 15)
            drawn = await page.evaluate(trend)
            assert drawn["events"] == [1, 0, 0, 1] and drawn["min"] == 0 and drawn["smooth"] == [False, False], drawn
            await page.wait_for_timeout(1000)  # the charts redraw at most twice a second
            await assert_fits_the_window(page)
            await page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

            # The stream drops (e.g. a restart): the page says so and comes back by itself.
            broadcaster = service.app.state.broadcaster

            async def page_subscribed() -> bool:  # not between two connections of its own
                return broadcaster.subscribers > 0

            await wait_until(page_subscribed, 15)
            for sub in list(broadcaster._subscribers):
                broadcaster._drop(sub)
            await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=15000)
            states = await page.evaluate("window.__states")
            assert "reconnecting" in states, (states, console, await page.evaluate("window.__csp"))

            await page.get_by_test_id("lang").click()
            await expect(page.locator("h1")).to_have_text("International S&T exchange · live overview")
            await expect(page.get_by_test_id("status")).to_have_text("Live")
            await expect(page.locator("#targets")).to_contain_text("Partner organizations")  # every label switches
            for text in ("Events by type", "Forum", "Incoming delegation", "People by group", "Youth", "Posts by role"):
                await expect(detail).to_contain_text(text)
            await expect(page.locator("#detail dt", has_text="Secretary-general")).to_have_count(1)
            await expect(page.locator("#detail dt", has_text="Returnee scholar")).to_have_count(1)
            await expect(page.get_by_test_id("as-of")).to_have_text(re.compile(r"^Updated \d{1,2}:\d{2}:\d{2}$"))
            # Clicking a region with no posts: the donut says so, in the page's language.
            await page.locator(f'tr[data-region="cn:{PROVINCE}"]').click()
            await expect(page.get_by_test_id("detail")).to_contain_text("Qinghai")
            await expect(page.get_by_test_id("empty-chart-roles")).to_have_text("No data yet")
            await expect(page.get_by_test_id("empty-chart-roles")).to_be_visible()
            await expect(page.get_by_test_id("empty-chart-trend")).to_be_hidden()  # its event is there
            await assert_fits_the_window(page)
            await page.screenshot(path=str(OUTPUT / "dashboard-en.png"), full_page=True)

            # Sorting by a column puts the province with the most events first.
            await page.locator('th[data-key="events.count"]').click()
            await page.locator('th[data-key="events.count"]').click()
            first = page.locator("tbody tr").first
            await expect(first).to_have_attribute("data-region", f"cn:{PROVINCE}")
            assert not external, f"the dashboard fetched from elsewhere: {external}"
            await page.locator("#chart-regions canvas").hover()  # a tooltip: ECharts writes its markup
            await page.wait_for_timeout(300)
            assert await page.evaluate("window.__csp") == []
            csp_messages = [m for m in console if "Content Security Policy" in m]
            assert not csp_messages, csp_messages
            await browser.close()
    finally:
        await events.stop()
    assert events_ready, "the events service did not start; the CloudEvent fallback was used"


async def test_partner_panels_show_what_the_partners_service_published(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token, tmp_path
):
    """Organizations and agreements posted to the real partners service (a merge and a termination
    among them) reach the dashboard's totals, its province row and its plan targets."""
    from playwright.async_api import async_playwright, expect

    prefix = f"{topic_prefix}dashpa."
    settings = await prepare(make_database, "rep_dash_pa", kafka_bootstrap, prefix, jwt_secret)
    partners = ServiceProcess(
        "partners",
        await make_database("pa_dash"),
        kafka_bootstrap,
        prefix,
        jwt_secret,
        documents_dir=str(tmp_path / "documents"),
    )
    assert await partners.start(), "the partners service did not start"
    admin = {"Authorization": token("hq", "HQ", "partners:write", "admin")}
    signer = {"Authorization": token("province", PARTNER_PROVINCE, "partners:write")}
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the association's day, as both services count
    try:
        async with httpx.AsyncClient(base_url=partners.url, timeout=30) as client:

            async def register(name: str, country: str | None, kind: str = "academy") -> str:
                body = {"name": name, "country": country, "kind": kind}
                response = await client.post("/v1/partners/organizations", json=body, headers=admin)
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

            async def sign(ref: str, partner_ids: list[str], expires_on: date | None) -> str:
                body = {
                    "external_ref": ref,
                    "title": "Memorandum of understanding",
                    "kind": "mou",
                    "partner_org_ids": partner_ids,
                    "signed_on": (today - timedelta(days=30)).isoformat(),
                    "expires_on": expires_on.isoformat() if expires_on else None,
                }
                response = await client.post("/v1/partners/agreements", json=body, headers=signer)
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

            german = await register("Deutsche Akademie der Technikwissenschaften", "DE")
            french = await register("Académie des technologies", "FR")
            japanese = await register("Engineering Academy of Japan", "JP")
            await register("World Federation of Engineering Organizations", None, "international_org")
            duplicate = await register("acatech (German National Academy)", "DE")
            merged = await client.post(
                f"/v1/partners/organizations/{german}/merge", json={"duplicate_id": duplicate}, headers=admin
            )
            assert merged.status_code == 200, merged.text
            await sign("DASH-1", [german, french], today + timedelta(days=60))  # expiring within 90 days
            await sign("DASH-2", [japanese], today + timedelta(days=5 * 365))
            ended = await sign("DASH-3", [german], None)
            terminated = await client.post(
                f"/v1/partners/agreements/{ended}/terminate", json={"reason": "superseded"}, headers=signer
            )
            assert terminated.status_code == 200, terminated.text

        reader = token("hq", "HQ", "reporting:read")
        async with running_service(settings, reader) as service, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            console = watch_console(page)
            await page.goto(service.base_url + "/dashboard/")
            await page.get_by_test_id("token").fill(reader)
            await page.get_by_test_id("signin").click()
            await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=15000)
            # Four organizations count (the merged duplicate does not), in three countries (the
            # international one has none); three agreements signed, two in force, one due for renewal.
            await expect(page.get_by_test_id("total-partners.organizations")).to_have_text("4", timeout=30000)
            await expect(page.get_by_test_id("total-partners.agreements_active")).to_have_text("2", timeout=30000)
            row = f"cell-cn:{PARTNER_PROVINCE}-partners"
            for figure, value in (
                ("agreements_signed", "3"),
                ("agreements_active", "2"),
                ("agreements_expiring_90d", "1"),
                ("countries", "3"),
            ):
                await expect(page.get_by_test_id(f"{row}.{figure}")).to_have_text(value, timeout=30000)
            # The plan targets: partners are organizations party to an agreement in force (DE, FR, JP).
            for key, value, target in (("partners", 3, 150), ("agreements", 3, 120), ("organizations", 4, 300)):
                await expect(page.get_by_test_id(f"target-{key}")).to_have_text(
                    re.compile(rf"^{value}\s*/ {target}$"), timeout=30000
                )
            await page.get_by_test_id("lang").click()
            await expect(page.locator("#targets")).to_contain_text("Partner organizations")
            await expect(page.get_by_test_id("target-partners")).to_have_text(re.compile(r"^3\s*/ 150$"))
            OUTPUT.mkdir(exist_ok=True)
            await assert_fits_the_window(page)
            await page.screenshot(path=str(OUTPUT / "dashboard-partners.png"), full_page=True)
            assert not [m for m in console if m.startswith("pageerror")], console
            await browser.close()
    finally:
        await partners.stop()


HOSTILE = '<img src=x onerror="window.__xss=1">'


async def test_values_from_the_api_are_shown_as_text_never_run(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    """A region code, a region name and a target key holding markup: shown literally, nothing parsed as HTML."""
    import json

    from playwright.async_api import async_playwright, expect

    settings = await prepare(
        make_database, "rep_dash_xss", kafka_bootstrap, f"{topic_prefix}dashxss.", jwt_secret, consumer_enabled=False
    )
    reader = token("hq", "HQ", "reporting:read")
    region = {"code": HOSTILE, "name": HOSTILE, "name_zh": HOSTILE, "kind": "province"}
    figures = {"region": HOSTILE, "year": None, "as_of": None, "events": {"count": 7}}
    target = {"key": HOSTILE, "value": 1, "target": 2, "progress": 0.5}
    bodies = {
        "/v1/regions": {"items": [region], "next_cursor": None},
        "/v1/metrics": {"year": None, "regions": [figures]},
        "/v1/targets": {"year": None, "targets": [target]},
    }

    async def hostile(route) -> None:
        path = route.request.url.split("?")[0].removeprefix(service.base_url)
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(bodies[path]))

    async with running_service(settings, reader) as service, async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1440, "height": 900})
        for path in bodies:
            await page.route(f"{service.base_url}{path}", hostile)
            await page.route(f"{service.base_url}{path}?*", hostile)
        await page.goto(service.base_url + "/dashboard/")
        await page.get_by_test_id("token").fill(reader)
        await page.get_by_test_id("signin").click()
        await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=15000)
        await expect(page.locator("#targets")).to_contain_text(HOSTILE)
        await expect(page.locator("tbody tr")).to_have_count(1)
        await expect(page.locator("tbody td").first).to_have_text(HOSTILE)
        await expect(page.locator("tbody tr")).to_have_attribute("data-region", HOSTILE)
        assert await page.locator("#targets img, #regions img, #detail img, #totals img").count() == 0
        assert await page.evaluate("window.__xss") is None
        await browser.close()


async def test_a_link_with_the_token_in_its_fragment_signs_in_and_leaves_the_address_bar(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    """`make run` prints /dashboard/#token=…: the fragment never reaches the server, the page keeps the token
    and takes it out of the address bar (and so out of the history and of a copied link)."""
    from playwright.async_api import async_playwright, expect

    settings = await prepare(make_database, "rep_link", kafka_bootstrap, f"{topic_prefix}link.", jwt_secret)
    header = token("hq", "HQ", "reporting:read")
    reader = header.removeprefix("Bearer ")
    async with running_service(settings, header) as service, async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url))
        await page.add_init_script(WATCH_CSP)
        await page.goto(f"{service.base_url}/dashboard/#token={reader}")
        await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=15000)
        assert page.url == f"{service.base_url}/dashboard/"
        assert await page.evaluate("localStorage.getItem('reporting.token')") == reader
        assert not [url for url in sent if reader in url]  # in no request's address (only in the header)
        assert await page.evaluate("window.__csp") == []
        await browser.close()
