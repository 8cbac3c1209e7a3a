"""The Bolt app: `create_app` wires listeners to the domain; nothing happens at import time."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import Deliverer
from bot.incidents import Actor
from bot.settings import Settings

log = logging.getLogger(__name__)

LISTENER_THREADS = 32


@dataclass
class Services:
    """What every listener needs, handed over once instead of read from globals."""

    settings: Settings
    sessions: sessionmaker[Session]
    deliverer: Deliverer

    def actor(self, user_id: str) -> Actor:
        return Actor.of(user_id, self.settings.incident_admins)


def make_client(settings: Settings) -> WebClient:
    """A WebClient on SLACK_API_URL that rides out one rate limit, 5xx or dropped connection.

    Longer outages are the outbox's job: the change is already stored and is retried later.
    """
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=1),
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def create_app(settings: Settings, sessions: sessionmaker[Session], client: WebClient) -> App:
    """Build the Bolt app. It calls `auth.test` once, so a bad token fails here, loudly."""
    from bot.listeners import register

    app = App(
        client=client,
        # Socket Mode frames are not signed. HTTP requests are verified (and parsed, and sized)
        # by bot.slack_http before Bolt sees them: Bolt's own check mishandles malformed headers.
        request_verification_enabled=False,
        # Well-formed requests for something the bot does not handle (a link button, a retired
        # callback) reach the error handler, which answers a quiet 200 without logging the body.
        raise_error_for_unhandled_request=True,
        process_before_response=False,
        # Listeners keep their worker after ack() while they talk to Slack; Bolt's default of 5
        # workers would make the 6th simultaneous request wait for its ack.
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="listener"
        ),
    )
    register(
        app, Services(settings=settings, sessions=sessions, deliverer=Deliverer(sessions, client))
    )
    return app
