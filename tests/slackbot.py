"""The real bot (create_app, the web surface, server.make_wsgi_app) on loopback, talking to the
fake Slack."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from bot.delivery import Deliverer, DeliveryWorker
from bot.incidents import signins
from bot.server import SLACK_PATH, make_server, make_wsgi_app
from bot.settings import Settings
from bot.slack.app import create_app, make_client
from bot.web import auth
from bot.web.app import create_web_app
from bot.web.services import WebServices
from bot.work import WorkQueue
from tests.fakeslack import FakeSlack, defaults, oidc, payloads, post_payload

ADMIN_ID = "U0ADMIN0001"


@contextmanager
def serve_wsgi(wsgi: Any, settings: Settings, port: int = 0) -> Iterator[str]:
    """The production server (waitress, as `python -m bot run` starts it) on `port`, by default
    a free one."""
    server = make_server(wsgi, settings, "127.0.0.1", port)

    def run() -> None:
        with contextlib.suppress(OSError):  # close() from this thread can end select() with EBADF
            server.run()

    thread = threading.Thread(target=run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # The loop notices the closed socket at its next select() timeout (a second); the
        # daemon thread ends then, without the test waiting for it.
        server.close()
        server.task_dispatcher.shutdown()


def bot_settings(fake: FakeSlack, sign_in_at: str | None = None, **overrides: Any) -> Settings:
    """The bot's settings against `fake`; with Sign in with Slack when `sign_in_at` gives the
    PUBLIC_URL that it needs."""
    env = {
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "INCIDENT_ADMINS": ADMIN_ID,
        "SESSION_SECRET": "tests-session-secret-0123456789abcdef",
    }
    if sign_in_at is not None:
        env.update(
            SLACK_CLIENT_ID=oidc.CLIENT_ID,
            SLACK_CLIENT_SECRET=oidc.CLIENT_SECRET,
            PUBLIC_URL=sign_in_at,
        )
    return replace(Settings.from_env(env), **overrides)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Bot:
    """The running bot and what a test needs to talk to it."""

    fake: FakeSlack
    base_url: str
    settings: Settings
    sessions: sessionmaker[Session]
    deliverer: Deliverer
    # The web surface's Flask app, for werkzeug test clients; base_url serves it too.
    web: Any = None

    @property
    def url(self) -> str:
        return self.base_url + SLACK_PATH

    def post(self, payload: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, str], str]:
        return post_payload(self.url, payload, **kwargs)

    def command(
        self,
        text: str,
        *,
        user_id: str = defaults.USER_ID,
        channel_id: str = defaults.CHANNEL_ID,
    ) -> tuple[int, dict[str, str], str]:
        payload = payloads.slash_command(
            "/incident", text, fake=self.fake, user_id=user_id, channel_id=channel_id
        )
        return self.post(payload)

    def responses(self) -> list[dict[str, Any]]:
        """What the bot posted to response_urls (respond()), oldest first."""
        return [params for params in self.fake.calls_to("response_url")]


@contextmanager
def running_bot(
    fake: FakeSlack,
    engine: Engine,
    sessions: sessionmaker[Session],
    *,
    delivery_worker: bool = False,
    sign_in_with_slack: bool = False,
    **overrides: Any,
) -> Iterator[Bot]:
    """With `sign_in_with_slack`, PUBLIC_URL is the bot's own address (or `public_url`)."""
    port = free_port() if sign_in_with_slack else 0
    sign_in_at = None
    if sign_in_with_slack:
        sign_in_at = overrides.pop("public_url", f"http://127.0.0.1:{port}")
    settings = bot_settings(fake, sign_in_at, **overrides)
    work = WorkQueue(settings.work_queue_limit)
    client = make_client(settings)
    deliverer = Deliverer(
        sessions,
        client,
        offer_channels=settings.channel_rules.offered,
        public_url=settings.public_url,
        role_rules=settings.role_rules,
        github=settings.github,
        jira=settings.jira,
        tracker=settings.followup_rules.tracker,
    )
    app = create_app(settings, sessions, client, work, deliverer)
    # The outbox's own threads, as `python -m bot run` starts them; off by default so tests can
    # hold rows back and send them when they choose.
    worker = DeliveryWorker(deliverer) if delivery_worker else None
    if worker:
        worker.start()
    web = create_web_app(
        WebServices(
            settings=settings, sessions=sessions, wake_outbox=deliverer.wake, team_id=fake.team_id
        )
    )
    # /metrics reports this bot's engine and work queue, as `python -m bot run` wires them.
    watched = metrics.watch(engine, work)
    try:
        with serve_wsgi(make_wsgi_app(app, engine, settings, web), settings, port) as base_url:
            yield Bot(
                fake=fake,
                base_url=base_url,
                settings=settings,
                sessions=sessions,
                deliverer=deliverer,
                web=web,
            )
    finally:
        # Work goes on after the ack; let it finish before the fake Slack goes away.
        work.shutdown()
        if worker:
            worker.stop()
        watched.close()


def sign_in_client(client: Any, user_id: str, **cookie: str) -> None:
    """A werkzeug test client of the web app signed in as `user_id` the way the bot signs people
    in: a session row in the bot's database and its id in the cookie (beside `cookie`'s values,
    e.g. a CSRF token)."""
    web: WebServices = client.application.extensions["incident_tracker"]
    with web.sessions.begin() as session:
        sid = signins.start_session(session, user_id)
    with client.session_transaction() as kept:
        kept.update({auth.SESSION_ID: sid, "user_id": user_id, **cookie})
