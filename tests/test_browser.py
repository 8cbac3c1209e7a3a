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
from bot.incidents import Actor, followups
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


# --- Running an incident: people, updates, subscribing -----------------------------------------

BOB = "U0BOB00001"


def declared(bot: Bot, title: str = "Checkout errors", by: str = BOB) -> int:
    with bot.sessions.begin() as session:
        draft = incidents.IncidentDraft(title=title, severity="SEV2")
        return incidents.declare(session, draft, Actor(by)).id


def text_of(browser: WebDriver, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_a_role_is_given_by_name_and_the_lead_taken(browser: WebDriver, bot: Bot):
    bot.fake.add_user(BOB, "bob", real_name="Bob Builder")
    number = declared(bot)
    sign_in(browser, bot)
    browser.get(f"{bot.base_url}/incidents/{number}")
    holder = (By.CSS_SELECTOR, "#role-comms .holder")
    assert until(browser, shown.presence_of_element_located(holder), "the roles").text == "nobody"
    # The workspace's people are offered by name as one types.
    offered = [
        o.get_attribute("value")
        for o in browser.find_elements(By.CSS_SELECTOR, "#workspace-people option")
    ]
    assert "Bob Builder (@bob)" in offered and all("U0" not in o for o in offered)

    browser.find_element(By.ID, "person-comms").send_keys("Bob Builder")
    browser.find_element(By.ID, "give-comms").click()
    flash_says(browser, f"Bob Builder is the Communications lead of INC-{number} now.")
    assert browser.find_element(*holder).text == "Bob Builder"
    assert "gave the comms role to Bob Builder" in text_of(browser, "timeline")

    browser.find_element(By.ID, "take-lead").click()
    flash_says(browser, f"You lead INC-{number} now.")
    assert browser.find_element(By.CSS_SELECTOR, "#role-lead .holder").text == "Alice Example"
    assert text_of(browser, "lead") == "Alice Example"
    assert not browser.find_elements(By.ID, "take-lead")
    with bot.sessions() as session:
        assert incidents.get_incident(session, number).owner == defaults.USER_ID

    # A name Slack doesn't know is refused, and what was typed stays to be fixed.
    browser.find_element(By.ID, "person-scribe").send_keys("Nobody Known")
    browser.find_element(By.ID, "give-scribe").click()
    problem = until(browser, shown.presence_of_element_located((By.ID, "problem")), "a refusal")
    assert "Nobody in the workspace is called 'Nobody Known'" in problem.text
    assert browser.find_element(By.ID, "person-scribe").get_attribute("value") == "Nobody Known"


def test_an_update_is_posted_and_resolving_asks_for_the_resolution(browser: WebDriver, bot: Bot):
    number = declared(bot)
    sign_in(browser, bot)
    browser.get(f"{bot.base_url}/incidents/{number}")
    resolution = until(
        browser, shown.presence_of_element_located((By.ID, "update-resolution")), "the form"
    )
    assert not resolution.is_displayed()  # only when the update resolves

    Select(browser.find_element(By.ID, "update-status")).select_by_value("investigating")
    browser.find_element(By.ID, "update-summary").send_keys("The payment provider fails over")
    browser.find_element(By.ID, "update-impact").send_keys("1 in 3 checkouts fail")
    Select(browser.find_element(By.ID, "update-next")).select_by_visible_text("15 min")
    browser.find_element(By.ID, "post-update-button").click()
    flash_says(browser, f"Your update is posted on INC-{number}. It is investigating now.")
    assert text_of(browser, "latest-summary") == "The payment provider fails over"
    assert "1 in 3 checkouts fail" in text_of(browser, "latest-impact")
    assert text_of(browser, "next-update").startswith("Next update due ")
    assert text_of(browser, "status") == "investigating"

    Select(browser.find_element(By.ID, "update-status")).select_by_value("resolved")
    until(browser, lambda _: resolution_field(browser).is_displayed(), "the resolution field")
    browser.find_element(By.ID, "update-summary").send_keys("Fixed")
    resolution_field(browser).send_keys("Rolled back the provider's config")
    browser.find_element(By.ID, "update-cause").send_keys("A bad config push")
    browser.find_element(By.ID, "post-update-button").click()
    flash_says(browser, "It is resolved now.")
    assert text_of(browser, "status") == "resolved"
    assert "Rolled back the provider's config" in text_of(browser, "facts")
    with bot.sessions() as session:
        done = incidents.get_incident(session, number)
        assert done.resolution == "Rolled back the provider's config"
        assert done.cause == "A bad config push"
        assert done.next_update_at is None


def resolution_field(browser: WebDriver) -> Any:
    return browser.find_element(By.ID, "update-resolution")


def test_subscribe_then_unsubscribe(browser: WebDriver, bot: Bot):
    bot.fake.add_user(BOB, "bob", real_name="Bob Builder")
    number = declared(bot)
    sign_in(browser, bot)
    browser.get(f"{bot.base_url}/incidents/{number}")
    button = until(browser, shown.element_to_be_clickable((By.ID, "subscribe")), "Subscribe")
    # The reporter, a person, was subscribed when declaring.
    assert text_of(browser, "subscribers") == "Bob Builder"
    button.click()
    flash_says(browser, f"You are subscribed to INC-{number}")
    assert text_of(browser, "subscribers").splitlines() == ["Bob Builder", "Alice Example"]
    browser.find_element(By.ID, "unsubscribe").click()
    flash_says(browser, f"You are unsubscribed from INC-{number}.")
    assert text_of(browser, "subscribers") == "Bob Builder"
    assert browser.find_elements(By.ID, "subscribe")


# --- Follow-ups ----------------------------------------------------------------------------------


def test_a_follow_up_is_added_by_name_and_marked_done_on_the_incident_page(
    browser: WebDriver, bot: Bot
):
    bot.fake.add_user(BOB, "bob", real_name="Bob Builder")
    number = declared(bot)
    sign_in(browser, bot)
    browser.get(f"{bot.base_url}/incidents/{number}")
    title = until(browser, shown.presence_of_element_located((By.ID, "followup-title")), "form")
    assert browser.find_element(By.ID, "no-followups")
    title.send_keys("Alert on the payment provider's error rate")
    browser.find_element(By.ID, "followup-owner").send_keys("Bob Builder")
    browser.find_element(By.ID, "followup-due").send_keys("in 2w")
    Select(browser.find_element(By.ID, "followup-priority")).select_by_value("high")
    browser.find_element(By.ID, "add-followup").click()
    flash_says(browser, f"is added to INC-{number}. Bob Builder is told by DM.")
    assert browser.current_url.endswith(f"/incidents/{number}#followups")
    with bot.sessions() as session:
        [made] = followups.followups_of(session, number)
    row = browser.find_element(By.ID, f"FU-{made.id}")
    assert row.find_element(By.CLASS_NAME, "followup-owner").text == "Bob Builder"
    assert row.find_element(By.CLASS_NAME, "followup-status").text == "open"
    assert made.due_on is not None and made.due_on.isoformat() in row.text

    browser.find_element(By.ID, f"done-{made.id}").click()
    flash_says(browser, f"FU-{made.id} is done now.")
    row = browser.find_element(By.ID, f"FU-{made.id}")
    assert row.find_element(By.CLASS_NAME, "followup-status").text.startswith("done")
    assert "Alice Example" in row.find_element(By.CLASS_NAME, "followup-status").text
    assert browser.find_elements(By.ID, f"reopen-{made.id}")
    assert f"marked FU-{made.id} done" in text_of(browser, "timeline")
    with bot.sessions() as session:
        assert followups.get_followup(session, made.id).closed_by == defaults.USER_ID

    # The follow-ups list shows it among Bob's done ones.
    browser.find_element(By.ID, "nav-followups").click()
    until(browser, shown.presence_of_element_located((By.ID, "followup-filters")), "the list")
    browser.find_element(By.ID, "f-owner").send_keys("Bob Builder")
    Select(browser.find_element(By.ID, "f-status")).select_by_value("done")
    browser.find_element(By.ID, "apply-filters").click()
    until(browser, shown.url_contains("status=done"), "the filtered list")
    titles = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#followups td.title")]
    assert titles == ["Alert on the payment provider's error rate"]
