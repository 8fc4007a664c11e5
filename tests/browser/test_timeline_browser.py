"""A real browser on the timeline page: headless Chromium (Debian's, driven by Playwright) loads
`/` from `policy-timeline serve --demo` (gunicorn gthread workers and the scheduler, on a free
loopback port), sees the timeline and the headline figure, sees an event appended over the
API appear through the live feed without a reload, moves the knowledge-time control and sees
the figure change; screenshots go to test-artifacts/ (desktop and phone width).

Chromium must be installed (`.ci/run` installs Debian's package): without it this test fails,
it does not skip. Playwright's own browser downloads are never used."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: the demo's approval of H200 sales to China (2025-12-08)
APPROVAL_ID = "b2a013f4-9fe0-4f49-ac14-1d5093b2f12b"
APPROVED_ON = date(2025, 12, 8)
PURCHASED_ON = date(2026, 1, 20)
WAIT_MS = 20_000


def chromium() -> str:
    """Debian's Chromium, or a clear failure (never a silent skip)."""
    found = os.environ.get("POLICY_TIMELINE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (.ci/run does it before `make test`)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`policy-timeline serve --demo` on a free port: {"url", "token"}."""
    folder = tmp_path_factory.mktemp("browser")
    port = free_port()
    script = Path(sys.executable).parent / "policy-timeline"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
    log = open(folder / "serve.log", "w+")  # noqa: SIM115 - read back on failure
    process = subprocess.Popen(
        [*command, "serve", "--demo", "--db", str(folder / "demo.db"), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        token = None
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            match = re.search(r"admin token: (\S+)", log.read())
            if match:
                token = match.group(1)
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            time.sleep(0.2)
        else:
            log.seek(0)
            pytest.fail(f"serve did not start:\n{log.read()}")
        assert token is not None
        yield {"url": f"http://127.0.0.1:{port}", "token": token}
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def call(url: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
        return json.loads(response.read())


def test_the_page_in_chromium_goes_live_and_back_in_time(served: dict[str, str]) -> None:
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    base = served["url"]
    today = datetime.now(UTC).date()
    head = call(base + "/v1/audit/digest")["position"]
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
            page.goto(base + "/")

            # the timeline and the headline figure are rendered
            expect(page.locator("li.mark")).to_have_count(head)
            expect(page.locator("#timeline figure.overview svg")).to_be_visible()
            assert page.locator("section.lane").count() >= 3
            figure = page.locator(f'[data-figure="{APPROVAL_ID}"]')
            waiting = str((today - APPROVED_ON).days)
            expect(figure).to_have_text(waiting)
            expect(page.locator(f'.figure[data-event-id="{APPROVAL_ID}"]')).to_contain_text(
                "days since approval with no purchase"
            )
            expect(page.locator("#audit")).to_contain_text("intact")

            # an event appended over the API appears through the live feed, without a reload
            expect(page.locator("#live-status")).to_contain_text("Live: new events appear", timeout=WAIT_MS)
            page.evaluate("window.__sameDocument = true")
            purchase = {
                "type": "PurchaseOrdered",
                "occurred_at": PURCHASED_ON.isoformat(),
                "data": {"buyer": "Browser test <b>buyer</b>", "buyer_jurisdiction": "CN", "subject": "NVIDIA H200",
                         "quantity": 100, "policy_id": "us-h200-china"},
                "metadata": {"source": {"title": "Test", "url": "https://example.org/p", "publisher": "Tests"}},
            }  # fmt: skip
            recorded = call(base + "/v1/streams/market-h200-china/events", {"events": [purchase]}, served["token"])
            event = recorded["events"][0]
            mark = page.locator(f'section.lane[data-lane="CN"] li#ev-{event["id"]}')
            expect(mark).to_be_visible(timeout=WAIT_MS)
            expect(mark).to_contain_text("PurchaseOrdered: 100 × NVIDIA H200 (Browser test <b>buyer</b>)")
            expect(page.locator("li.mark")).to_have_count(head + 1)
            assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
            # the headline follows: the approval now has its first purchase
            purchased = str((PURCHASED_ON - APPROVED_ON).days)
            expect(figure).to_have_text(purchased, timeout=WAIT_MS)
            expect(page.locator("#head-position")).to_have_text(str(event["position"]))
            page.screenshot(path=str(ARTIFACTS / "timeline-live.png"), full_page=True)

            # the knowledge-time control, moved back one position: the log before the purchase
            slider = page.locator("#at")
            expect(slider).to_have_value(str(event["position"]))
            slider.focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_url(re.compile(rf"[?&]at={head}\b"), timeout=WAIT_MS)
            expect(figure).to_have_text(waiting)
            expect(page.locator(f"#ev-{event['id']}")).to_have_count(0)
            expect(page.locator("li.mark")).to_have_count(head)
            expect(page.locator(".banner")).to_contain_text("1 event(s) recorded later are hidden")
            page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)

            # phone width: one column, the controls and figures readable
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            phone.goto(base + "/")
            expect(phone.locator(f'[data-figure="{APPROVAL_ID}"]')).to_have_text(purchased)
            widths = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"the page scrolls sideways at phone width: {widths}"
            phone.screenshot(path=str(ARTIFACTS / "timeline-phone.png"))
            phone.screenshot(path=str(ARTIFACTS / "timeline-phone-full.png"), full_page=True)
        finally:
            browser.close()
    # leaving the live page aborts its feed: that one is expected
    assert [p for p in problems if not re.fullmatch(r"failed: \S+/v1/events/live\S* net::ERR_ABORTED", p)] == []
