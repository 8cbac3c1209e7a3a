"""Follow-ups and the review in Slack, end to end: signed commands, shortcuts, clicks and modal
submissions sent to the real bot over loopback, checked on the fake Slack and in the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import Actor, followups
from bot.incidents.followups import FollowUpDraft, FollowUpRules
from db.models import (
    Delivery,
    DeliveryAction,
    FollowUp,
    FollowUpStatus,
    Incident,
    ReviewStatus,
    Status,
)
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.test_slack_commands import ask, run
from tests.test_slack_interactions import (
    BOB,
    CHANNEL,
    STATUS_BUTTON,
    USER,
    card_message,
    click,
    declare,
    ephemerals,
    input_block_ids,
    input_element,
    load,
    move,
    open_from_card,
    open_home,
    settle,
    submit,
    wait_for_new_view,
)

RULES = FollowUpRules()


@pytest.fixture
def bot(slackbot: Bot) -> Bot:
    slackbot.fake.add_user(BOB, "bob")
    return slackbot


@pytest.fixture
def tracker_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with FOLLOWUP_TRACKER=github: follow-ups get Export buttons."""
    fake_slack.add_user(BOB, "bob")
    rules = replace(RULES, tracker="github")
    with running_bot(fake_slack, engine, committing_sessions, followup_rules=rules) as running:
        yield running


def followups_of(bot: Bot, incident_id: int | None = None) -> list[FollowUp]:
    with bot.sessions() as session:
        query = select(FollowUp).order_by(FollowUp.id)
        if incident_id is not None:
            query = query.where(FollowUp.incident_id == incident_id)
        return list(session.scalars(query))


def count_followups(bot: Bot) -> int:
    with bot.sessions() as session:
        return session.scalar(select(func.count()).select_from(FollowUp)) or 0


def add_directly(bot: Bot, incident_id: int, title: str, **draft: Any) -> FollowUp:
    """A follow-up made the way every surface makes one (the domain), for setting up."""
    now = draft.pop("now", None)
    with bot.sessions.begin() as session:
        made = followups.add_followup(
            session,
            incident_id,
            FollowUpDraft(title=title, **draft),
            Actor(USER),
            RULES,
            now=now,
        )
        session.flush()
        session.expunge(made)
    bot.deliverer.drain()
    return made


def actions_of(message: dict[str, Any]) -> list[str]:
    found = []
    for block in message.get("blocks") or []:
        if block["type"] == "actions":
            found += [e["action_id"] for e in block["elements"]]
        accessory = block.get("accessory")
        if accessory and accessory.get("action_id"):
            found.append(accessory["action_id"])
    return found


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [], ensure_ascii=False) + str(message.get("text"))


def dms(bot: Bot, user_id: str) -> list[dict[str, Any]]:
    return bot.fake.messages(user_id)


# --- /incident followup ------------------------------------------------------------------------


def test_followup_command_reads_owner_and_due_from_the_end_and_shows_it_on_the_card(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    due = datetime.now(UTC).date() + timedelta(weeks=2)

    url = run(bot, f"followup INC-{incident_id} Fix the due-date bug <@{BOB}|bob> due in 2w")
    reply = ask(bot, "help")  # settles the earlier ack's work
    assert "run incidents" in reply["text"]

    [made] = followups_of(bot, incident_id)
    assert (made.title, made.owner, made.priority) == ("Fix the due-date bug", BOB, "medium")
    assert abs((made.due_on - due).days) <= 1
    from tests.test_slack_commands import ACKS

    assert ACKS[url].startswith(f"Added FU-{made.id} to INC-{incident_id}: Fix the due-date bug")

    bot.fake.wait_for(lambda: f"FU-{made.id}" in all_text(card_message(bot, incident_id)))
    card = card_message(bot, incident_id)
    assert f"followup_done:{made.id}" in actions_of(card)
    assert "followup_add" in actions_of(card)
    assert not any(a.startswith("followup_export") for a in actions_of(card))  # no tracker

    # The owner is told by DM: FU-n of INC-m, due, priority, a Done button.
    bot.fake.wait_for(lambda: dms(bot, BOB))
    dm = dms(bot, BOB)[-1]
    assert f"You own FU-{made.id} of INC-{incident_id}" in dm["text"]
    assert "Priority: medium" in all_text(dm)
    assert f"followup_done:{made.id}" in actions_of(dm)


def test_a_title_may_say_due_and_a_bare_in_span_is_the_due_date(bot: Bot):
    incident_id = declare(bot, "Search latency", "SEV3")
    run(bot, f"followup INC-{incident_id} Review the due diligence")
    run(bot, f"followup INC-{incident_id} Add an alert in 3d")
    settle(bot, incident_id)
    first, second = followups_of(bot, incident_id)
    assert (first.title, first.due_on) == ("Review the due diligence", None)
    assert second.title == "Add an alert" and second.due_on is not None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("followup INC-999 Fix it properly", "INC-999"),
        ("followup {id} Fix it properly due 2020-01-01", "in the past"),
        ("followup {id} Fix it properly due 2026-13-45", "not a due date"),
        ("followup {id}", "What is the follow-up?"),
        ("followup Fix it properly", "Usage: `/incident followup"),
        ("followup {id} ab", "Title"),
        ("followups sideways", "not a filter"),
    ],
)
def test_bad_followup_commands_say_why_and_add_nothing(bot: Bot, text: str, says: str):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    reply = ask(bot, text.format(id=f"INC-{incident_id}"))
    assert says in reply["text"]
    assert count_followups(bot) == 0


def test_a_follow_up_is_triaged_from_the_command_and_the_close_then_goes_through(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    first = add_directly(bot, incident_id, "Rotate the keys")
    second = add_directly(bot, incident_id, "Write the runbook")
    move(bot, incident_id, "resolved")
    refused = ask(bot, f"status INC-{incident_id} closed")
    assert "can't close yet" in refused["text"]

    reply = ask(bot, f"followup FU-{first.id} <@{BOB}|bob> due in 2w")
    assert reply["text"].startswith(f"FU-{first.id} of INC-{incident_id}: owner <@{BOB}>, due ")
    assert ask(bot, f"followup fu-{second.id} won\u2019t do")["text"].endswith("won't do.")
    settle(bot, incident_id)
    first_now, second_now = followups_of(bot, incident_id)
    assert (first_now.owner, second_now.status) == (BOB, FollowUpStatus.WONT_DO)
    assert first_now.due_on is not None
    bot.fake.wait_for(lambda: dms(bot, BOB))  # the new owner is told

    assert ask(bot, f"followup FU-{second.id} reopen")["text"].endswith(", open.")
    assert ask(bot, f"followup FU-{second.id} wontdo")["text"].endswith("won't do.")
    assert "already won't do" in ask(bot, f"followup FU-{second.id} wontdo")["text"]
    ask(bot, f"status INC-{incident_id} closed")
    settle(bot, incident_id)
    assert load(bot, incident_id).status == Status.CLOSED


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("followup FU-{fu}", "What should change?"),
        ("followup FU-{fu} finished", "isn't a change to a follow-up"),
        ("followup FU-{fu} due 2020-01-01", "in the past"),
        ("followup FU-{fu} done <!channel>", "isn't a change"),
        ("followup FU-99999 done", "There is no follow-up FU-99999"),
    ],
)
def test_a_bad_follow_up_change_says_why_and_changes_nothing(bot: Bot, text: str, says: str):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    made = add_directly(bot, incident_id, "Rotate the keys")
    assert says in ask(bot, text.format(fu=made.id))["text"]
    [after] = followups_of(bot, incident_id)
    assert (after.owner, after.due_on, after.status) == (None, None, FollowUpStatus.OPEN)


def test_followups_lists_mine_and_overdue_and_done_marks_one_done(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    past = datetime.now(UTC) - timedelta(days=10)
    late = add_directly(
        bot, incident_id, "Rotate the keys", owner=USER, due_on=past.date(), now=past
    )
    other = add_directly(bot, incident_id, "Write the runbook", owner=BOB)

    mine = ask(bot, "followups mine")
    assert f"FU-{late.id}" in all_text(mine) and f"FU-{other.id}" not in all_text(mine)
    assert "overdue" in all_text(mine)
    overdue = ask(bot, "followups overdue")
    assert f"FU-{late.id}" in all_text(overdue) and f"FU-{other.id}" not in all_text(overdue)
    every = ask(bot, f"followups INC-{incident_id}")
    assert f"FU-{late.id}" in all_text(every) and f"FU-{other.id}" in all_text(every)

    # Done, from the ephemeral list (block_actions on the Done button).
    from tests.test_slack_commands import click as click_ephemeral

    seen = len(ephemerals(bot.fake))
    click_ephemeral(bot, mine, f"followup_done:{late.id}")
    bot.fake.wait_for(lambda: followups_of(bot)[0].status == FollowUpStatus.DONE)
    done = followups_of(bot)[0]
    assert (done.status, done.closed_by) == (FollowUpStatus.DONE, USER)
    bot.fake.wait_for(
        lambda: (
            any("is done" in str(r.get("text")) for r in bot.responses())
            or len(ephemerals(bot.fake)) > seen
        )
    )
    assert ask(bot, "followups overdue")["text"].endswith("none.")


def test_done_on_the_card_marks_the_followup_done_and_a_forged_one_changes_nothing(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    made = add_directly(bot, incident_id, "Rotate the keys", owner=USER)
    bot.fake.wait_for(lambda: f"FU-{made.id}" in all_text(card_message(bot, incident_id)))

    click(bot, incident_id, f"followup_done:{made.id}")
    bot.fake.wait_for(lambda: followups_of(bot)[0].status == FollowUpStatus.DONE)
    bot.fake.wait_for(
        lambda: f"followup_done:{made.id}" not in actions_of(card_message(bot, incident_id))
    )

    bot.fake.wait_for(lambda: any(f"FU-{made.id} is done" in e for e in ephemerals(bot.fake)))

    card = card_message(bot, incident_id)
    act = payloads.action(
        f"followup_done:{made.id + 50}", block_id="x", value=json.dumps({"fu": made.id + 50})
    )
    seen = len(ephemerals(bot.fake))
    status, _, _ = bot.post(
        payloads.block_actions(act, message=card, channel_id=CHANNEL, fake=bot.fake, user_id=USER)
    )
    assert status == 200
    bot.fake.wait_for(lambda: any(f"FU-{made.id + 50}" in e for e in ephemerals(bot.fake)[seen:]))
    assert count_followups(bot) == 1


# --- The message shortcut and the form ---------------------------------------------------------


def open_followup_shortcut(bot: Bot, message: dict[str, Any], channel: str = CHANNEL) -> dict:
    previous = bot.fake.top_view(USER)
    status, _, body = bot.post(
        payloads.message_shortcut("add_as_followup", message, fake=bot.fake, channel_id=channel)
    )
    assert (status, body) == (200, "")
    modal = wait_for_new_view(bot.fake, USER, previous)
    assert modal["callback_id"] == "incident_followup"
    return modal


def test_shortcut_prefills_the_message_and_its_link_and_adds_the_followup(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    said = bot.fake.add_message(CHANNEL, "We should alert on &lt;queue depth&gt;  " + "x" * 400)

    modal = open_followup_shortcut(bot, said)
    assert input_block_ids(modal) == ["incident", "title", "owner", "due", "priority"]
    title = input_element(modal, "title")["initial_value"]
    assert title.startswith("We should alert on <queue depth> x") and len(title) <= 255
    assert input_element(modal, "due")["type"] == "datepicker"
    assert input_element(modal, "owner")["type"] == "users_select"
    priorities = [o["value"] for o in input_element(modal, "priority")["options"]]
    assert priorities == ["high", "medium", "low"]
    assert "initial_option" not in input_element(modal, "incident")  # not an incident's channel

    due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    answer = submit(
        bot,
        modal,
        {
            "incident_picker": str(incident_id),
            "title": "Alert on queue depth",
            "owner": BOB,
            "due": due,
            "priority": "high",
        },
    )
    assert answer is None
    [made] = followups_of(bot, incident_id)
    permalink = bot.fake.client().chat_getPermalink(channel=CHANNEL, message_ts=said["ts"])
    assert (made.title, made.owner, made.due_on.isoformat(), made.priority) == (
        "Alert on queue depth",
        BOB,
        due,
        "high",
    )
    assert made.source_permalink == permalink["permalink"]


def test_shortcut_in_a_cards_thread_picks_that_incident(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    card_ts = load(bot, incident_id).card_ts
    said = bot.fake.add_message(CHANNEL, "Add a retry budget", thread_ts=card_ts)
    modal = open_followup_shortcut(bot, said)
    assert input_element(modal, "incident")["initial_option"]["value"] == str(incident_id)


@pytest.mark.parametrize(
    ("inputs", "block"),
    [
        ({"title": "Alert on queue depth"}, "incident"),
        ({"incident_picker": "{id}", "title": "ab"}, "title"),
        ({"incident_picker": "{id}", "title": "Alert on it", "due": "2020-01-01"}, "due"),
        ({"incident_picker": "99999", "title": "Alert on it"}, "incident"),
    ],
)
def test_bad_followup_form_comes_back_inline_on_its_field(bot: Bot, inputs: dict, block: str):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    modal = open_followup_shortcut(bot, bot.fake.add_message(CHANNEL, "Do something"))
    filled = {k: v.format(id=incident_id) for k, v in inputs.items()}
    answer = submit(bot, modal, filled)
    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block]
    assert count_followups(bot) == 0


def test_add_followup_on_the_card_opens_the_form_for_that_incident(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    modal = open_from_card(bot, incident_id, "followup_add")
    assert modal["callback_id"] == "incident_followup"
    assert "incident" not in input_block_ids(modal)
    assert submit(bot, modal, {"title": "Write the runbook"}) is None
    [made] = followups_of(bot, incident_id)
    assert (made.title, made.owner, made.priority) == ("Write the runbook", None, "medium")


def test_export_button_only_with_a_tracker_and_it_queues_one_export(tracker_bot: Bot):
    bot = tracker_bot
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    made = add_directly(bot, incident_id, "Rotate the keys", owner=USER)
    bot.fake.wait_for(
        lambda: f"followup_export:{made.id}" in actions_of(card_message(bot, incident_id))
    )
    click(bot, incident_id, f"followup_export:{made.id}")

    def exports() -> list[Delivery]:
        with bot.sessions() as session:
            action = Delivery.action == DeliveryAction.EXPORT_FOLLOWUP
            return list(session.scalars(select(Delivery).where(action)))

    bot.fake.wait_for(exports)
    [row] = exports()
    assert row.payload == {"followup_id": made.id, "tracker": "github"}
    assert row.incident_id == incident_id


# --- The Home tab and the digest ---------------------------------------------------------------


def test_home_tab_lists_your_open_followups_with_overdue_marked(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    past = datetime.now(UTC) - timedelta(days=10)
    late = add_directly(
        bot, incident_id, "Rotate the keys", owner=USER, due_on=past.date(), now=past
    )
    add_directly(bot, incident_id, "Not mine", owner=BOB)
    home = open_home(bot)
    shown = json.dumps(home["blocks"])
    assert "Your follow-ups* (1 open)" in shown
    assert f"FU-{late.id}" in shown and "*overdue*" in shown and "Not mine" not in shown
    assert f"followup_done:{late.id}" in actions_of(home)


def test_the_weekly_digest_dm_lists_the_owners_overdue_followups(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    past = datetime.now(UTC) - timedelta(days=10)
    late = add_directly(
        bot, incident_id, "Rotate the keys", owner=BOB, due_on=past.date(), now=past
    )
    with bot.sessions.begin() as session:
        # This week's Monday, 09:30 (the default FOLLOWUP_DIGEST is Monday 09:00), not later
        # than now: the row is due at once.
        now = datetime.now(UTC)
        monday = (now - timedelta(days=now.weekday())).replace(hour=9, minute=30)
        if monday > now:
            monday -= timedelta(days=7)
        owners = followups.queue_overdue_digest(session, RULES, UTC, monday)
    assert owners == [BOB]
    before = len(dms(bot, BOB))
    bot.deliverer.drain()
    bot.fake.wait_for(lambda: len(dms(bot, BOB)) > before)
    dm = dms(bot, BOB)[-1]
    assert "1 overdue follow-up" in dm["text"]
    assert f"FU-{late.id}" in all_text(dm) and f"followup_done:{late.id}" in actions_of(dm)


# --- The review --------------------------------------------------------------------------------


def open_review(bot: Bot, incident_id: int, user: str = USER) -> dict[str, Any]:
    previous = bot.fake.top_view(user)
    run(bot, f"review INC-{incident_id}", user=user)
    view = wait_for_new_view(bot.fake, user, previous)
    assert view["callback_id"] == "incident_review"
    return view


def test_review_form_saves_the_review_fields_even_once_closed(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    move(bot, incident_id, "resolved")
    move(bot, incident_id, "closed")
    assert load(bot, incident_id).status == Status.CLOSED

    view = open_review(bot, incident_id)
    assert input_block_ids(view) == [
        "impact_started_at",
        "impact_ended_at",
        "customer_impact",
        "contributing_factors",
        "went_well",
        "went_badly",
        "review_status",
        "reviewer",
    ]
    assert input_element(view, "impact_started_at")["type"] == "datetimepicker"
    started = load(bot, incident_id).created_at.replace(microsecond=0)
    answer = submit(
        bot,
        view,
        {
            "impact_started_at": int(started.timestamp()),
            "customer_impact": "Checkout failed for 5% of users",
            "went_well": "Fast rollback",
            "review_status": "in_review",
            "reviewer": BOB,
        },
    )
    assert answer is None
    incident = load(bot, incident_id)
    assert incident.impact_started_at == started
    assert incident.customer_impact == "Checkout failed for 5% of users"
    assert (incident.review_status, incident.reviewer) == (ReviewStatus.IN_REVIEW, BOB)


def test_review_impact_end_before_start_comes_back_inline(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    view = open_review(bot, incident_id)
    now = int(datetime.now(UTC).timestamp())
    answer = submit(
        bot,
        view,
        {"impact_started_at": now - 60, "impact_ended_at": now - 3600, "review_status": "draft"},
    )
    assert answer is not None and list(answer["errors"]) == ["impact_ended_at"]
    assert load(bot, incident_id).impact_started_at is None


# --- The close rule ----------------------------------------------------------------------------


def test_close_refused_until_triaged_and_an_admin_closes_anyway_with_a_reason(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    made = add_directly(bot, incident_id, "Rotate the keys")  # no owner, no due date
    move(bot, incident_id, "resolved")

    # Anyone: the domain's sentence, no button.
    reply = ask(bot, f"status INC-{incident_id} closed")
    assert "can't close" in reply["text"] and f"FU-{made.id}" in reply["text"]
    assert load(bot, incident_id).status == Status.RESOLVED

    # The card's Close button, for an admin: the sentence and "Close anyway".
    seen = len(bot.fake.ephemeral_messages(user=ADMIN_ID))
    click(bot, incident_id, STATUS_BUTTON + "closed", user_id=ADMIN_ID)
    bot.fake.wait_for(lambda: len(bot.fake.ephemeral_messages(user=ADMIN_ID)) > seen)
    refusal = bot.fake.ephemeral_messages(user=ADMIN_ID)[-1]
    assert "can't close" in refusal["text"]
    assert "incident_close_anyway" in actions_of(refusal)
    assert load(bot, incident_id).status == Status.RESOLVED

    previous = bot.fake.top_view(ADMIN_ID)
    shown = {"ts": refusal.get("message_ts") or "1.000001", **refusal}
    status, _, _ = bot.post(
        payloads.block_actions_from(
            shown,
            "incident_close_anyway",
            channel_id=CHANNEL,
            fake=bot.fake,
            user_id=ADMIN_ID,
            is_ephemeral=True,
        )
    )
    assert status == 200
    modal = wait_for_new_view(bot.fake, ADMIN_ID, previous)
    assert modal["callback_id"] == "incident_close_override"
    answer = submit(bot, modal, {"override": "  "}, user_id=ADMIN_ID)
    assert answer is not None and list(answer["errors"]) == ["override"]
    assert load(bot, incident_id).status == Status.RESOLVED

    assert (
        submit(bot, modal, {"override": "Tracked in the quarterly plan"}, user_id=ADMIN_ID) is None
    )
    assert load(bot, incident_id).status == Status.CLOSED


def test_a_non_admin_is_not_offered_close_anyway(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    add_directly(bot, incident_id, "Rotate the keys")
    move(bot, incident_id, "resolved")
    seen = len(bot.fake.ephemeral_messages(user=USER))
    click(bot, incident_id, STATUS_BUTTON + "closed")
    bot.fake.wait_for(lambda: len(bot.fake.ephemeral_messages(user=USER)) > seen)
    refusal = bot.fake.ephemeral_messages(user=USER)[-1]
    assert "can't close" in refusal["text"]
    assert "incident_close_anyway" not in actions_of(refusal)
    assert load(bot, incident_id).status == Status.RESOLVED


def test_closing_goes_through_once_followups_are_triaged(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    add_directly(
        bot,
        incident_id,
        "Rotate the keys",
        owner=BOB,
        due_on=datetime.now(UTC).date() + timedelta(days=3),
    )
    move(bot, incident_id, "resolved")
    move(bot, incident_id, "closed")
    assert load(bot, incident_id).status == Status.CLOSED


_ = (Incident, defaults)


# --- In the incident's channel: the id implied, the pinned summary -----------------------------


def test_in_the_incident_channel_the_id_is_implied_and_the_pinned_summary_lists_it(bot: Bot):
    incident_id = declare(bot, "Database is down", "SEV2")  # SEV2: its own channel
    bot.fake.wait_for(lambda: load(bot, incident_id).own_channel_summary_ts)
    room = load(bot, incident_id).own_channel_id
    assert room is not None

    reply = ask(bot, f"followup Add a replica failover drill <@{BOB}> in 2w", channel=room)
    assert "Usage" not in reply["text"]
    [made] = followups_of(bot, incident_id)
    assert (made.title, made.owner) == ("Add a replica failover drill", BOB)
    assert made.due_on == datetime.now(UTC).date() + timedelta(weeks=2)

    def summary() -> dict[str, Any]:
        ts = load(bot, incident_id).own_channel_summary_ts or ""
        return bot.fake.message(room, ts) or {}

    bot.fake.wait_for(lambda: f"FU-{made.id}" in all_text(summary()))
    pinned = summary()
    assert f"followup_done:{made.id}" in actions_of(pinned)
    assert "followup_add" in actions_of(pinned)

    # Done, from the pinned summary.
    status, _, _ = bot.post(
        payloads.block_actions_from(
            pinned, f"followup_done:{made.id}", channel_id=room, fake=bot.fake, user_id=BOB
        )
    )
    assert status == 200
    bot.fake.wait_for(lambda: followups_of(bot)[0].status == FollowUpStatus.DONE)
    assert followups_of(bot)[0].closed_by == BOB
    bot.fake.wait_for(lambda: f"followup_done:{made.id}" not in actions_of(summary()))


def test_the_card_lists_at_most_eight_and_says_how_many_more(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    for n in range(11):
        add_directly(bot, incident_id, f"Follow-up number {n} " + "word " * 40, owner=BOB)
    settle(bot, incident_id)
    card = card_message(bot, incident_id)
    done_buttons = [a for a in actions_of(card) if a.startswith("followup_done:")]
    assert len(done_buttons) == 8
    assert f"…and 3 more: `/incident followups INC-{incident_id}`" in all_text(card)
    assert len(card["blocks"]) <= 50


def test_help_lists_followup_and_followups(bot: Bot):
    text = ask(bot, "help")["text"]
    assert "`/incident followup <id> <title> [@owner] [due 2026-12-20|in 2w]`" in text
    assert "`/incident followups [mine|overdue|<id>]`" in text
    assert "`/incident review <id>`" in text


def test_the_cards_review_button_opens_the_review_form(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    view = open_from_card(bot, incident_id, "incident_review")
    assert view["callback_id"] == "incident_review"
    assert submit(bot, view, {"went_badly": "Paging was slow", "review_status": "done"}) is None
    incident = load(bot, incident_id)
    assert (incident.went_badly, incident.review_status) == ("Paging was slow", ReviewStatus.DONE)


def test_review_of_an_unknown_incident_says_so(bot: Bot):
    run(bot, "review INC-4242")
    bot.fake.wait_for(lambda: any("INC-4242" in e for e in ephemerals(bot.fake)))
    assert bot.fake.calls_to("views.open") == []


def test_the_update_form_refuses_a_close_the_rule_forbids_on_its_status(bot: Bot):
    from bot.slack.blocks.forms import NO_PROMISE

    incident_id = declare(bot, "Checkout is failing", "SEV3")
    made = add_directly(bot, incident_id, "Rotate the keys")
    move(bot, incident_id, "resolved")
    previous = bot.fake.top_view(USER)
    run(bot, f"update INC-{incident_id}")
    view = wait_for_new_view(bot.fake, USER, previous)
    assert view["callback_id"] == "incident_update"
    inputs = {"update_status": "closed", "summary": "Wrapping up", "next_update": NO_PROMISE}
    answer = submit(bot, view, inputs)
    assert answer is not None and list(answer["errors"]) == ["update_status"]
    assert f"FU-{made.id}" in answer["errors"]["update_status"]
    assert load(bot, incident_id).status == Status.RESOLVED


def test_an_owners_dm_about_a_followup_done_meanwhile_is_not_sent(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    with bot.sessions.begin() as session:
        made = followups.add_followup(
            session,
            incident_id,
            FollowUpDraft(title="Rotate the keys", owner=BOB),
            Actor(USER),
            RULES,
        )
        followups.set_followup_status(session, made.id, FollowUpStatus.DONE, Actor(BOB))
    bot.deliverer.drain()
    settle(bot, incident_id)
    assert dms(bot, BOB) == []
    with bot.sessions() as session:
        told = session.scalars(
            select(Delivery).where(
                Delivery.action == DeliveryAction.TELL_USER, Delivery.payload["user"].astext == BOB
            )
        ).all()
    assert [row.delivered_at is not None or row.failed_at is not None for row in told] == [True]


@pytest.mark.parametrize(
    ("text", "title", "owner", "due"),
    [
        (
            "Fix the due-date bug <@U0BOB000001|bob> due 2026-12-20",
            "Fix the due-date bug",
            BOB,
            "2026-12-20",
        ),
        ("Fix it due in 2w <@U0BOB000001>", "Fix it", BOB, "in 2w"),
        ("Fix it in 2 weeks", "Fix it", None, "in 2 weeks"),
        ("Review the due diligence", "Review the due diligence", None, None),
        ("Migrate in 5 regions", "Migrate in 5 regions", None, None),
        (
            "Mention <@U0BOB000001> in the runbook",
            "Mention <@U0BOB000001> in the runbook",
            None,
            None,
        ),
        ("Drill due tomorrow", "Drill", None, "tomorrow"),
        ("Drill due in 2 months", "Drill", None, "in 2 months"),  # parse_due refuses it
    ],
)
def test_owner_and_due_are_read_from_the_end_only(text: str, title: str, owner, due):
    from bot.slack import grammar

    command = grammar.parse(f"followup INC-7 {text}", USER)
    assert (command.name, command.incident) == ("followup", "INC-7")
    assert (command.text, command.user, command.due) == (title, owner, due)


def test_an_admin_closing_an_active_incident_may_give_the_reason_in_the_resolve_form(bot: Bot):
    incident_id = declare(bot, "Checkout is failing", "SEV3")
    add_directly(bot, incident_id, "Rotate the keys")  # no owner, no due date

    mine = open_from_card(bot, incident_id, STATUS_BUTTON + "closed")
    assert "override" not in input_block_ids(mine)  # not an admin
    answer = submit(bot, mine, {"resolution": "Rolled back"})
    assert answer is not None and "can't close" in json.dumps(answer["errors"])

    modal = open_from_card(bot, incident_id, STATUS_BUTTON + "closed", user_id=ADMIN_ID)
    assert input_block_ids(modal)[-1] == "override"
    answer = submit(bot, modal, {"resolution": "Rolled back"}, user_id=ADMIN_ID)
    assert answer is not None and list(answer["errors"]) == ["override"]
    assert load(bot, incident_id).status == Status.OPEN

    reason = {"resolution": "Rolled back", "override": "Tracked in the quarterly plan"}
    assert submit(bot, modal, reason, user_id=ADMIN_ID) is None
    assert load(bot, incident_id).status == Status.CLOSED
