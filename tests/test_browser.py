"""The pages in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver (Selenium Manager never downloads anything), against the running bot and the fake
Slack. Signing in goes through the real "Sign in with Slack" redirects."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import Bot, running_bot

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "sudo apt-get install chromium chromium-driver"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"browser tests need {CHROMIUM} and {CHROMEDRIVER}: {INSTALL}",
)

CARD_CHANNEL = defaults.CHANNEL_ID
# The most any step may take; waits end as soon as the page or the fake Slack is there.
WAIT = 20


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One browser for the module (for each pytest-xdist worker that runs some of its tests)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Everything is on loopback; a proxy from the environment must not see it.
        "--no-proxy-server",
        "--window-size=1024,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot posting cards to CARD_CHANNEL, with the outbox's worker sending them, and Sign in
    with Slack."""
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        delivery_worker=True,
        sign_in_with_slack=True,
        incident_channel=CARD_CHANNEL,
    ) as running:
        yield running


def until(browser: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    """Wait for `condition`; when it never holds, say what the browser was showing instead."""

    def settled(driver: WebDriver) -> Any:
        try:
            return condition(driver)
        except WebDriverException as error:
            # The page was replaced (a form's redirect) between finding an element and reading
            # it; ChromeDriver says so in its own words, not as a stale element. Look again.
            if "does not belong to the document" in str(error):
                return False
            raise

    try:
        return WebDriverWait(browser, WAIT).until(settled)
    except TimeoutException:
        showing = browser.find_element(By.TAG_NAME, "body").text[:1500]
        where = browser.current_url
        raise AssertionError(f"{what}: not within {WAIT}s at {where}:\n{showing}") from None


def sign_in(browser: WebDriver, bot: Bot) -> None:
    """Signed out, open the list; sign in with Slack and come back to it."""
    # Every cookie, not only the current page's: cookies ignore ports, so an earlier test's bot
    # on another port of 127.0.0.1 left a session this bot (same SESSION_SECRET) would accept.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get(f"{bot.base_url}/incidents")
    button = (By.ID, "sign-in-with-slack")
    until(browser, shown.presence_of_element_located(button), "the sign-in page").click()
    until(browser, shown.presence_of_element_located((By.ID, "filters")), "the list")
    assert browser.current_url == f"{bot.base_url}/incidents"
    assert "Alice Example" in browser.find_element(By.TAG_NAME, "header").text


def flash_says(browser: WebDriver, text: str) -> None:
    until(browser, shown.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), text), text)


def titles(browser: WebDriver) -> list[str]:
    return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#incidents td.title")]


def test_sign_in_with_slack_then_filter_the_list(browser: WebDriver, bot: Bot):
    with bot.sessions.begin() as session:
        for title, severity in (("Checkout errors", "SEV1"), ("Search is slow", "SEV3")):
            draft = incidents.IncidentDraft(title=title, severity=severity)
            incidents.declare(session, draft, Actor(defaults.USER_ID))
    sign_in(browser, bot)
    assert bot.fake.oidc.authorized[-1]["team"] == bot.fake.team_id
    assert titles(browser) == ["Search is slow", "Checkout errors"]

    Select(browser.find_element(By.ID, "f-severity")).select_by_value("SEV1")
    browser.find_element(By.ID, "apply-filters").click()
    until(browser, shown.url_contains("severity=SEV1"), "the filtered list")
    assert titles(browser) == ["Checkout errors"]
    assert "Page 1 of 1" in browser.find_element(By.ID, "page-position").text


def png_file(directory: Path) -> Path:
    path = directory / "latency.png"
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "purple").save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def card_in_slack(fake: FakeSlack, ref: str) -> dict[str, Any]:
    return fake.wait_for(
        lambda: next((m for m in fake.messages(CARD_CHANNEL) if f"{ref} [" in m["text"]), None),
        timeout=WAIT,
    )


def test_declare_move_note_and_attach_from_the_pages_and_the_card_follows(
    browser: WebDriver, bot: Bot, tmp_path: Path
):
    sign_in(browser, bot)
    browser.get(f"{bot.base_url}/incidents/new")
    browser.find_element(By.ID, "title").send_keys("Payments are timing out")
    Select(browser.find_element(By.ID, "severity")).select_by_value("SEV3")
    browser.find_element(By.CSS_SELECTOR, "#declare-form button").click()
    flash_says(browser, "is declared.")
    ref = browser.find_element(By.ID, "title").text.split(":")[0].split()[-1]
    card = card_in_slack(bot.fake, ref)

    browser.find_element(By.ID, "status-investigating").click()
    flash_says(browser, f"{ref} is now investigating.")
    assert browser.find_element(By.ID, "status").text == "investigating"

    browser.find_element(By.ID, "note-text").send_keys("Rolled back the payment gateway")
    browser.find_element(By.CSS_SELECTOR, "#note-form button").click()
    flash_says(browser, f"Note added to {ref}.")
    timeline = browser.find_element(By.ID, "timeline").text
    assert "changed the status: open → investigating" in timeline
    assert "Rolled back the payment gateway" in timeline

    browser.find_element(By.ID, "screenshot-file").send_keys(str(png_file(tmp_path)))
    browser.find_element(By.CSS_SELECTOR, "#screenshot-form button").click()
    flash_says(browser, f"latency.png is attached to {ref}.")
    image = browser.find_element(By.CSS_SELECTOR, "#screenshots img")
    browser.execute_script("arguments[0].scrollIntoView()", image)
    loaded = "return arguments[0].complete && arguments[0].naturalWidth"
    width = until(browser, lambda _: browser.execute_script(loaded, image), "the image loaded")
    assert width == 40
    full_size = image.find_element(By.XPATH, "..").get_attribute("href")
    assert full_size == image.get_attribute("src")

    fake = bot.fake
    fake.wait_for(
        lambda: any(
            u["ts"] == card["ts"] and "investigating" in u["text"]
            for u in fake.calls_to("chat.update")
        ),
        timeout=WAIT,
    )
    replies = fake.wait_for(
        lambda: [
            r
            for r in fake.thread(CARD_CHANNEL, card["ts"])
            if "Rolled back the payment gateway" in r["text"]
        ],
        timeout=WAIT,
    )
    assert replies
