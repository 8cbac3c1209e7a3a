"""The Bolt app: `create_app` wires listeners to the domain; nothing happens at import time."""

from __future__ import annotations

import logging

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.error import BoltError
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

from bot import logs
from bot.delivery import Deliverer
from bot.settings import Settings
from bot.slack.listeners import register
from bot.slack.services import Services
from bot.slack.timing import TimedApp
from bot.work import WorkQueue

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> WebClient:
    """A WebClient on SLACK_API_URL that rides out one rate limit, 5xx or dropped connection.

    Longer outages are the outbox's job: the change is already stored and is retried later.
    """
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=1),
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


class BotTokenAuthorize(Authorize):
    """Every request is the bot's own workspace, authorized by its one bot token.

    Handed to Bolt explicitly because Bolt otherwise decides for itself from the environment:
    with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set (Sign in with Slack needs them) it switches
    to its OAuth installation store, drops the bot token, and answers every request "not
    installed". An explicit authorize wins over that in every case, so the app is the same
    whatever the environment holds.
    """

    def __init__(self, client: WebClient) -> None:
        super().__init__()
        # One auth.test at start: a bad token fails here, loudly, not on the first request.
        try:
            identity = client.auth_test()
        except SlackApiError as error:
            raise BoltError(f"auth.test failed: {error.response.get('error')}") from error
        self._result = AuthorizeResult.from_auth_test_response(
            auth_test_response=identity, bot_token=client.token
        )

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_actor: str | None,
    ) -> AuthorizeResult:
        return self._result


class _TokenSkippedIsExpected(logging.Filter):
    """Bolt warns that the client's token "will be ignored" whenever an authorize is given, and
    that SLACK_BOT_TOKEN "will be unused" when it reads it from the environment beside the
    client; here the client and the authorize carry that very token, so both would mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in (
            warning_token_skipped(),
            warning_client_prioritized_and_token_skipped(),
        )


_TOKEN_SKIPPED_IS_EXPECTED = _TokenSkippedIsExpected()


def create_app(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: WebClient,
    work: WorkQueue,
    deliverer: Deliverer,
) -> App:
    """Build the Bolt app. It calls `auth.test` once, so a bad token fails here, loudly.

    Listeners run on the request's own thread and ack once the change is committed (acked means
    saved); what follows the ack goes to `work`, which the caller starts and shuts down.
    """
    # Once per logger, however many apps are built.
    logging.getLogger("slack_bolt.App").addFilter(_TOKEN_SKIPPED_IS_EXPECTED)
    # Times each ack for incident_bot_ack_seconds.
    app = TimedApp(
        client=client,
        authorize=BotTokenAuthorize(client),
        # Socket Mode frames are not signed. HTTP requests are verified (and parsed, and sized)
        # by bot.slack.http before Bolt sees them: Bolt's own check mishandles malformed headers.
        request_verification_enabled=False,
        # Well-formed requests for something the bot does not handle (a link button, a retired
        # callback) reach the error handler, which answers a quiet 200 without logging the body.
        raise_error_for_unhandled_request=True,
        # The response goes out when the listener returns: no 10 ms ack-polling loop, and no
        # listener thread pool for acks to queue behind (slow work goes to `work`).
        process_before_response=True,
    )
    app.use(logs.slack_request)
    register(
        app,
        Services(
            settings=settings,
            sessions=sessions,
            deliverer=deliverer,
            work=work,
        ),
    )
    return app
