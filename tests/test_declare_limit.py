"""How many incidents one person may declare in a window (DECLARE_LIMIT): in the domain, in the
settings, and through the declare modal, where a refusal comes back inline on the title.

The numbers the limit promises (10 per 10 minutes by default, "try again in N minutes" counted
from the oldest declaration in the window) are written out here, not read back from the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, DeclareLimit, IncidentDraft, InvalidInput
from bot.settings import Settings, SettingsError
from bot.slack import ids
from db.models import Incident
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import Bot, running_bot
from tests.test_delivery import cards
from tests.test_slack_interactions import (
    count_incidents,
    declare,
    latest_incident_id,
    load,
    open_declare,
    submit,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
TEN_MINUTES = timedelta(minutes=10)
ALICE = Actor("U0LIMITAL01")
BOB = Actor("U0LIMITBO01")

USER = defaults.USER_ID
OTHER_USER = "U0SECOND001"
CHANNEL = defaults.CHANNEL_ID


# --- The domain --------------------------------------------------------------------------------


def declare_at(
    session: Session, actor: Actor, at: datetime, limit: DeclareLimit | None, title: str = ""
) -> Incident:
    draft = IncidentDraft(title=title or f"Checkout is failing at {at:%H:%M:%S}", severity="SEV2")
    incident = incidents.declare(session, draft, actor, now=at, limit=limit)
    session.commit()
    return incident


def declared_by(session: Session, actor: Actor) -> int:
    return session.scalar(
        select(func.count()).select_from(Incident).where(Incident.reporter == actor.user_id)
    )


def test_the_fourth_declaration_in_the_window_is_refused_on_the_title_saying_when(
    session: Session,
):
    limit = DeclareLimit(3, TEN_MINUTES)
    for minutes in range(3):
        declare_at(session, ALICE, T0 + minutes * MINUTE, limit)
    assert declared_by(session, ALICE) == 3

    with pytest.raises(InvalidInput) as refused:
        declare_at(session, ALICE, T0 + 3 * MINUTE, limit)

    assert refused.value.field == "title"
    message = str(refused.value)
    assert "10 minutes" in message, message
    # The oldest of the three (t0) leaves the window at t0+10m: 7 minutes after t0+3m.
    assert "Try again in 7 minutes" in message, message
    assert declared_by(session, ALICE) == 3, "a refused declaration must store nothing"


def test_the_limit_is_per_person(session: Session):
    limit = DeclareLimit(3, TEN_MINUTES)
    for minutes in range(3):
        declare_at(session, ALICE, T0 + minutes * MINUTE, limit)
    with pytest.raises(InvalidInput):
        declare_at(session, ALICE, T0 + 3 * MINUTE, limit)

    declare_at(session, BOB, T0 + 3 * MINUTE, limit)

    assert declared_by(session, BOB) == 1
    assert declared_by(session, ALICE) == 3


def test_a_person_may_declare_again_once_the_oldest_declaration_leaves_the_window(
    session: Session,
):
    limit = DeclareLimit(3, TEN_MINUTES)
    for minutes in range(3):
        declare_at(session, ALICE, T0 + minutes * MINUTE, limit)
    # A second before the oldest leaves the window: still refused, and told "1 minute".
    with pytest.raises(InvalidInput) as refused:
        declare_at(session, ALICE, T0 + TEN_MINUTES - timedelta(seconds=1), limit)
    assert "Try again in 1 minute," in str(refused.value), str(refused.value)

    again = declare_at(session, ALICE, T0 + TEN_MINUTES + timedelta(seconds=1), limit)

    assert again.id is not None
    assert declared_by(session, ALICE) == 4


def test_without_a_limit_nobody_is_limited(session: Session):
    for n in range(20):
        declare_at(session, ALICE, T0 + n * timedelta(seconds=1), None)

    assert declared_by(session, ALICE) == 20


# --- Settings ----------------------------------------------------------------------------------


def test_declare_limit_defaults_to_ten_per_ten_minutes() -> None:
    assert Settings.from_env({}).declare_limit == DeclareLimit(10, timedelta(minutes=10))


def test_declare_limit_can_be_turned_off_or_set() -> None:
    assert Settings.from_env({"DECLARE_LIMIT": "off"}).declare_limit is None
    assert Settings.from_env({"DECLARE_LIMIT": "5/1h"}).declare_limit == DeclareLimit(
        5, timedelta(hours=1)
    )


@pytest.mark.parametrize("raw", ["ten", "5", "5/xyz", "0/10m"])
def test_bad_declare_limit_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"DECLARE_LIMIT": raw})

    assert "DECLARE_LIMIT" in str(raised.value)


# --- Through Slack -----------------------------------------------------------------------------


@pytest.fixture
def limited_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with DECLARE_LIMIT=2/10m."""
    fake_slack.add_user(OTHER_USER, "bob")
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        declare_limit=DeclareLimit(2, TEN_MINUTES),
    ) as running:
        yield running


def test_a_declaration_past_the_limit_comes_back_on_the_title_and_posts_nothing(
    limited_bot: Bot,
):
    bot = limited_bot
    first = declare(bot, "Checkout is failing")
    second = declare(bot, "Search is slow")
    assert [c["ts"] for c in cards(bot.fake, CHANNEL)] == [
        load(bot, first).card_ts,
        load(bot, second).card_ts,
    ]

    modal = open_declare(bot)
    answer = submit(bot, modal, {"title": "Login is broken", "severity": "SEV2"})

    assert answer is not None and answer["response_action"] == "errors", answer
    assert list(answer["errors"]) == [ids.TITLE_BLOCK], answer
    assert "Try again in" in answer["errors"][ids.TITLE_BLOCK]
    assert count_incidents(bot) == 2
    assert latest_incident_id(bot) == second

    # Another person is not limited; once their card is up, a third card of ours would show.
    theirs = declare(bot, "Payments are timing out", user_id=OTHER_USER)

    assert count_incidents(bot) == 3
    assert load(bot, theirs).reporter == OTHER_USER
    assert [c["ts"] for c in cards(bot.fake, CHANNEL)] == [
        load(bot, first).card_ts,
        load(bot, second).card_ts,
        load(bot, theirs).card_ts,
    ]
