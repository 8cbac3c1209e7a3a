"""Roles, structured updates and subscriptions from Slack, end to end: signed commands, clicks
and form submissions sent to the real bot over HTTP, checked on what reached the fake Slack and
on what the bot committed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import incidents
from bot.incidents import Actor, IncidentDraft, InvalidInput
from bot.slack import grammar, ids
from bot.slack.blocks import escape
from bot.slack.blocks.forms import interval_label
from db.models import EventKind, IncidentEvent, IncidentRole, Status
from tests.fakeslack import defaults, payloads
from tests.slackbot import ADMIN_ID, Bot
from tests.test_slack_commands import (
    ACKS,
    OTHER,
    ask,
    declare,
    events,
    load,
    run,
    settle,
    slack_writes,
    snapshot,
    texts,
    with_card,
)

USER = defaults.USER_ID
CHANNEL = defaults.CHANNEL_ID
BOB = OTHER  # "U0BOB00001"


@pytest.fixture
def bot(slackbot: Bot) -> Bot:
    slackbot.fake.add_user(BOB, "bob")
    return slackbot


# --- The grammar: pure --------------------------------------------------------------------------


def here() -> str:
    return "INC-5"


@pytest.mark.parametrize(
    ("text", "implied", "expected"),
    [
        ("update INC-12", None, ("update", "INC-12", "", None)),
        (
            "update 12 rolled back, errors dropping",
            None,
            ("update", "12", "rolled back, errors dropping", None),
        ),
        ("update", here, ("update", "INC-5", "", None)),
        ("update errors dropping", here, ("update", "INC-5", "errors dropping", None)),
        ("update INC-7", here, ("update", "INC-7", "", None)),
        (f"role INC-12 comms <@{BOB}|bob>", None, ("role", "INC-12", "comms", BOB)),
        (f"role 12 Scribe <@{BOB}>", None, ("role", "12", "scribe", BOB)),
        ("role 12 comms me", None, ("role", "12", "comms", USER)),
        ("role 12 comms nobody", None, ("role", "12", "comms", None)),
        ("role 12 lead me", None, ("role", "12", "lead", USER)),
        ("role 12 owner me", None, ("role", "12", "lead", USER)),
        ("role comms me", here, ("role", "INC-5", "comms", USER)),
        ("subscribe INC-12", None, ("subscribe", "INC-12", "", None)),
        ("unsubscribe #12", None, ("unsubscribe", "#12", "", None)),
        ("subscribe", here, ("subscribe", "INC-5", "", None)),
        ("declare update failed", None, ("declare", None, "update failed", None)),
        ("declare role of the DNS", None, ("declare", None, "role of the DNS", None)),
    ],
)
def test_the_new_subcommands_parse(text: str, implied: Any, expected: tuple[Any, ...]) -> None:
    command = grammar.parse(text, USER, implied or grammar._nowhere)
    role = command.role if command.name == "role" else None
    user = command.user if command.name == "role" else None
    assert (command.name, command.incident, command.text or role or "", user) == (
        expected[0],
        expected[1],
        expected[2],
        expected[3],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("update failed", "'failed' is not an incident id"),
        ("update failed", "`/incident declare update failed`"),
        ("update", "Which incident? Usage: `/incident update <id> ...`"),
        ("role", "Which incident?"),
        ("role comms me", "'comms' is not an incident id"),
        ("role 12", "Which role?"),
        ("role 12 comms", "Who? Usage: `/incident role <id> <role> @someone|me|nobody`"),
        ("role 12 comms bob", "Who?"),
        ("subscribe", "Which incident?"),
        ("subscribe 12 13", "Only the incident, please. Usage: `/incident subscribe <id>`."),
        ("unsubscribe me", "'me' is not an incident id"),
    ],
)
def test_the_new_subcommands_refuse_what_they_cannot_read(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        grammar.parse(text, USER)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (5, "5 sec"),
        (90, "90 sec"),
        (900, "15 min"),
        (1_800, "30 min"),
        (3_600, "1 hour"),
        (14_400, "4 hours"),
        (5_400, "90 min"),
        (86_400, "1 day"),
    ],
)
def test_intervals_read_as_people_say_them(seconds: int, label: str) -> None:
    assert interval_label(timedelta(seconds=seconds)) == label


# --- help and declare ---------------------------------------------------------------------------


def test_help_lists_the_coordination_subcommands_and_says_declare_always_declares(bot: Bot):
    text = ask(bot, "help")["text"]

    for usage in (
        "`/incident update <id> [summary]`",
        "`/incident role <id> <role> @someone|me|nobody`",
        "`comms` (Communications lead)",
        "`scribe` (Scribe)",
        "`/incident subscribe <id>`",
        "`/incident unsubscribe <id>`",
        "`/incident declare <title>`: always declares",
        "`/incident declare update failed`",
    ):
        assert usage in text
    assert slack_writes(bot) == []


def test_declare_update_failed_declares_it(bot: Bot):
    run(bot, "declare update failed")

    bot.fake.wait_for_call("views.open")
    view = bot.fake.top_view()
    assert view is not None and view["callback_id"] == ids.DECLARE_VIEW
    title = next(b for b in view["blocks"] if b.get("block_id") == ids.TITLE_BLOCK)
    assert title["element"]["initial_value"] == "update failed"


def test_update_failed_is_the_update_subcommand_with_a_bad_id(bot: Bot):
    url = run(bot, "update failed")

    said = ACKS[url]
    assert "'failed' is not an incident id" in said
    assert "`/incident declare update failed`" in said
    settle(bot)
    assert bot.fake.calls_to("views.open") == []
    assert snapshot(bot)[0] == ()


# --- /incident role -----------------------------------------------------------------------------


def holders(bot: Bot, number: int) -> dict[str, str | None]:
    with bot.sessions() as session:
        incident = incidents.get_incident(session, number)
        held = incidents.holders(session, incident, bot.settings.role_rules)
        return {role.key: who for role, who in held}


@pytest.mark.parametrize(
    ("text", "reply", "held"),
    [
        ("role 1 comms me", f"INC-1 comms: <@{USER}>.", {"comms": USER}),
        (f"role 1 comms <@{BOB}|bob>", f"INC-1 comms: <@{BOB}>.", {"comms": BOB}),
        ("role INC-1 Scribe me", f"INC-1 scribe: <@{USER}>.", {"scribe": USER}),
        ("role 1 lead me", f"INC-1 lead: <@{USER}>.", {"lead": USER}),
    ],
)
def test_role_command_gives_the_role(bot: Bot, text: str, reply: str, held: dict[str, str]):
    number, _ = with_card(bot)

    assert ask(bot, text)["text"] == reply

    now = holders(bot, number)
    for key, who in held.items():
        assert now[key] == who
    if "lead" in held:
        assert load(bot, number).owner == held["lead"]


def test_role_nobody_frees_the_role(bot: Bot):
    number, _ = with_card(bot)
    assert ask(bot, "role 1 comms me")["text"] == f"INC-1 comms: <@{USER}>."

    assert ask(bot, "role 1 comms nobody")["text"] == "INC-1 comms: nobody."

    assert holders(bot, number)["comms"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("role 1 pilot me", "There is no role 'pilot'. Roles: lead, comms, scribe."),
        ("role 99 comms me", "There is no incident INC-99."),
        ("role 1 comms bob", grammar.ROLE_WHO),
        ("role comms me", "'comms' is not an incident id"),
        ("role", "Which incident?"),
    ],
)
def test_role_command_refusals_change_nothing(bot: Bot, text: str, message: str):
    with_card(bot)
    before = snapshot(bot)

    reply = ask(bot, text)["text"]

    assert escape(message) in reply
    settle(bot)
    assert snapshot(bot) == before
    assert slack_writes(bot) == []


def test_role_of_a_closed_incident_is_refused_but_an_admin_may(bot: Bot):
    number, _ = with_card(bot, status=Status.CLOSED)
    before = snapshot(bot)

    reply = ask(bot, "role 1 comms me")["text"]

    assert reply == "INC-1 is closed; only an incident admin can change it."
    assert snapshot(bot) == before
    assert ask(bot, "role 1 comms me", user=ADMIN_ID)["text"] == f"INC-1 comms: <@{ADMIN_ID}>."
    assert holders(bot, number)["comms"] == ADMIN_ID


def test_in_the_incidents_channel_the_role_command_needs_no_id(bot: Bot):
    with bot.sessions.begin() as session:
        draft = IncidentDraft("DB down", "SEV1", slack_channel_id=CHANNEL, open_channel=True)
        number = incidents.declare(
            session, draft, Actor(BOB), channels=bot.settings.channel_rules
        ).id
    bot.deliverer.drain()
    room = load(bot, number).own_channel_id
    assert room

    assert ask(bot, "role comms me", channel=room)["text"] == f"INC-{number} comms: <@{USER}>."
    assert holders(bot, number)["comms"] == USER
    # Elsewhere the same words ask which incident.
    assert "'comms' is not an incident id" in ask(bot, "role comms me")["text"]


# --- The lead: at once when there is none, a handoff otherwise ----------------------------------


def test_taking_the_lead_of_a_leaderless_incident_is_immediate(bot: Bot):
    number, _ = with_card(bot)

    assert ask(bot, f"role 1 lead <@{BOB}|bob>")["text"] == f"INC-1 lead: <@{BOB}>."

    assert load(bot, number).owner == BOB
    assert bot.fake.calls_to("views.open") == []


@pytest.mark.parametrize("text", [f"role 1 lead <@{BOB}|bob>", f"assign 1 owner <@{BOB}|bob>"])
def test_a_lead_handoff_asks_for_a_summary_for_the_new_lead(bot: Bot, text: str):
    number, _ = with_card(bot, owner=USER)

    url = run(bot, text)

    assert ACKS[url] == ""
    bot.fake.wait_for_call("views.open")
    modal = bot.fake.top_view()
    assert modal is not None and modal["callback_id"] == ids.HANDOFF_VIEW
    assert f"<@{USER}> leads INC-1 now; <@{BOB}> takes over." in str(modal["blocks"])
    handoff = next(b for b in modal["blocks"] if b.get("block_id") == ids.HANDOFF_BLOCK)
    assert handoff["optional"] is True
    assert load(bot, number).owner == USER  # nothing changes until it is sent

    answer = submit(bot, modal, {ids.HANDOFF_BLOCK: "DB failover done; watch replication lag"})

    assert answer is None
    assert load(bot, number).owner == BOB
    handed = [e for e in events(bot, number) if e.kind == EventKind.ASSIGNED][-1]
    assert (handed.field, handed.from_value, handed.to_value) == ("owner", USER, BOB)
    assert handed.details.get("handoff") == "DB failover done; watch replication lag"


def test_a_handoff_without_a_summary_still_hands_off(bot: Bot):
    number, _ = with_card(bot, owner=USER)
    run(bot, f"role 1 lead <@{BOB}|bob>")
    bot.fake.wait_for_call("views.open")
    modal = bot.fake.top_view()
    assert modal is not None

    assert submit(bot, modal, {}) is None

    assert load(bot, number).owner == BOB
    handed = [e for e in events(bot, number) if e.kind == EventKind.ASSIGNED][-1]
    assert not handed.details.get("handoff")


def test_giving_the_lead_to_whoever_leads_says_nothing_changed(bot: Bot):
    with_card(bot, owner=USER)
    before = snapshot(bot)

    reply = ask(bot, "role 1 lead me")["text"]

    assert reply.startswith("Nothing changed")
    assert snapshot(bot) == before
    assert bot.fake.calls_to("views.open") == []


# --- /incident subscribe, unsubscribe -------------------------------------------------------------


def subscribed(bot: Bot, number: int) -> list[str]:
    with bot.sessions() as session:
        return incidents.subscribers(session, number)


def acked(bot: Bot, text: str) -> dict[str, Any]:
    """The ack of `/incident <text>` that carries blocks (a JSON body)."""
    body = ACKS[run(bot, text)]
    return json.loads(body) if body.startswith("{") else {"text": body}


def test_subscribe_and_unsubscribe_commands(bot: Bot):
    number, _ = with_card(bot, reporter=BOB)
    assert USER not in subscribed(bot, number)

    first = acked(bot, "subscribe 1")
    assert first["text"] == "You're subscribed to INC-1: you'll get its updates by DM."
    assert [b["action_id"] for b in first["blocks"][1]["elements"]] == [ids.UNSUBSCRIBE_ACTION]
    assert USER in subscribed(bot, number)
    again = acked(bot, "subscribe INC-1")
    assert again["text"].startswith("You're already subscribed to INC-1")
    off = acked(bot, "unsubscribe 1")
    assert off["text"] == "You're unsubscribed from INC-1: no more DMs about it."
    assert [b["action_id"] for b in off["blocks"][1]["elements"]] == [ids.SUBSCRIBE_ACTION]
    assert USER not in subscribed(bot, number)
    assert acked(bot, "unsubscribe 1")["text"] == "You weren't subscribed to INC-1."


def test_the_replys_unsubscribe_button_replaces_the_reply(bot: Bot):
    number, _ = with_card(bot, reporter=BOB)
    reply = acked(bot, "subscribe 1")
    shown = {"ts": "1700000000.000100", **reply}
    clicked = payloads.block_actions_from(
        shown, ids.UNSUBSCRIBE_ACTION, channel_id=CHANNEL, fake=bot.fake, is_ephemeral=True
    )

    status, _, _ = bot.post(clicked)

    assert status == 200
    url = clicked["response_url"]
    bot.fake.wait_for(lambda: bot.fake.responses(url))
    answer = bot.fake.responses(url)[0]
    assert answer["text"] == "You're unsubscribed from INC-1: no more DMs about it."
    assert answer["replace_original"] is True
    assert USER not in subscribed(bot, number)


def test_subscribing_to_no_such_incident_is_refused(bot: Bot):
    assert acked(bot, "subscribe 99")["text"] == "There is no incident INC-99."


# --- The update form ----------------------------------------------------------------------------


def submit(bot: Bot, view: dict[str, Any], inputs: dict[str, Any], *, user: str = USER) -> Any:
    status, _, body = bot.post(payloads.view_submission(view, inputs, fake=bot.fake, user_id=user))
    assert status == 200, body
    return json.loads(body) if body else None


def open_update(bot: Bot, text: str = "update 1", *, user: str = USER) -> dict[str, Any]:
    previous = bot.fake.top_view(user)
    run(bot, text, user=user)

    def opened() -> dict[str, Any] | None:
        view = bot.fake.top_view(user)
        return view if view and view["id"] != (previous or {}).get("id") else None

    view = bot.fake.wait_for(opened)
    assert view["callback_id"] == ids.UPDATE_VIEW
    return view


def input_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


def option_values(view: dict[str, Any], block_id: str) -> list[str]:
    return [o["value"] for o in element(view, block_id)["options"]]


UPDATE_FIELDS = [ids.STATUS_BLOCK, ids.SUMMARY_BLOCK, ids.IMPACT_BLOCK, ids.NEXT_UPDATE_BLOCK]


def test_update_command_opens_the_form(bot: Bot):
    with_card(bot, status=Status.INVESTIGATING)

    view = open_update(bot, "update INC-1 rolled back the deploy")

    assert view["title"]["text"] == "Update INC-1"
    assert input_ids(view) == UPDATE_FIELDS
    status_block = next(b for b in view["blocks"] if b.get("block_id") == ids.STATUS_BLOCK)
    assert status_block["dispatch_action"] is True
    assert option_values(view, ids.STATUS_BLOCK) == [
        "investigating",
        "mitigated",
        "resolved",
        "closed",
    ]
    assert element(view, ids.STATUS_BLOCK)["initial_option"]["value"] == "investigating"
    labels = [o["text"]["text"] for o in element(view, ids.NEXT_UPDATE_BLOCK)["options"]]
    assert labels == ["15 min", "30 min", "1 hour", "4 hours", "No promise (none)"]
    assert element(view, ids.SUMMARY_BLOCK)["initial_value"] == "rolled back the deploy"
    assert json.loads(view["private_metadata"]) == {"id": 1, "status": "investigating"}


def test_an_update_is_posted_with_its_promise(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)

    answer = submit(
        bot,
        view,
        {
            ids.SUMMARY_BLOCK: "Failover done; errors dropping",
            ids.IMPACT_BLOCK: "EU checkout slow",
            ids.NEXT_UPDATE_BLOCK: "1800",
            ids.UPDATE_STATUS_ACTION: "mitigated",
        },
    )

    assert answer is None
    incident = load(bot, number)
    assert incident.status == Status.MITIGATED
    assert incident.next_update_at is not None
    posted = [e for e in events(bot, number) if e.kind == EventKind.STATUS_UPDATE]
    assert len(posted) == 1
    assert posted[0].text == "Failover done; errors dropping"
    assert posted[0].details.get("impact") == "EU checkout slow"
    assert (posted[0].from_value, posted[0].to_value) == ("investigating", "mitigated")
    # One event, not a status change beside it.
    assert [e for e in events(bot, number) if e.kind == EventKind.STATUS_CHANGED][1:] == []


def test_an_update_without_a_promise_or_a_move(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)

    answer = submit(bot, view, {ids.SUMMARY_BLOCK: "Still looking", ids.NEXT_UPDATE_BLOCK: "none"})

    assert answer is None
    incident = load(bot, number)
    assert (incident.status, incident.next_update_at) == (Status.INVESTIGATING, None)


@pytest.mark.parametrize(
    ("inputs", "block"),
    [
        ({ids.SUMMARY_BLOCK: ""}, ids.SUMMARY_BLOCK),
        ({ids.SUMMARY_BLOCK: "x" * 3_001}, ids.SUMMARY_BLOCK),
        ({ids.SUMMARY_BLOCK: "ok", ids.IMPACT_BLOCK: "y" * 1_001}, ids.IMPACT_BLOCK),
    ],
)
def test_update_field_errors_come_back_on_their_block(bot: Bot, inputs: dict[str, str], block: str):
    with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)
    before = snapshot(bot)

    answer = submit(bot, view, inputs)

    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block]
    assert snapshot(bot) == before


def test_a_promise_that_is_not_offered_is_refused_on_its_block(bot: Bot):
    with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)
    before = snapshot(bot)
    forged = {"type": "static_select", "selected_option": {"value": "60"}}

    status, _, body = bot.post(
        payloads.view_submission(
            view,
            {ids.SUMMARY_BLOCK: "ok"},
            values={ids.NEXT_UPDATE_BLOCK: {ids.NEXT_UPDATE_BLOCK: forged}},
            fake=bot.fake,
        )
    )

    assert status == 200
    answer = json.loads(body)
    assert list(answer["errors"]) == [ids.NEXT_UPDATE_BLOCK]
    assert snapshot(bot) == before


def pick(bot: Bot, view: dict[str, Any], status: str) -> dict[str, Any]:
    """Choose `status` in the form's menu; the form as it is after the bot has answered."""
    updates = len(bot.fake.calls_to("views.update"))
    code, _, _ = bot.post(
        payloads.block_actions_from(view, ids.UPDATE_STATUS_ACTION, status, fake=bot.fake)
    )
    assert code == 200
    if incidents.resolves(
        Status(json.loads(view["private_metadata"])["status"]), Status(status)
    ) != (ids.RESOLUTION_BLOCK in input_ids(view)):
        bot.fake.wait_for_call("views.update", updates + 1)
    else:
        settle(bot)
        assert len(bot.fake.calls_to("views.update")) == updates
    now = bot.fake.top_view()
    assert now is not None
    return now


def test_picking_resolve_grows_the_resolution_fields_and_another_pick_removes_them(bot: Bot):
    with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)

    grown = pick(bot, view, "resolved")

    update = bot.fake.calls_to("views.update")[-1]
    assert update["view_id"] == view["id"]
    assert update["hash"] == view["hash"]
    assert input_ids(grown) == [
        ids.STATUS_BLOCK,
        ids.RESOLUTION_BLOCK,
        ids.CAUSE_BLOCK,
        *UPDATE_FIELDS[1:],
    ]
    resolution = next(b for b in grown["blocks"] if b.get("block_id") == ids.RESOLUTION_BLOCK)
    cause = next(b for b in grown["blocks"] if b.get("block_id") == ids.CAUSE_BLOCK)
    assert (resolution["optional"], cause["optional"]) == (False, True)
    assert element(grown, ids.STATUS_BLOCK)["initial_option"]["value"] == "resolved"
    # The form still checks against the status it first showed.
    assert json.loads(grown["private_metadata"])["status"] == "investigating"

    same = pick(bot, grown, "closed")  # still resolving: nothing to rebuild
    assert input_ids(same) == input_ids(grown)
    shrunk = pick(bot, grown, "mitigated")
    assert input_ids(shrunk) == UPDATE_FIELDS


def test_what_was_typed_survives_the_form_growing(bot: Bot):
    with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)
    code, _, _ = bot.post(
        payloads.block_actions_from(
            view,
            ids.UPDATE_STATUS_ACTION,
            "resolved",
            inputs={ids.SUMMARY_BLOCK: "All green", ids.IMPACT_BLOCK: "None now"},
            fake=bot.fake,
        )
    )
    assert code == 200
    bot.fake.wait_for_call("views.update")
    grown = bot.fake.top_view()
    assert grown is not None

    assert element(grown, ids.SUMMARY_BLOCK)["initial_value"] == "All green"
    assert element(grown, ids.IMPACT_BLOCK)["initial_value"] == "None now"


def test_resolving_through_an_update_needs_a_resolution(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)
    grown = pick(bot, open_update(bot), "resolved")
    before = snapshot(bot)

    refused = submit(bot, grown, {ids.SUMMARY_BLOCK: "Fixed", ids.UPDATE_STATUS_ACTION: "resolved"})

    assert refused["response_action"] == "errors"
    assert list(refused["errors"]) == [ids.RESOLUTION_BLOCK]
    assert snapshot(bot) == before

    answer = submit(
        bot,
        grown,
        {
            ids.SUMMARY_BLOCK: "Fixed",
            ids.UPDATE_STATUS_ACTION: "resolved",
            ids.RESOLUTION_BLOCK: "Rolled back 4.2",
            ids.CAUSE_BLOCK: "A bad config push",
        },
    )

    assert answer is None
    incident = load(bot, number)
    assert (incident.status, incident.resolution, incident.cause) == (
        Status.RESOLVED,
        "Rolled back 4.2",
        "A bad config push",
    )


def test_a_form_submitted_resolving_without_its_fields_grows_them_first(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)

    answer = submit(bot, view, {ids.SUMMARY_BLOCK: "Fixed", ids.UPDATE_STATUS_ACTION: "resolved"})

    assert answer["response_action"] == "update"
    grown = answer["view"]
    assert ids.RESOLUTION_BLOCK in input_ids(grown)
    assert element(grown, ids.SUMMARY_BLOCK)["initial_value"] == "Fixed"
    assert load(bot, number).status == Status.INVESTIGATING


def test_an_update_made_against_a_status_that_moved_is_refused(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)
    view = open_update(bot)
    with bot.sessions.begin() as session:
        incidents.change_status(session, number, Status.MITIGATED, Actor(BOB))
    before = snapshot(bot)

    answer = submit(
        bot, view, {ids.SUMMARY_BLOCK: "Looking", ids.UPDATE_STATUS_ACTION: "mitigated"}
    )

    assert list(answer["errors"]) == [ids.STATUS_BLOCK]
    assert "changed while you were looking" in answer["errors"][ids.STATUS_BLOCK]
    assert snapshot(bot) == before


def test_the_update_form_of_a_closed_incident_is_refused(bot: Bot):
    with_card(bot, status=Status.CLOSED)

    run(bot, "update 1")

    said = bot.fake.wait_for(lambda: bot.fake.ephemeral_messages(user=USER))
    assert said[-1]["text"] == "INC-1 is closed; only an incident admin can change it."
    assert bot.fake.calls_to("views.open") == []


def test_update_without_an_id_outside_an_incident_channel_asks_which(bot: Bot):
    with_card(bot)

    assert ask(bot, "update")["text"].startswith("Which incident?")
    assert bot.fake.calls_to("views.open") == []


# --- Buttons ------------------------------------------------------------------------------------


def card(bot: Bot, number: int) -> dict[str, Any]:
    incident = load(bot, number)
    message = bot.fake.message(incident.slack_channel_id or "", incident.card_ts or "")
    assert message is not None
    return message


def press(
    bot: Bot,
    number: int,
    action_id: str,
    *,
    text: str = "Button",
    user: str = USER,
    channel: str = CHANNEL,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Click a button with `action_id` and value {"id": number} on the card (or `message`): the
    button as the bot draws it, whatever the card shows today."""
    act = payloads.action(
        action_id, block_id="card_actions", value=json.dumps({"id": number}), text=text
    )
    payload = payloads.block_actions(
        act, message=message or card(bot, number), channel_id=channel, fake=bot.fake, user_id=user
    )
    status, _, body = bot.post(payload)
    assert status == 200, body
    return payload


def told(bot: Bot, user: str = USER) -> list[dict[str, Any]]:
    return bot.fake.ephemeral_messages(user=user)


def wait_told(bot: Bot, seen: int, user: str = USER) -> dict[str, Any]:
    bot.fake.wait_for(lambda: len(told(bot, user)) > seen)
    return told(bot, user)[seen]


def test_ill_lead_takes_the_lead_and_a_second_click_says_who_leads(bot: Bot):
    number, _ = with_card(bot)

    press(bot, number, ids.TAKE_LEAD_ACTION, text="I'll lead")
    bot.fake.wait_for(lambda: load(bot, number).owner == USER)
    before = snapshot(bot)
    seen = len(told(bot, BOB))
    press(bot, number, ids.TAKE_LEAD_ACTION, text="I'll lead", user=BOB)

    assert wait_told(bot, seen, BOB)["text"] == f"<@{USER}> already leads INC-1."
    assert load(bot, number).owner == USER
    assert snapshot(bot)[:2] == before[:2]


def test_take_role_button_gives_an_empty_role_and_not_a_held_one(bot: Bot):
    number, _ = with_card(bot)

    press(bot, number, f"{ids.TAKE_ROLE_ACTION}:comms", text="Take comms")
    bot.fake.wait_for(lambda: holders(bot, number)["comms"] == USER)
    seen = len(told(bot, BOB))
    press(bot, number, f"{ids.TAKE_ROLE_ACTION}:comms", text="Take comms", user=BOB)

    said = wait_told(bot, seen, BOB)["text"]
    assert said == f"<@{USER}> is already Communications lead of INC-1."
    assert holders(bot, number)["comms"] == USER
    press(bot, number, f"{ids.TAKE_ROLE_ACTION}:lead", text="Take lead", user=BOB)
    bot.fake.wait_for(lambda: load(bot, number).owner == BOB)


def test_subscribe_button_twice_then_unsubscribe(bot: Bot):
    number, _ = with_card(bot, reporter=BOB)

    press(bot, number, ids.SUBSCRIBE_ACTION, text="Subscribe")
    first = wait_told(bot, 0)
    assert first["text"] == "You're subscribed to INC-1: you'll get its updates by DM."
    assert USER in subscribed(bot, number)
    press(bot, number, ids.SUBSCRIBE_ACTION, text="Subscribe")
    again = wait_told(bot, 1)
    assert again["text"].startswith("You're already subscribed to INC-1")
    undo = [e for _, _, e in payloads.iter_elements(again["blocks"]) if e["type"] == "button"]
    assert [b["action_id"] for b in undo] == [ids.UNSUBSCRIBE_ACTION]
    press(bot, number, ids.UNSUBSCRIBE_ACTION, text="Unsubscribe")
    assert wait_told(bot, 2)["text"] == "You're unsubscribed from INC-1: no more DMs about it."
    assert USER not in subscribed(bot, number)


def test_unsubscribe_from_a_dm_is_answered_by_dm(bot: Bot):
    number, _ = with_card(bot, reporter=BOB)
    dm = bot.fake.dm_channel(USER)
    with bot.sessions.begin() as session:
        incidents.subscribe(session, number, USER)
    message = bot.fake.add_message(dm, "INC-1 update", user=defaults.BOT_USER_ID)

    press(bot, number, ids.UNSUBSCRIBE_ACTION, text="Unsubscribe", channel=dm, message=message)

    bot.fake.wait_for(
        lambda: any("unsubscribed from INC-1" in m["text"] for m in bot.fake.messages(USER))
    )
    assert USER not in subscribed(bot, number)


def test_the_reminders_post_update_opens_the_update_form_and_add_note_the_note_form(bot: Bot):
    number, _ = with_card(bot, status=Status.INVESTIGATING)

    press(bot, number, ids.ADD_NOTE_ACTION, text="Post update")
    bot.fake.wait_for(lambda: bot.fake.top_view())
    assert bot.fake.top_view()["callback_id"] == ids.UPDATE_VIEW
    first = bot.fake.top_view()["id"]
    press(bot, number, ids.ADD_NOTE_ACTION, text="Add note")
    bot.fake.wait_for(lambda: bot.fake.top_view()["id"] != first)
    assert bot.fake.top_view()["callback_id"] == ids.NOTE_VIEW


def test_update_button_opens_the_update_form(bot: Bot):
    number, _ = with_card(bot, status=Status.MITIGATED)

    press(bot, number, ids.UPDATE_ACTION, text="Update")

    view = bot.fake.wait_for(lambda: bot.fake.top_view())
    assert view["callback_id"] == ids.UPDATE_VIEW
    assert element(view, ids.STATUS_BLOCK)["initial_option"]["value"] == "mitigated"


# --- App Home -------------------------------------------------------------------------------------


def open_home(bot: Bot) -> dict[str, Any]:
    published = len(bot.fake.calls_to("views.publish"))
    status, _, _ = bot.post(payloads.event_callback(payloads.app_home_opened_event(USER)))
    assert status == 200
    bot.fake.wait_for_call("views.publish", published + 1)
    return bot.fake.home_views[USER]


def home_buttons(home: dict[str, Any]) -> dict[int, str]:
    """Each incident's Subscribe/Unsubscribe button on the Home tab, by incident (the last)."""
    found = {}
    for block in home["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") in (ids.SUBSCRIBE_ACTION, ids.UNSUBSCRIBE_ACTION):
            found[json.loads(accessory["value"])["id"]] = accessory["action_id"]
    return found


def subscriptions_section(home: dict[str, Any]) -> list[str]:
    lines = texts(home["blocks"])
    start = next(i for i, t in enumerate(lines) if t.startswith("*Your subscriptions"))
    return lines[start + 1 :]


def test_app_home_subscribes_and_lists_the_subscriptions(bot: Bot):
    first = declare(bot, "API is down", severity="SEV1", reporter=BOB)
    second = declare(bot, "Search slow", severity="SEV3", reporter=BOB)
    home = open_home(bot)
    assert home_buttons(home) == {first: ids.SUBSCRIBE_ACTION, second: ids.SUBSCRIBE_ACTION}
    assert subscriptions_section(home)[0].startswith("None.")

    published = len(bot.fake.calls_to("views.publish"))
    act = payloads.action(
        ids.SUBSCRIBE_ACTION, block_id="home_row", value=json.dumps({"id": second})
    )
    status, _, _ = bot.post(payloads.block_actions(act, view=home, fake=bot.fake))
    assert status == 200
    bot.fake.wait_for_call("views.publish", published + 1)
    home = bot.fake.home_views[USER]

    assert USER in subscribed(bot, second)
    assert USER not in subscribed(bot, first)
    assert home_buttons(home) == {first: ids.SUBSCRIBE_ACTION, second: ids.UNSUBSCRIBE_ACTION}
    listed = subscriptions_section(home)
    assert any(f"*INC-{second}*" in line for line in listed)
    assert not any(f"*INC-{first}*" in line for line in listed)
    assert bot.fake.messages(USER) == []  # the Home tab shows it; no DM


def test_role_rows_are_what_the_role_command_wrote(bot: Bot):
    """The command's effect, read from the table (not through the domain's reading of it)."""
    number, _ = with_card(bot)
    ask(bot, "role 1 scribe me")

    with bot.sessions() as session:
        rows = session.scalars(select(IncidentRole).where(IncidentRole.incident_id == number))
        assert [(r.role, r.user_id) for r in rows] == [("scribe", USER)]
        last = session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == number)
            .order_by(IncidentEvent.id.desc())
        ).first()
        assert last is not None and last.kind == EventKind.ROLE_ASSIGNED


# --- The buttons as the bot draws them ------------------------------------------------------------


def drawn(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for _, _, e in payloads.iter_elements(message.get("blocks") or [])]


def click_drawn(
    bot: Bot, message: dict[str, Any], action_id: str, channel: str, *, user: str = USER
) -> None:
    payload = payloads.block_actions_from(
        message, action_id, channel_id=channel, fake=bot.fake, user_id=user
    )
    status, _, body = bot.post(payload)
    assert status == 200, body


def test_the_cards_ill_lead_subscribe_and_update_buttons(bot: Bot):
    number, ts = with_card(bot, reporter=BOB)
    shown = card(bot, number)
    assert {ids.TAKE_LEAD_ACTION, ids.SUBSCRIBE_ACTION, ids.UPDATE_ACTION} <= set(drawn(shown))

    click_drawn(bot, shown, ids.TAKE_LEAD_ACTION, CHANNEL)
    bot.fake.wait_for(lambda: ids.TAKE_LEAD_ACTION not in drawn(card(bot, number)))
    assert load(bot, number).owner == USER
    seen = len(told(bot, BOB))
    click_drawn(bot, shown, ids.TAKE_LEAD_ACTION, CHANNEL, user=BOB)  # the card as it was
    assert wait_told(bot, seen, BOB)["text"] == f"<@{USER}> already leads INC-1."

    seen = len(told(bot))
    click_drawn(bot, card(bot, number), ids.SUBSCRIBE_ACTION, CHANNEL)
    assert wait_told(bot, seen)["text"].startswith("You're subscribed to INC-1")

    click_drawn(bot, card(bot, number), ids.UPDATE_ACTION, CHANNEL)
    view = bot.fake.wait_for(lambda: bot.fake.top_view())
    assert view["callback_id"] == ids.UPDATE_VIEW
    assert ts


def test_the_welcome_messages_take_button_gives_the_role_and_goes(bot: Bot):
    with bot.sessions.begin() as session:
        draft = IncidentDraft("DB down", "SEV1", slack_channel_id=CHANNEL, open_channel=True)
        number = incidents.declare(
            session, draft, Actor(BOB), channels=bot.settings.channel_rules
        ).id
    bot.deliverer.drain()
    incident = load(bot, number)
    room, welcome_ts = incident.own_channel_id, incident.own_channel_welcome_ts
    assert room and welcome_ts
    welcome = bot.fake.message(room, welcome_ts)
    take = f"{ids.TAKE_ROLE_ACTION}:comms"
    assert welcome is not None and take in drawn(welcome)

    click_drawn(bot, welcome, take, room)

    bot.fake.wait_for(lambda: take not in drawn(bot.fake.message(room, welcome_ts) or {}))
    assert holders(bot, number)["comms"] == USER


def test_the_nudges_update_button_opens_the_update_form(bot: Bot):
    number, _ = with_card(bot, owner=USER, status=Status.INVESTIGATING)
    with bot.sessions.begin() as session:
        update = incidents.UpdateDraft("Looking", next_update_in=timedelta(minutes=15))
        incidents.post_update(session, number, update, Actor(USER))
    bot.deliverer.drain()
    due = load(bot, number).next_update_at
    assert due is not None
    late = due + timedelta(seconds=1)
    with bot.sessions.begin() as session:
        incidents.nudge_overdue(session, number, now=late)
    bot.deliverer.drain(now=late)
    nudge = bot.fake.wait_for(
        lambda: [m for m in bot.fake.messages(USER) if ids.UPDATE_ACTION in drawn(m)]
    )[-1]

    click_drawn(bot, nudge, ids.UPDATE_ACTION, bot.fake.dm_channel(USER))

    view = bot.fake.wait_for(lambda: bot.fake.top_view())
    assert view["callback_id"] == ids.UPDATE_VIEW
    # The last update's promise is where the new one starts.
    assert element(view, ids.NEXT_UPDATE_BLOCK)["initial_option"]["value"] == "900"


def test_a_handoff_summary_reaches_the_thread(bot: Bot):
    _, ts = with_card(bot, owner=USER)
    run(bot, f"role 1 lead <@{BOB}|bob>")
    bot.fake.wait_for_call("views.open")
    modal = bot.fake.top_view()
    assert modal is not None

    assert submit(bot, modal, {ids.HANDOFF_BLOCK: "Failover done, watch the lag"}) is None

    reply = bot.fake.wait_for(
        lambda: [m for m in bot.fake.thread(CHANNEL, ts) if "Failover done" in m["text"]]
    )
    assert f"<@{BOB}>" in reply[0]["text"]
