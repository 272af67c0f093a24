"""`make run`'s script (deploy/local/run.py) on SQLite with the real broker: it migrates and starts the
four services, loads the demo dataset (at a tenth of its size), which reaches the reporting service's
figures through Kafka; a second copy is refused while the ports are taken; SIGTERM stops every service it
started; started again on the same files it loads the dataset again and adds nothing."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "deploy" / "local" / "run.py")]
BASE_PORTS = (8001, 8002, 8003, 8004)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _free_offset() -> int:
    for offset in range(10_000, 12_000, 100):
        if all(_free(port + offset) for port in BASE_PORTS):
            return offset
    raise AssertionError("no four free ports for the services")


class Lines:
    """The process's output, line by line, read on a thread (so waiting for a line can time out)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=lambda: [*map(self._queue.put, stream), self._queue.put(None)], daemon=True).start()

    def until(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; output so far:\n{''.join(self.seen)}")

    def next(self, timeout: float = 10) -> str:
        line = self._queue.get(timeout=timeout)
        assert line is not None, "".join(self.seen)
        self.seen.append(line)
        return line


def _token(env: dict[str, str], kind: str, code: str, scopes: str) -> str:
    """A token as `make run` mints them (run in its environment, so with the same signing key)."""
    script = "import sys; sys.path.insert(0, 'deploy/local'); from run import token; print(token(*sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", script, kind, code, scopes],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _figures(reporting: str, token: str) -> dict[str, int]:
    answer = httpx.get(f"{reporting}/v1/metrics/regions/all", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {
        "events": body["events"]["count"],
        "organizations": body["partners"]["organizations"],
        "agreements": body["partners"]["agreements_signed"],
        "persons": body["talent"]["persons"],
    }


def _counts(line: str) -> dict[str, int]:
    """`demo events: events created: 230, events unchanged: 0` → {"events created": 230, …}."""
    return {k.strip(): int(v) for k, v in (part.rsplit(":", 1) for part in line.split(": ", 1)[1].split(", "))}


# A tenth of the dataset: 230 events, 15 organizations, 12 agreements, 1,000 people
# (tests/deploy/test_demo_data.py checks the counts); the screenshots in docs/screenshots/ are this run's.
SCALE = float(os.environ.get("DEMO_SCALE") or 0.1)
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PROVINCE = "630000"  # Qinghai


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "local" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return module


async def _shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A screenshot of the window, after checking nothing sticks out on the right of it."""
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{name}: the page is {widths[0]} px wide in a {widths[1]} px window"
    await page.screenshot(path=str(SCREENSHOTS / name))


async def _look_at_the_dashboard(reporting: str, events: str, link: str, province_token: str, persons: int) -> None:
    """The dashboard as people see it, through the signed-in link: after the demo load, after a live change
    (a province posts an event), each in Chinese and in English, none wider than the window; the screenshots go
    to test-output/screenshots/."""
    from playwright.async_api import async_playwright, expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1440, "height": 900})
        await page.goto(link)
        await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live", timeout=20000)
        assert "#token" not in page.url
        # The talent panel shows the demo's pools (the totals card of people in the pools).
        await expect(page.get_by_test_id("total-talent.persons")).to_have_text(f"{persons:,}", timeout=20000)
        await expect(page.get_by_test_id("empty-chart-regions")).to_be_hidden()
        await page.wait_for_timeout(1500)  # the charts' entry animation
        await _shoot(page, "dashboard-zh.png")
        await page.get_by_test_id("lang").click()
        await expect(page.locator("h1")).to_have_text("International S&T exchange · live overview")
        await page.wait_for_timeout(1500)
        await _shoot(page, "dashboard-en.png")
        await page.get_by_test_id("lang").click()
        await expect(page.locator("h1")).to_have_text("国际科技交流 · 实时概览")

        cell = page.get_by_test_id(f"cell-cn:{PROVINCE}-events.count")
        before = int((await cell.inner_text()).replace(",", ""))
        body = {
            "external_ref": f"live-{uuid.uuid4().hex[:8]}",
            "title": "青海国际科技论坛",
            "type": "forum",
            "start_date": f"{date.today().year}-06-01",
            "end_date": f"{date.today().year}-06-02",
            "host_province": PROVINCE,
            "participants": 2500,
            "foreign_participants": 400,
            "papers": 120,
            "countries": ["DE", "KZ"],
        }
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{events}/v1/events", json=body, headers={"Authorization": f"Bearer {province_token}"}
            )
        assert answer.status_code == 201, answer.text
        await expect(cell).to_have_text(f"{before + 1:,}", timeout=20000)  # live, no reload
        await page.locator(f'tr[data-region="cn:{PROVINCE}"]').click()
        await page.evaluate("window.scrollTo(0, 0)")  # the click scrolled to the row; the charts are on top
        await page.wait_for_timeout(1500)
        await _shoot(page, "dashboard-zh-live.png")
        await page.get_by_test_id("lang").click()
        await expect(page.locator("h1")).to_have_text("International S&T exchange · live overview")
        await page.wait_for_timeout(1500)
        await _shoot(page, "dashboard-en-live.png")
        await browser.close()


@pytest.mark.timeout(600)  # the waits below add up to more than the suite's default of 300 s
def test_make_run_starts_everything_refuses_a_second_copy_and_stops_on_sigterm(tmp_path, kafka_bootstrap, topic_prefix):
    offset = _free_offset()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EXCHANGE_", "EVENTS_", "REPORTING_", "PARTNERS_", "TALENT_"))
        },
        "EXCHANGE_RUN_DIR": str(tmp_path),
        "EXCHANGE_PORT_OFFSET": str(offset),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": f"{topic_prefix}run.",
        # Its own consumer group: a developer's `make run` on the same broker is not rebalanced.
        "REPORTING_CONSUMER_GROUP": f"{topic_prefix}run.reporting",
        "EXCHANGE_DEMO_SCALE": str(SCALE),
    }
    data = _demo().generate(scale=SCALE)
    expected = {
        "events": data.event_count,
        "organizations": len(data.organizations),
        "agreements": len(data.agreements),
        "persons": data.people_count,
    }
    first = subprocess.Popen(RUN, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = Lines(first)
        partners = _counts(output.until("demo partners:", timeout=180))
        assert partners == {
            "organizations created": expected["organizations"],
            "agreements created": expected["agreements"],
        }
        events = _counts(output.until("demo events:", timeout=120))
        assert events == {"events created": expected["events"]}, events
        talent = output.until("demo talent:", timeout=120)
        assert f"people created: {data.people_count}" in talent, talent
        output.until("The dashboard, signed in", timeout=30)
        link = output.next().strip()
        output.until("A read token for the dashboard", timeout=30)
        token = output.next().strip()
        assert link.endswith(f"/dashboard/#token={token}")
        assert {p.name for p in tmp_path.iterdir()} >= {"events.db", "reporting.db", "logs", "run.pids"}

        # The demo dataset reaches the reporting service's figures through Kafka.
        reporting = f"http://127.0.0.1:{8004 + offset}"
        deadline, figures = time.monotonic() + 90, None
        while time.monotonic() < deadline and figures != expected:
            figures = _figures(reporting, token)
            time.sleep(0.5)
        assert figures == expected
        # The printed token reads, and nothing more (no admin).
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["scope"] == "reporting:read", claims
        province = _token(env, "province", PROVINCE, "events:write")
        asyncio.run(
            _look_at_the_dashboard(reporting, f"http://127.0.0.1:{8002 + offset}", link, province, expected["persons"])
        )
        expected["events"] += 1  # the live change
        assert _figures(reporting, token) == expected

        second = subprocess.run(RUN, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "port(s) in use" in second.stdout + second.stderr
        assert first.poll() is None  # the refused copy did not disturb the running one

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0  # stopped as on Ctrl-C, not killed by the signal
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(_free(p + offset) for p in BASE_PORTS):
            time.sleep(0.3)
        assert all(_free(p + offset) for p in BASE_PORTS), "a service still answers after SIGTERM"
        assert not (tmp_path / "run.pids").exists()

        # Started again on the same files: the demo load finds everything there and adds nothing.
        again = subprocess.Popen(RUN, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output = Lines(again)
            partners = _counts(output.until("demo partners:", timeout=180))
            assert partners == {
                "organizations existing": expected["organizations"],
                "agreements existing": expected["agreements"],
            }
            events = _counts(output.until("demo events:", timeout=120))
            assert events == {"events unchanged": data.event_count}, events
            talent = output.until("demo talent:", timeout=120)
            assert f"people unchanged: {data.people_count}" in talent, talent
            output.until("A read token for the dashboard", timeout=60)
            token = output.next().strip()
            time.sleep(3)  # anything the second load had published would have reached reporting by now
            assert _figures(reporting, token) == expected
        finally:
            again.send_signal(signal.SIGTERM)
            again.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        subprocess.run([*RUN, "stop"], env=env, cwd=ROOT, capture_output=True, timeout=30)
