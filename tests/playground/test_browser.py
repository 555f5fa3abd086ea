"""The journey of the playground in a real headless Chromium (Debian's package, driven by
Playwright): a moderator grants credit expiring in 3 days; the member sees /balance, buys an item and
confirms; two days later the reminder DM is there; past the expiry the balance has dropped.

Screenshots of each step go to a temporary folder (PLAYGROUND_SCREENSHOTS, default
<tmp>/promo-balance-playground), never into the repository. Without Chromium the test is skipped,
saying why; in CI (the CI variable set) it fails instead: .ci/run installs Chromium.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.playground.conftest import first_line, free_port, start

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("PLAYGROUND_SCREENSHOTS") or Path(tempfile.gettempdir()) / "promo-balance-playground")
WAIT_MS = 20_000


def browser_or_skip() -> Any:
    """Playwright's sync API, or a skip (a failure in CI) that says what is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install -e '.[dev]')"
    if missing is None and not Path(CHROMIUM).exists():
        missing = "Chromium is not installed (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run must install it before the tests, and in CI this journey must run")
        pytest.skip(f"{missing}: the browser journey needs it")
    return sync_playwright


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start(tmp_path, "--port", str(port))
    try:
        line = first_line(process)
        yield line.rsplit(" ", 1)[-1]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0


def test_the_playground_journey_in_chromium(url: str) -> None:
    sync_playwright = browser_or_skip()
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    shots: list[Path] = []
    errors: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="en-US", timezone_id="Europe/Berlin")
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))

        def shot(name: str) -> None:
            path = SHOTS / f"{len(shots) + 1:02d}-{name}.png"
            page.screenshot(path=str(path))
            shots.append(path)

        def act_as(name: str) -> None:
            page.select_option("[data-testid=act-as]", label=name)

        def command(path: str) -> None:
            page.fill("[data-testid=composer]", f"/{path} ")
            page.wait_for_selector("[data-testid=command-form]")

        def last_message() -> Any:
            return page.locator("[data-testid=messages] [data-testid=message]").last

        page.goto(url)
        page.wait_for_selector(".channel-start")
        shot("start")

        # The moderator grants Bob credit that expires in 3 days.
        act_as("Max (moderator)")
        page.fill("[data-testid=composer]", "/cre")
        page.wait_for_selector("[data-testid=pick-credits-grant]")
        shot("moderator-commands")
        page.click("[data-testid=pick-credits-grant]")
        assert page.is_disabled("[data-testid=send]")  # required options first, as in Discord
        page.select_option("[data-testid=option-member]", label="Bob (@bob)")
        page.fill("[data-testid=option-amount]", "20")
        page.fill("[data-testid=option-expires]", "3d")
        page.fill("[data-testid=option-reason]", "Thanks for trying the playground")
        shot("grant-form")
        page.click("[data-testid=send]")
        page.wait_for_selector("text=Max (moderator) used")
        page.wait_for_selector("text=/credits grant")
        shot("granted")

        # Bob: no moderator commands, and his balance.
        act_as("Bob")
        page.fill("[data-testid=composer]", "/")
        page.wait_for_selector("[data-testid=pick-balance]")
        assert page.locator("[data-testid=pick-credits-grant]").count() == 0
        page.click("[data-testid=pick-balance]")
        page.click("[data-testid=send]")
        balance = last_message()
        balance.locator("text=Your balance").wait_for()
        assert "60 credits" in balance.inner_text()  # 40 from the demo, 20 just granted
        assert balance.locator("[data-testid=only-you]").count() == 1
        shot("balance")

        # He buys the game key (the autocomplete comes from the bot) and confirms.
        command("buy")
        page.fill("[data-testid=option-item]", "game")
        page.wait_for_selector("[data-testid=choices-item] .choice[data-value]")
        shot("buy-autocomplete")
        page.click("[data-testid=choices-item] .choice[data-value]")
        page.click("[data-testid=send]")
        preview = last_message()
        preview.locator("button:has-text('Confirm')").wait_for()
        shot("buy-preview")
        preview.locator("button:has-text('Confirm')").click()
        page.wait_for_selector("text=Order #1")
        shot("order")

        # Two days later the 1-day reminder is in his DMs.
        page.click("[data-testid=clock-day]")
        page.wait_for_selector("[data-testid=toast] >> text=The clock moved on")
        page.click("[data-testid=clock-day]")
        # two unread: the 7-day reminder (sent when the jobs first ran after the grant), the 1-day one
        page.wait_for_selector("[data-testid=dm-badge]:text-is('2')")
        shot("dm-badge")
        page.click("[data-testid=channel-dm]")
        page.wait_for_selector("text=expires soon")
        reminders = page.locator("[data-testid=messages] [data-testid=embed]")
        assert reminders.count() >= 2  # the 7-day reminder when it was granted, then the 1-day one
        assert "expires in 1 day" in reminders.last.inner_text()
        shot("reminder-dm")

        # Past the expiry what was left of it is gone.
        page.click("[data-testid=clock-day]")
        page.wait_for_selector("[data-testid=toast] >> text=expired")
        page.click("[data-testid=channel-general]")
        command("balance")
        page.click("[data-testid=send]")
        after = last_message()
        after.locator("text=Your balance").wait_for()
        assert "40 credits" in after.inner_text()  # 60 - 15 for the key - the 5 that expired
        shot("balance-after-expiry")

        # The moderator's report: the chart is an image, the export a file.
        act_as("Max (moderator)")
        command("credits report")
        page.click("[data-testid=send]")
        page.wait_for_selector(".embed-image")
        page.wait_for_function("document.querySelector('.embed-image').naturalWidth > 0")
        shot("report-chart")
        browser.close()

    assert errors == [], errors
    for path in shots:
        assert path.read_bytes().startswith(b"\x89PNG"), path
    print(f"\nscreenshots of the journey: {SHOTS}")
