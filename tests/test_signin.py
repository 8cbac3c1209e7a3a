"""Who is asking the web surface: Sign in with Slack (OpenID Connect, against the fake Slack's
provider) over real HTTP with a cookie jar, signing out, and API tokens."""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import IncidentDraft, signins, tokens
from bot.web import auth
from db.models import ApiToken, Severity
from tests.fakeslack import FakeSlack, defaults, oidc
from tests.slackbot import ADMIN_ID, Bot, running_bot

SESSION_COOKIE = "incident_tracker_session"


@dataclass
class Answer:
    status: int
    headers: Message
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class _Stay(urllib.request.HTTPRedirectHandler):
    """Each redirect is looked at by the test, not followed blindly."""

    def redirect_request(self, *args: Any) -> None:
        return None


class Browser:
    """A browser that keeps cookies and takes one hop at a time."""

    def __init__(self) -> None:
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar), _Stay()
        )

    def open(self, url: str, form: dict[str, str] | None = None, **headers: str) -> Answer:
        data = urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with self.opener.open(request, timeout=10) as response:
                return Answer(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read().decode())

    def follow(self, url: str, hops: int = 5) -> list[tuple[str, Answer]]:
        """GET `url` and each redirect after it: every (url, answer) on the way."""
        seen = []
        for _ in range(hops):
            answer = self.open(url)
            seen.append((url, answer))
            if answer.status not in (301, 302, 303):
                break
            url = urljoin(url, answer.location)
        return seen

    def signed_in(self) -> bool:
        return any(cookie.name == SESSION_COOKIE for cookie in self.jar)


def sign_in(bot: Bot, browser: Browser, start: str = "/auth/slack") -> list[tuple[str, Answer]]:
    return browser.follow(bot.base_url + start)


@pytest.fixture
def slackbot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with Sign in with Slack, PUBLIC_URL being its own address."""
    with running_bot(fake_slack, engine, committing_sessions, sign_in_with_slack=True) as running:
        yield running


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


# --- The whole flow ----------------------------------------------------------------------------


def test_signing_in_with_slack_goes_through_the_workspace_and_back(slackbot: Bot):
    fake, browser = slackbot.fake, Browser()

    hops = sign_in(slackbot, browser)

    (_, to_slack), (authorize, back), (callback, home), (listed, page) = hops
    assert to_slack.status == 302
    sent_to = urlsplit(authorize)
    # The host of SLACK_API_URL, so GovSlack's people sign in on slack-gov.com.
    assert f"{sent_to.scheme}://{sent_to.netloc}" == fake.base_url
    assert sent_to.path == "/openid/connect/authorize"
    asked = {key: values[0] for key, values in parse_qs(sent_to.query).items()}
    assert asked == {
        "response_type": "code",
        "scope": "openid profile",
        "client_id": oidc.CLIENT_ID,
        "state": asked["state"],
        "nonce": asked["nonce"],
        "redirect_uri": f"{slackbot.base_url}/auth/slack/callback",
        "team": fake.team_id,
    }
    assert len(asked["state"]) >= 20 and len(asked["nonce"]) >= 20
    assert back.status == 302 and callback.startswith(asked["redirect_uri"] + "?")
    assert home.status == 302 and listed == f"{slackbot.base_url}/incidents"
    assert page.status == 200
    code = parse_qs(urlsplit(callback).query)["code"]
    assert [call["code"] for call in fake.calls_to("openid.connect.token")] == code
    assert len(fake.calls_to("openid.connect.userInfo")) == 1
    assert browser.signed_in()


def test_each_sign_in_asks_with_a_fresh_state_and_nonce(slackbot: Bot):
    started = [Browser().open(slackbot.base_url + "/auth/slack") for _ in range(2)]
    asked = [parse_qs(urlsplit(answer.location).query) for answer in started]
    assert asked[0]["state"] != asked[1]["state"]
    assert asked[0]["nonce"] != asked[1]["nonce"]


def test_the_session_cookie_is_http_only_and_same_site_lax(slackbot: Bot):
    browser = Browser()
    hops = sign_in(slackbot, browser)
    _, signed_in = hops[2]
    cookie = next(c for c in signed_in.cookies() if c.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # PUBLIC_URL is not https here: a cookie over http


def test_the_session_cookie_is_secure_when_the_public_url_is_https(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
):
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        sign_in_with_slack=True,
        public_url="https://incidents.example.com",
    ) as bot:
        started = Browser().open(bot.base_url + "/auth/slack")
    cookie = next(c for c in started.cookies() if c.startswith(SESSION_COOKIE + "="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}
    # Slack sends the person back to the public address, not to the one the request came to.
    asked = parse_qs(urlsplit(started.location).query)
    assert asked["redirect_uri"] == ["https://incidents.example.com/auth/slack/callback"]


def test_slack_sends_people_back_to_the_public_url_whatever_host_the_request_named(
    slackbot: Bot,
):
    started = Browser().open(slackbot.base_url + "/auth/slack", Host="evil.example")
    asked = parse_qs(urlsplit(started.location).query)
    assert asked["redirect_uri"] == [f"{slackbot.settings.public_url}/auth/slack/callback"]
    assert slackbot.settings.public_url == slackbot.base_url


@pytest.mark.parametrize(
    ("asked", "lands_on"),
    [
        ("/incidents/7?tab=timeline", "/incidents/7?tab=timeline"),
        ("https://evil.example/phish", "/incidents"),
        ("//evil.example/phish", "/incidents"),
        ("/\\evil.example", "/incidents"),
        ("/\t/evil.example", "/incidents"),  # a browser drops the tab: //evil.example
        ("/\n/evil.example", "/incidents"),
        ("/incidents /x", "/incidents"),
        ("javascript:alert(1)", "/incidents"),
        ("", "/incidents"),
    ],
)
def test_after_signing_in_only_a_path_on_this_site_is_followed(
    slackbot: Bot, asked: str, lands_on: str
):
    hops = sign_in(slackbot, Browser(), "/auth/slack?" + urlencode({"next": asked}))
    _, signed_in = hops[2]
    assert signed_in.status == 302
    assert signed_in.location == lands_on


def test_the_sign_in_page_offers_slack_and_keeps_where_to_go_next(slackbot: Bot):
    page = Browser().open(slackbot.base_url + "/sign-in?next=/incidents/3")
    assert page.status == 200
    assert 'id="sign-in-with-slack"' in page.body
    assert "/auth/slack?next=/incidents/3" in page.body.replace("%2F", "/")


def test_without_client_credentials_there_is_no_slack_sign_in(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
):
    with running_bot(
        fake_slack, engine, committing_sessions, sign_in_with_slack=True, slack_client_secret=None
    ) as bot:
        assert Browser().open(bot.base_url + "/auth/slack").status == 404
        page = Browser().open(bot.base_url + "/sign-in")
    assert page.status == 200
    assert "sign-in-with-slack" not in page.body
    assert "SLACK_CLIENT_SECRET" in page.body


# --- Refusals ----------------------------------------------------------------------------------


def assert_not_signed_in(bot: Bot, browser: Browser) -> None:
    answer = browser.open(bot.base_url + "/incidents")
    assert answer.status == 302
    assert urlsplit(answer.location).path == "/sign-in"


def test_a_member_of_another_workspace_is_refused(slackbot: Bot):
    slackbot.fake.oidc.sign_in_as("U0OTHER001", team_id="T0OTHER001")
    browser = Browser()

    hops = sign_in(slackbot, browser)

    _, refused = hops[-1]
    assert refused.status == 403
    assert "Only members of this Slack workspace can sign in here." in refused.body
    assert_not_signed_in(slackbot, browser)


def test_an_answer_with_another_state_is_refused_and_ends_the_attempt(slackbot: Bot):
    browser = Browser()
    started = browser.open(slackbot.base_url + "/auth/slack")
    back = browser.open(started.location)
    callback = urlsplit(back.location)
    code = parse_qs(callback.query)["code"][0]
    forged = f"{slackbot.base_url}/auth/slack/callback?" + urlencode(
        {"code": code, "state": "not-the-state"}
    )

    refused = browser.open(forged)

    assert refused.status == 400
    assert "does not belong to this browser" in refused.body
    assert slackbot.fake.calls_to("openid.connect.token") == []
    # The attempt is over: even the genuine answer is refused now.
    assert browser.open(back.location).status == 400
    assert_not_signed_in(slackbot, browser)


def test_an_answer_without_a_pending_sign_in_is_refused(slackbot: Bot):
    other = Browser()
    back = other.open(other.open(slackbot.base_url + "/auth/slack").location)
    browser = Browser()  # never started a sign-in: someone else's answer, e.g. a CSRF login

    refused = browser.open(back.location)

    assert refused.status == 400
    assert "expired" in refused.body
    assert slackbot.fake.calls_to("openid.connect.token") == []
    assert_not_signed_in(slackbot, browser)


def test_a_person_who_declines_on_slack_is_not_signed_in(slackbot: Bot):
    slackbot.fake.oidc.deny_with = "access_denied"
    browser = Browser()

    _, refused = sign_in(slackbot, browser)[-1]

    assert refused.status == 403
    assert "access_denied" in refused.body
    assert slackbot.fake.calls_to("openid.connect.token") == []
    assert_not_signed_in(slackbot, browser)


def test_an_id_token_for_another_sign_in_is_refused(slackbot: Bot):
    slackbot.fake.oidc.forged_nonce = secrets.token_urlsafe(24)  # a replayed id token
    browser = Browser()

    _, refused = sign_in(slackbot, browser)[-1]

    assert refused.status == 403
    assert "not meant for this sign-in" in refused.body
    assert slackbot.fake.calls_to("openid.connect.userInfo") == []
    assert_not_signed_in(slackbot, browser)


def test_a_wrong_client_secret_is_refused_by_slack(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
):
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        sign_in_with_slack=True,
        slack_client_secret="not-the-secret",
    ) as bot:
        browser = Browser()
        _, refused = sign_in(bot, browser)[-1]
        assert refused.status == 403
        assert "bad_client_secret" in refused.body
        assert_not_signed_in(bot, browser)


def test_slack_unreachable_during_the_exchange_is_a_503(slackbot: Bot):
    browser = Browser()
    back = browser.open(browser.open(slackbot.base_url + "/auth/slack").location)
    slackbot.fake.drop_after("openid.connect.token", times=None)  # no answer, retried or not

    answer = browser.open(back.location)

    assert answer.status == 503
    assert "could not be reached" in answer.body


# --- Signing out and who one is ----------------------------------------------------------------


def test_signing_out_needs_the_forms_token_and_then_ends_the_session(slackbot: Bot):
    browser = Browser()
    sign_in(slackbot, browser)
    token = csrf_of(browser.open(slackbot.base_url + "/incidents").body)
    sign_out = slackbot.base_url + "/auth/sign-out"

    assert browser.open(sign_out, form={}).status == 403
    assert browser.open(sign_out, form={"csrf_token": "forged"}).status == 403
    assert browser.open(slackbot.base_url + "/incidents").status == 200  # still signed in

    out = browser.open(sign_out, form={"csrf_token": token})
    assert out.status == 302 and out.location == "/sign-in"
    assert_not_signed_in(slackbot, browser)


def api_status(bot: Bot, cookie: str) -> int:
    request = urllib.request.Request(
        bot.base_url + "/api/v1/incidents", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
    )
    try:
        with Browser().opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_cookie_copied_before_signing_out_is_refused_after(slackbot: Bot):
    browser = Browser()
    sign_in(slackbot, browser)
    copied = session_cookie(browser)
    replay = {"Cookie": f"{SESSION_COOKIE}={copied}"}
    assert Browser().open(slackbot.base_url + "/incidents", **replay).status == 200
    assert api_status(slackbot, copied) == 200

    token = csrf_of(browser.open(slackbot.base_url + "/incidents").body)
    out = browser.open(slackbot.base_url + "/auth/sign-out", form={"csrf_token": token})
    assert out.status == 302

    page = Browser().open(slackbot.base_url + "/incidents", **replay)
    assert page.status == 302 and urlsplit(page.location).path == "/sign-in"
    assert api_status(slackbot, copied) == 401


def test_signing_out_in_one_browser_leaves_another_signed_in(slackbot: Bot):
    first, second = Browser(), Browser()
    sign_in(slackbot, first)
    sign_in(slackbot, second)
    token = csrf_of(first.open(slackbot.base_url + "/incidents").body)

    first.open(slackbot.base_url + "/auth/sign-out", form={"csrf_token": token})

    assert_not_signed_in(slackbot, first)
    assert second.open(slackbot.base_url + "/incidents").status == 200


def test_a_session_ends_after_its_lifetime(session: Session):
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    sid = signins.start_session(session, defaults.USER_ID, now=start)
    assert signins.session_user(session, sid, now=start + timedelta(hours=11)) == defaults.USER_ID
    assert signins.session_user(session, sid, now=start + signins.SESSION_LIFETIME) is None
    assert signins.session_user(session, "made-up", now=start) is None


def test_a_cookie_naming_a_user_without_a_session_is_not_signed_in(slackbot: Bot):
    """What a signed cookie said before sessions had rows: the user id alone lets no one in."""
    client = slackbot.web.test_client()
    with client.session_transaction() as kept:
        kept["user_id"] = ADMIN_ID
    assert client.get("/incidents").status_code == 302
    assert client.get("/api/v1/incidents").status_code == 401


def session_cookie(browser: Browser) -> str:
    return next(c.value for c in browser.jar if c.name == SESSION_COOKIE and c.value)


@pytest.mark.parametrize(("person", "is_admin"), [(ADMIN_ID, True), (defaults.USER_ID, False)])
def test_who_signed_in_is_the_slack_person_with_their_admin_rights(
    slackbot: Bot, person: str, is_admin: bool
):
    slackbot.fake.oidc.sign_in_as(person)
    browser = Browser()
    sign_in(slackbot, browser)

    with slackbot.web.test_request_context(
        "/incidents", headers={"Cookie": f"{SESSION_COOKIE}={session_cookie(browser)}"}
    ):
        actor = auth.session_actor()
    assert actor is not None
    assert (actor.user_id, actor.is_admin) == (person, is_admin)


def declared_incident(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(title="Checkout is failing", severity=Severity.SEV3)
        return incidents.declare(session, draft, incidents.Actor(defaults.USER_ID)).id


@pytest.mark.parametrize(("person", "status"), [(ADMIN_ID, 204), (defaults.USER_ID, 403)])
def test_an_incident_admin_signed_in_with_slack_may_delete_on_the_web(
    slackbot: Bot, person: str, status: int
):
    incident_id = declared_incident(slackbot.sessions)
    slackbot.fake.oidc.sign_in_as(person)
    browser = Browser()
    sign_in(slackbot, browser)
    token = csrf_of(browser.open(slackbot.base_url + "/incidents").body)
    request = urllib.request.Request(
        f"{slackbot.base_url}/api/v1/incidents/{incident_id}",
        method="DELETE",
        headers={auth.CSRF_HEADER: token},
    )
    try:
        with browser.opener.open(request, timeout=10) as response:
            answered = response.status
    except urllib.error.HTTPError as error:
        answered = error.code
    assert answered == status


# --- API tokens --------------------------------------------------------------------------------


@pytest.fixture
def api_token(engine: Engine) -> Iterator[tuple[str, str]]:
    """A live token of a name no other test uses (api_tokens outlives each test's truncate)."""
    name = f"signin-{secrets.token_hex(4)}"
    with sessionmaker(engine).begin() as session:
        token, _ = tokens.create_token(session, name)
    yield name, token
    with engine.begin() as connection:
        connection.execute(delete(ApiToken).where(ApiToken.name == name))


def api_get(bot: Bot, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        bot.base_url + "/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with Browser().opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def last_used(engine: Engine, name: str) -> datetime | None:
    with sessionmaker(engine)() as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == name))


def test_a_live_token_is_let_in_and_its_use_recorded(
    slackbot: Bot, engine: Engine, api_token: tuple[str, str]
):
    name, token = api_token
    assert last_used(engine, name) is None

    assert api_get(slackbot, token)[0] == 200
    first = last_used(engine, name)
    assert first is not None
    assert api_get(slackbot, token)[0] == 200
    assert last_used(engine, name) == first  # not a write on every request


@pytest.mark.parametrize(
    "presented",
    [
        "itk_" + "A" * 43,  # the right shape, never issued
        "not-a-token",
        "itk_" + "A" * 200,
        "",
    ],
)
def test_an_unknown_token_is_401(slackbot: Bot, presented: str):
    status, body = api_get(slackbot, presented)
    assert status == 401
    assert "Authorization: Bearer" in body["message"]


def test_a_revoked_token_is_401(slackbot: Bot, engine: Engine, api_token: tuple[str, str]):
    name, token = api_token
    assert api_get(slackbot, token)[0] == 200
    with sessionmaker(engine).begin() as session:
        tokens.revoke_token(session, name)

    assert api_get(slackbot, token)[0] == 401


def test_a_token_is_not_a_browser_session(slackbot: Bot, api_token: tuple[str, str]):
    _, token = api_token
    page = Browser().open(slackbot.base_url + "/incidents", Authorization=f"Bearer {token}")
    assert page.status == 302  # pages are for people: sign in


def test_last_used_is_written_at_most_once_a_minute(session: Session):
    token, row = tokens.create_token(session, f"minute-{secrets.token_hex(4)}")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def used_at(moment: datetime) -> datetime | None:
        actor = tokens.authenticate(session, token, now=moment)
        assert actor is not None and actor.user_id == f"token:{row.name}"
        session.flush()  # as the caller's commit would
        session.refresh(row)
        return row.last_used_at

    assert used_at(start) == start
    assert used_at(start + timedelta(seconds=59)) == start
    assert used_at(start + timedelta(seconds=60)) == start
    assert used_at(start + timedelta(seconds=61)) == start + timedelta(seconds=61)
