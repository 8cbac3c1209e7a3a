"""Incident channels: which incidents get one, its name, who is invited, and opening it in Slack
exactly once (a lost answer to conversations.create is found again, not made twice)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, ChannelRules, IncidentDraft, InvalidInput, channel_name, slug
from bot.settings import Settings, SettingsError
from bot.slack import grammar
from db.models import Delivery, DeliveryAction, EventKind, Incident, Severity, Status
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import Bot
from tests.steps import FIXED
from tests.test_delivery import ADMIN, CHANNEL, Sessions, add_note, now
from tests.test_scheduler_jobs import make_jobs
from tests.test_slack_commands import ask
from tests.test_slack_interactions import (
    buttons,
    card_message,
    click,
    latest_incident_id,
    open_declare,
    settle,
    submit,
)
from tests.test_slack_interactions import declare as declare_in_slack

ALICE = Actor("U0ALICE0001")
BOB = "U0BOB000001"
RULES = ChannelRules(responders={"SEV1": ("S0ONCALL", "U0LEAD0001")})


def declare(
    sessions: Sessions,
    severity: str = "SEV1",
    title: str = "Checkout is failing",
    rules: ChannelRules = RULES,
    asked: bool = False,
    **fields: object,
) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title=title,
            severity=severity,
            slack_channel_id=CHANNEL,
            open_channel=asked,
            **fields,  # type: ignore[arg-type]
        )
        return incidents.declare(session, draft, ALICE, channels=rules).id


def actions(sessions: Sessions, incident_id: int) -> list[str]:
    with sessions() as session:
        rows = session.scalars(
            select(Delivery).where(Delivery.incident_id == incident_id).order_by(Delivery.id)
        )
        return [r.action.value for r in rows]


def incident(sessions: Sessions, incident_id: int) -> Incident:
    with sessions() as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


# --- Rules: when, name, who ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "severity", "asked", "wanted"),
    [
        ("never", Severity.SEV1, True, False),
        ("sev1-sev2", Severity.SEV1, False, True),
        ("sev1-sev2", Severity.SEV2, False, True),
        ("sev1-sev2", Severity.SEV3, False, False),
        ("sev1-sev2", Severity.SEV3, True, True),
        ("always", Severity.SEV4, False, True),
    ],
)
def test_which_incidents_get_a_channel(mode: str, severity: Severity, asked: bool, wanted: bool):
    assert ChannelRules(mode=mode).wanted(severity, asked) is wanted


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Checkout: 502s on /pay!", "checkout-502s-on-pay"),
        ("Ünïcödé Straße — down", "unicode-strae-down"),
        ("🔥🔥🔥", ""),
        ("__Already--dashed__", "already-dashed"),
    ],
)
def test_slugs_keep_what_slack_allows_in_channel_names(title: str, expected: str):
    assert slug(title) == expected


def test_names_follow_slacks_rules_and_a_suffix_survives_the_cut():
    long = Incident(id=12345, title="a very long title " * 10, severity=Severity.SEV1)
    name = channel_name("inc-{id}-{slug}", long)
    assert name.startswith("inc-12345-a-very-long-title") and len(name) <= 80
    assert name == name.lower() and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    suffixed = channel_name("inc-{id}-{slug}", long, "-2")
    assert suffixed.endswith("-2") and len(suffixed) <= 80
    bare = Incident(id=7, title="🔥🔥🔥", severity=Severity.SEV2)
    assert channel_name("inc-{id}-{slug}", bare) == "inc-7"
    assert channel_name("{severity}_INC_{id}", bare) == "sev2_inc_7"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INCIDENT_CHANNELS", "sometimes"),
        ("INCIDENT_CHANNEL_NAME", "inc-{slug}"),  # two incidents could share a name
        ("INCIDENT_CHANNEL_NAME", "inc-{id}-{owner}"),
        ("INCIDENT_CHANNEL_PRIVATE", "maybe"),
        ("INCIDENT_RESPONDERS", "SEV1=@oncall"),
        ("INCIDENT_RESPONDERS", "SEV9=U0LEAD0001"),
    ],
)
def test_bad_channel_settings_are_refused_naming_the_variable(variable: str, value: str):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_channel_settings_and_their_defaults():
    default = Settings.from_env({}).channel_rules
    assert (default.mode, default.name_template, default.private) == (
        "sev1-sev2",
        "inc-{id}-{slug}",
        False,
    )
    rules = Settings.from_env(
        {
            "INCIDENT_CHANNELS": "always",
            "INCIDENT_CHANNEL_PRIVATE": "true",
            "INCIDENT_RESPONDERS": "SEV1=S0ONCALL,U0LEAD0001;SEV2=S0ONCALL",
        }
    ).channel_rules
    assert (rules.mode, rules.private) == ("always", True)
    assert rules.responders == {"SEV1": ("S0ONCALL", "U0LEAD0001"), "SEV2": ("S0ONCALL",)}


def test_declaring_queues_the_channel_after_the_card_with_its_name_and_people(
    session: Session,
):
    draft = IncidentDraft(
        title="DB down",
        severity="SEV1",
        slack_channel_id=CHANNEL,
        owner="U0OWNER0001",
        assignee="U0ALICE0001",
    )
    declared = incidents.declare(session, draft, ALICE, channels=RULES)
    rows = session.scalars(
        select(Delivery).where(Delivery.incident_id == declared.id).order_by(Delivery.id)
    ).all()
    assert [r.action for r in rows] == [
        DeliveryAction.POST_CARD,
        DeliveryAction.OPEN_CHANNEL,
        DeliveryAction.POST_WELCOME,
        DeliveryAction.UPDATE_CHANNEL,
        DeliveryAction.POST_SUMMARY,
        DeliveryAction.POST_CHANNEL,
        # The lead's duties, to the owner Alice named.
        DeliveryAction.TELL_USER,
    ]
    assert rows[1].payload == {
        "name": f"inc-{declared.id}-db-down",
        "template": "inc-{id}-{slug}",
        "private": False,
        "invite": ["U0ALICE0001", "U0OWNER0001", "S0ONCALL", "U0LEAD0001"],
    }
    assert declared.wants_own_channel


def test_a_minor_incident_gets_no_channel_unless_asked(session: Session):
    minor = incidents.declare(
        session, IncidentDraft("Typo", "SEV4", slack_channel_id=CHANNEL), ALICE, channels=RULES
    )
    asked = incidents.declare(
        session,
        IncidentDraft("Typo", "SEV4", slack_channel_id=CHANNEL, open_channel=True),
        ALICE,
        channels=RULES,
    )
    kinds = {
        i: [r.action for r in session.scalars(select(Delivery).where(Delivery.incident_id == i))]
        for i in (minor.id, asked.id)
    }
    assert DeliveryAction.OPEN_CHANNEL not in kinds[minor.id]
    assert DeliveryAction.OPEN_CHANNEL in kinds[asked.id]


# --- Opening it in Slack ------------------------------------------------------------------------


def test_a_sev1_gets_its_channel_with_people_invited_and_every_change_posted_there_too(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    for user in ("U0LEAD0001", "U0ONCALL001", "U0ALICE0001"):
        fake_slack.add_user(user)
    fake_slack.add_user("U0OWNER0001", name="olga", display_name="Olga (IC)")
    fake_slack.add_usergroup("S0ONCALL", ["U0ONCALL001", "U0LEAD0001"])
    incident_id = declare(sessions, title="DB down", owner="U0OWNER0001")
    deliverer = Deliverer(sessions, fake_slack.client())

    result = deliverer.drain()
    add_note(sessions, incident_id, "marker-both")
    deliverer.drain()

    assert result.problems == []
    opened = incident(sessions, incident_id)
    room = fake_slack.channel_by_name(f"inc-{incident_id}-db-down")
    assert room is not None and opened.own_channel_id == room["id"]
    assert opened.own_channel_name == room["name"]
    members = set(fake_slack.channel_members(room["id"]))
    assert {"U0ALICE0001", "U0OWNER0001", "U0ONCALL001", "U0LEAD0001"} <= members
    welcome, summary, declared, noted = fake_slack.messages(room["id"])
    assert fake_slack.pinned(room["id"]) == [welcome["ts"], summary["ts"]]
    assert [welcome["ts"], summary["ts"]] == [
        opened.own_channel_welcome_ts,
        opened.own_channel_summary_ts,
    ]
    assert "declared" in declared["text"] and "marker-both" in noted["text"]
    # Topics show no mentions: the owner's name, as Slack shows it.
    assert fake_slack.topic(room["id"]) == "SEV1 · open · lead @Olga (IC)"
    card = fake_slack.message(CHANNEL, opened.card_ts)
    assert f"<#{room['id']}>" in str(card["blocks"]), "the card links the channel"
    thread = [m["text"] for m in fake_slack.thread(CHANNEL, opened.card_ts)]
    assert any("marker-both" in t for t in thread), "the card's thread has it too"


def test_a_name_taken_by_another_channel_gets_a_suffix(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    fake_slack.add_channel(None, f"inc-{incident_id}-db-down", is_member=False)

    Deliverer(sessions, fake_slack.client()).drain()

    assert incident(sessions, incident_id).own_channel_name == f"inc-{incident_id}-db-down-2"


def test_a_create_whose_answer_is_lost_is_adopted_on_retry_never_made_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    # No client retry: the outbox's own "creating" mark and lookup are what is tested here.
    deliverer = Deliverer(sessions, fake_slack.client(retry_handlers=[]))
    fake_slack.drop_after("conversations.create")
    t0 = now()

    first = deliverer.drain(now=t0)
    assert len(first.problems) == 1
    assert incident(sessions, incident_id).own_channel_id is None
    made = fake_slack.channel_by_name(f"inc-{incident_id}-db-down")
    assert made is not None, "Slack made the channel; the bot never heard"

    deliverer.drain(now=t0 + timedelta(seconds=10))

    assert incident(sessions, incident_id).own_channel_id == made["id"]
    assert len(fake_slack.calls_to("conversations.create")) == 1
    assert fake_slack.calls_to("users.conversations"), "looked among its own channels"
    assert fake_slack.channel_by_name(f"inc-{incident_id}-db-down-2") is None


def test_a_name_taken_by_the_bots_own_earlier_attempt_is_adopted(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """An attempt whose outcome was not even marked (a crash before the commit of the answer,
    the mark lost with a restore) still finds its channel through name_taken."""
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    earlier = fake_slack.client().conversations_create(name=f"inc-{incident_id}-db-down")

    Deliverer(sessions, fake_slack.client()).drain()

    assert incident(sessions, incident_id).own_channel_id == earlier["channel"]["id"]
    assert fake_slack.channel_by_name(f"inc-{incident_id}-db-down-2") is None


def test_people_who_cant_be_invited_are_skipped_and_the_rest_still_are(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_user("U0OWNER0001")
    fake_slack.add_user("U0GUEST0001", restricted=True)
    incident_id = declare(sessions, owner="U0OWNER0001", assignee="U0GUEST0001")

    result = Deliverer(sessions, fake_slack.client()).drain()

    assert result.problems == []
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None
    members = set(fake_slack.channel_members(room))
    assert "U0OWNER0001" in members and "U0GUEST0001" not in members
    [skipped] = [m["text"] for m in fake_slack.messages(room) if "Not invited" in m["text"]]
    assert "<@U0GUEST0001> (user_is_restricted)" in skipped and "U0OWNER0001" not in skipped


# --- Through the declare form -------------------------------------------------------------------


def test_the_declare_forms_box_opens_a_channel_for_a_minor_incident(slackbot: Bot):
    bot = slackbot
    view = open_declare(bot)
    box = next(b for b in view["blocks"] if b.get("block_id") == "open_channel")
    assert box["element"]["type"] == "checkboxes" and "initial_options" not in box["element"]

    fields = {"title": "Search is slow", "severity": "SEV3", "open_channel": ["yes"]}
    assert submit(bot, view, fields) is None
    incident_id = latest_incident_id(bot)
    bot.fake.wait_for(lambda: bot.fake.channel_by_name(f"inc-{incident_id}-search-is-slow"))
    settle(bot, incident_id)

    opened = incident(bot.sessions, incident_id)
    assert opened.own_channel_name == f"inc-{incident_id}-search-is-slow"
    assert opened.wants_own_channel


# --- Working from inside the channel ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status mitigated rolled back", ("status", "INC-5", "rolled back")),
        ("sev 2 it spreads", ("severity", "INC-5", "it spreads")),
        ("note 12 users affected", ("note", "INC-5", "12 users affected")),
        ("note INC-7 over there", ("note", "INC-7", "over there")),
        ("show", ("show", "INC-5", "")),
        ("assign me", ("assign", "INC-5", "")),
    ],
)
def test_in_an_incident_channel_the_incident_is_implied(text: str, expected: tuple):
    asked: list[bool] = []

    def here() -> str:
        asked.append(True)
        return "INC-5"

    command = grammar.parse(text, "U0ALICE0001", here)
    assert (command.name, command.incident, command.text) == expected
    assert asked == ([] if "INC-7" in text else [True])


def test_elsewhere_a_command_without_an_id_still_asks_which_incident():
    with pytest.raises(InvalidInput, match="Which incident"):
        grammar.parse("status", "U0ALICE0001")
    with pytest.raises(InvalidInput, match="'mitigated' is not an incident id"):
        grammar.parse("status mitigated", "U0ALICE0001")


def test_commands_typed_in_the_channel_change_its_incident(slackbot: Bot, fake_slack: FakeSlack):
    sessions = slackbot.sessions
    incident_id = declare(sessions, title="DB down")
    other = declare(sessions, severity="SEV3", title="Search slow")
    Deliverer(sessions, fake_slack.client()).drain()
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None

    reply = ask(slackbot, "status mitigated rolled back the deploy", channel=room)
    assert reply["text"] == f"INC-{incident_id} is now mitigated."
    reply = ask(slackbot, f"note INC-{other} seen from the war room", channel=room)
    assert f"INC-{other}" in reply["text"]

    assert incident(sessions, incident_id).status == Status.MITIGATED
    with sessions() as session:
        noted = incidents.timeline(session, other)[-1]
    assert noted.text == "seen from the war room"
    refused = ask(slackbot, "status mitigated")  # the incidents channel implies nothing
    assert "'mitigated' is not an incident id" in refused["text"]


def test_the_summary_and_topic_follow_changes_and_the_topic_is_set_only_when_it_changes(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    deliverer = Deliverer(sessions, fake_slack.client())
    deliverer.drain()
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None
    topics = len(fake_slack.calls_to("conversations.setTopic"))

    add_note(sessions, incident_id, "marker-quiet")  # no topic change: no topic notice
    deliverer.drain()
    assert len(fake_slack.calls_to("conversations.setTopic")) == topics

    with sessions.begin() as session:
        incidents.change_status(session, incident_id, "investigating", ALICE)
        incidents.change_severity(session, incident_id, "SEV2", ALICE)
    deliverer.drain()

    assert len(fake_slack.calls_to("conversations.setTopic")) == topics + 1, "coalesced"
    assert fake_slack.topic(room) == "SEV2 · investigating · no lead"
    [_, summary_ts] = fake_slack.pinned(room)
    summary = fake_slack.message(room, summary_ts)
    assert "[SEV2, investigating]" in summary["text"]


# --- Closing: archived on the scheduler's clock, a new channel when reopened --------------------


def close(sessions: Sessions, incident_id: int, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.change_status(session, incident_id, "closed", ALICE, now=at, resolution=FIXED)


@pytest.mark.parametrize(
    ("after", "archived_at"),
    [
        (timedelta(days=1), [(timedelta(hours=23), False), (timedelta(days=1), True)]),
        (timedelta(0), [(timedelta(0), True)]),
        (None, [(timedelta(days=365), False)]),
    ],
)
def test_a_closed_incidents_channel_is_archived_after_its_delay_with_a_last_word(
    fake_slack: FakeSlack,
    committing_sessions: Sessions,
    after: timedelta | None,
    archived_at: list[tuple[timedelta, bool]],
):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    jobs = make_jobs(fake_slack, sessions, retrying=False)
    jobs.deliverer.drain()
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None
    closed_at = now()
    close(sessions, incident_id, closed_at)
    jobs.deliverer.drain()
    rules = replace(RULES, archive_after=after)
    jobs.settings = replace(jobs.settings, channel_rules=rules)

    for offset, archived in archived_at:
        jobs.archive_channels(closed_at + offset)
        assert fake_slack.is_archived(room) is archived
    if archived_at[-1][1]:
        last = fake_slack.messages(room)[-1]["text"]
        assert f"INC-{incident_id} is closed" in last and f"<#{CHANNEL}>" in last
        assert incident(sessions, incident_id).own_channel_archived_at is not None
        jobs.archive_channels(closed_at + timedelta(days=30))  # once
        assert len(fake_slack.calls_to("conversations.archive")) == 1


def test_reopening_after_the_archive_opens_a_second_channel_that_links_the_first(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_user("U0OWNER0001")
    incident_id = declare(sessions, title="DB down", owner="U0OWNER0001")
    jobs = make_jobs(fake_slack, sessions, retrying=False)
    jobs.deliverer.drain()
    first = incident(sessions, incident_id).own_channel_id
    closed_at = now()
    close(sessions, incident_id, closed_at)
    jobs.archive_channels(closed_at + timedelta(days=2))
    assert first is not None and fake_slack.is_archived(first)

    with sessions.begin() as session:
        incidents.change_status(session, incident_id, "investigating", ADMIN, note="it's back")
    jobs.deliverer.drain()

    reopened = incident(sessions, incident_id)
    assert reopened.own_channel_name == f"inc-{incident_id}-db-down-2"
    second = reopened.own_channel_id
    assert second not in (None, first) and not fake_slack.is_archived(second)
    said = [m["text"] for m in fake_slack.messages(second)]
    assert any(f"<#{first}>" in text for text in said), "the new channel links the old one"
    assert any("it's back" in text for text in said)
    assert "U0OWNER0001" in fake_slack.channel_members(second)
    assert fake_slack.topic(second).startswith("SEV1 · investigating")


# --- Later: a channel on request, and the people assigned meanwhile -----------------------------


def test_incident_channel_command_opens_one_later_and_refuses_a_second(
    slackbot: Bot, fake_slack: FakeSlack
):
    sessions = slackbot.sessions
    minor = declare(sessions, severity="SEV3", title="Search slow")
    Deliverer(sessions, fake_slack.client()).drain()
    assert incident(sessions, minor).own_channel_id is None

    reply = ask(slackbot, f"channel INC-{minor}")
    assert reply["text"] == f"INC-{minor} gets its own channel; it opens in a moment."
    fake_slack.wait_for(lambda: fake_slack.channel_by_name(f"inc-{minor}-search-slow"))
    settle(slackbot, minor)
    room = incident(sessions, minor).own_channel_id
    assert room is not None
    assert f"This is INC-{minor}'s channel." in [m["text"] for m in fake_slack.messages(room)]

    again = ask(slackbot, f"channel INC-{minor}")
    assert again["text"] == f"INC-{minor} already has its channel, #inc-{minor}-search-slow."
    assert len(fake_slack.calls_to("conversations.create")) == 1


def test_someone_assigned_later_is_invited_to_the_channel(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_user("U0LATE00001")
    incident_id = declare(sessions, title="DB down")
    deliverer = Deliverer(sessions, fake_slack.client())
    deliverer.drain()
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None and "U0LATE00001" not in fake_slack.channel_members(room)

    with sessions.begin() as session:
        incidents.assign(session, incident_id, ALICE, assignee="U0LATE00001")
    deliverer.drain()

    assert "U0LATE00001" in fake_slack.channel_members(room)


def test_a_pushpin_in_the_channel_makes_the_message_a_note_at_its_time_once(
    slackbot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
):
    sessions = slackbot.sessions
    incident_id = declare(sessions, title="DB down")
    Deliverer(sessions, fake_slack.client()).drain()
    room = incident(sessions, incident_id).own_channel_id
    assert room is not None
    said = fake_slack.add_message(room, "failover started at the primary &lt;db1&gt;")
    pinned = payloads.event_callback(
        payloads.reaction_added_event(BOB, "pushpin", room, said["ts"])
    )

    assert slackbot.post(pinned)[0] == 200
    wait_until(lambda: any("failover" in (e.text or "") for e in timeline(sessions, incident_id)))
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.events")
    pinned["event_id"] = "Ev0PINNEDAGAIN"  # pinned again by someone else, a new event
    assert slackbot.post(pinned)[0] == 200
    wait_until(lambda: "is a note already" in caplog.text)

    notes = [e for e in timeline(sessions, incident_id) if e.kind == EventKind.NOTE]
    assert [(n.text, n.actor) for n in notes] == [("failover started at the primary <db1>", BOB)]
    assert notes[0].occurred_at == datetime.fromtimestamp(float(said["ts"]), UTC)
    # Elsewhere (the incidents channel) a pushpin is just a reaction.
    other = fake_slack.add_message(CHANNEL, "unrelated")
    event = payloads.reaction_added_event(BOB, "pushpin", CHANNEL, other["ts"])
    assert slackbot.post(payloads.event_callback(event))[0] == 200
    assert ask(slackbot, "help")  # a later request: the event's work has run
    assert not any("unrelated" in (e.text or "") for e in timeline(sessions, incident_id))


def timeline(sessions: Sessions, incident_id: int) -> list:
    with sessions() as session:
        return incidents.timeline(session, incident_id)


def wait_until(done, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)


def test_a_new_title_renames_the_channel(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    deliverer = Deliverer(sessions, fake_slack.client())
    deliverer.drain()
    room = incident(sessions, incident_id).own_channel_id
    fake_slack.add_channel(None, f"inc-{incident_id}-primary-is-gone", is_member=False)

    with sessions.begin() as session:
        incidents.edit(session, incident_id, ALICE, {"title": "Primary is gone"})
    deliverer.drain()

    renamed = incident(sessions, incident_id)
    assert renamed.own_channel_name == f"inc-{incident_id}-primary-is-gone-2"
    assert fake_slack.channel(room)["name"] == renamed.own_channel_name
    assert renamed.own_channel_id == room


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("restricted_action", "only some people create channels"),
        ("missing_scope", "channels:manage"),
    ],
)
def test_a_refused_create_keeps_the_incident_and_says_why(
    fake_slack: FakeSlack, committing_sessions: Sessions, error: str, says: str
):
    sessions = committing_sessions
    incident_id = declare(sessions, title="DB down")
    fake_slack.fail("conversations.create", error=error, times=None)

    result = Deliverer(sessions, fake_slack.client()).drain()

    [problem] = result.problems
    assert (problem.error, problem.permanent) == (error, False), "kept, retried slowly"
    assert says in problem.explain() and f"INC-{incident_id}" in problem.explain()
    assert incident(sessions, incident_id).card_ts is not None, "the card went out"


def test_the_cards_open_channel_button_opens_one_and_goes_away(slackbot: Bot):
    bot = slackbot
    incident_id = declare_in_slack(bot, "Search is slow", "SEV3")
    assert "incident_open_channel" in buttons(card_message(bot, incident_id))

    click(bot, incident_id, "incident_open_channel")
    bot.fake.wait_for(lambda: bot.fake.channel_by_name(f"inc-{incident_id}-search-is-slow"))
    settle(bot, incident_id)

    card = card_message(bot, incident_id)
    assert "incident_open_channel" not in buttons(card)
    assert f"<#{incident(bot.sessions, incident_id).own_channel_id}>" in str(card["blocks"])


def test_lists_and_the_home_tab_link_an_incidents_channel(slackbot: Bot, fake_slack: FakeSlack):
    sessions = slackbot.sessions
    incident_id = declare(sessions, title="DB down")
    Deliverer(sessions, fake_slack.client()).drain()
    room = incident(sessions, incident_id).own_channel_id

    listed = ask(slackbot, "list")
    assert f"<#{room}>" in str(listed["blocks"])
    status, _, _ = slackbot.post(
        payloads.event_callback(payloads.app_home_opened_event(defaults.USER_ID))
    )
    assert status == 200
    home = fake_slack.wait_for(lambda: fake_slack.home_views.get(defaults.USER_ID))
    assert f"<#{room}>" in str(home["blocks"])


def test_private_incident_channels_and_show_links_the_channel(slackbot: Bot, fake_slack: FakeSlack):
    sessions = slackbot.sessions
    incident_id = declare(sessions, title="Leaked key", rules=replace(RULES, private=True))
    Deliverer(sessions, fake_slack.client()).drain()

    room = incident(sessions, incident_id).own_channel_id
    assert room is not None and fake_slack.channel(room)["is_private"] is True
    shown = ask(slackbot, f"show INC-{incident_id}")
    assert f"<#{room}>" in str(shown["blocks"])


def test_two_replicas_draining_at_once_open_one_channel_per_incident(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    declared = [declare(sessions, title=f"Outage {n}") for n in range(3)]
    fake_slack.delay(["conversations.create", "chat.postMessage"], 0.05)  # calls overlap
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def replica() -> None:
        deliverer = Deliverer(sessions, fake_slack.client())
        try:
            barrier.wait(timeout=5)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(
                incident(sessions, i).own_channel_summary_ts is None for i in declared
            ):
                deliverer.drain()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert failures == []
    assert len(fake_slack.calls_to("conversations.create")) == 3
    for incident_id in declared:
        opened = incident(sessions, incident_id)
        assert fake_slack.channel_by_name(f"inc-{incident_id}-outage-{incident_id - 1}")
        assert fake_slack.pinned(opened.own_channel_id or "") == [
            opened.own_channel_welcome_ts,
            opened.own_channel_summary_ts,
        ]
        summaries = [
            m for m in fake_slack.messages(opened.own_channel_id or "") if "[SEV1," in m["text"]
        ]
        assert len(summaries) == 1
