"""What every web route needs, handed over once when the app is built."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import g
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor
from bot.settings import Settings
from bot.web.people import Directory, slack_fetch
from db.models import Incident
from db.session import bounded_transaction

# A web change waits for a busy incident a little longer than a Slack ack may, then says so.
LOCK_TIMEOUT = "2s"
STATEMENT_TIMEOUT = "10s"


@dataclass
class WebServices:
    settings: Settings
    sessions: sessionmaker[Session]
    # Tells the outbox's workers that a change queued Slack calls (a no-op when Slack is off).
    wake_outbox: Callable[[], None]
    # The workspace people must belong to (auth.test's team_id); None when Slack is off.
    team_id: str | None = None
    # Without Slack: the local admin signs in with links from `python -m bot link`.
    local_sign_in: bool = False
    # The workspace's people by name (users.list), for the pages' pickers; made from the settings
    # when not given. Without Slack it has none and the pages ask for user ids.
    directory: Directory = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.directory is None:
            fetch = slack_fetch(self.settings) if self.team_id else None
            self.directory = Directory(fetch)

    @property
    def slack_sign_in(self) -> bool:
        settings = self.settings
        return bool(
            self.team_id
            and settings.slack_client_id
            and settings.slack_client_secret
            and settings.public_url
        )

    def person(self, user_id: str) -> Actor:
        """A Slack user's actor: INCIDENT_ADMINS decides, as in Slack."""
        return Actor.of(user_id, self.settings.incident_admins)

    def declare(self, session: Session, draft: incidents.IncidentDraft, actor: Actor) -> Incident:
        """Declare as the Slack surface does: the card goes to INCIDENT_CHANNEL (no card without
        one), serious incidents get their channel, and people are held to DECLARE_LIMIT (API
        tokens are not: an alerting tool repeats itself through the intake's fingerprint)."""
        draft.slack_channel_id = draft.slack_channel_id or self.settings.incident_channel
        is_person = incidents.actor_label(actor.user_id) is None or actor == incidents.LOCAL_ADMIN
        return incidents.declare(
            session,
            draft,
            actor,
            categories=self.settings.categories,
            limit=self.settings.declare_limit if is_person else None,
            channels=self.settings.channel_rules,
        )

    @contextmanager
    def change(self) -> Iterator[Session]:
        """One short transaction for a change; commits on exit, then wakes the outbox. A wait
        past the timeouts (for a lock other than an incident's row, say) is Busy too."""
        try:
            with bounded_transaction(
                self.sessions, lock_timeout=LOCK_TIMEOUT, statement_timeout=STATEMENT_TIMEOUT
            ) as session:
                yield session
        except OperationalError as error:
            if incidents.is_busy(error):
                raise incidents.Busy() from error
            raise
        self.wake_outbox()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """This request's session for reads: the token check and the route share one connection
        (a checkout, its ping and a transaction each cost a round trip). Closed when the request
        ends (`close_request_session`); what it loaded before is reloaded, so a change made in
        between is seen."""
        session = g.get(_REQUEST_SESSION)
        if session is None:
            session = self.sessions()
            setattr(g, _REQUEST_SESSION, session)
        else:
            session.expire_all()
        yield session


_REQUEST_SESSION = "incident_tracker_session"


def close_request_session(error: BaseException | None = None) -> None:
    session = g.pop(_REQUEST_SESSION, None)
    if session is not None:
        session.close()
