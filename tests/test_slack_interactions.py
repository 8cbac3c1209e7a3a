"""The Slack surfaces end to end: the real bot over HTTP on loopback, the fake Slack behind it.

Every flow starts the way a person starts it (a slash command, a shortcut, a click, the Home
tab) and is checked on both sides: what the fake Slack received and what the database holds.
Work the bot does after its ack() is awaited on the fake (`wait_for`), never with a sleep.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, IncidentDraft
from db.models import Delivery, DeliveryAction, EventKind, Incident, IncidentEvent, Status
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import ADMIN_ID, Bot, running_bot

USER = defaults.USER_ID
BOB = "U0BOB000001"
CHANNEL = defaults.CHANNEL_ID
INCIDENT_CHANNEL = "C0INCIDENTS"
DM_CHANNEL = "D0DMCHAN001"

STATUS_BUTTON = "incident_status:"
# What the card of an incident in each status offers (the issue: "buttons for the allowed next
# statuses, Add note, Edit"); written out here rather than asked of the code under test.
NEXT_STATUSES = {
    "open": ["investigating", "mitigated", "resolved", "closed"],
    "investigating": ["mitigated", "resolved", "closed"],
    "mitigated": ["investigating", "resolved", "closed"],
    "resolved": ["investigating", "closed"],
    "closed": [],
}
DECLARE_BLOCKS = [
    "title",
    "severity",
    "category",
    "service",
    "description",
    "owner",
    "channel",
    "open_channel",
]


# --- fixtures ---


@pytest.fixture
def bot(slackbot: Bot) -> Bot:
    slackbot.fake.add_user(BOB, "bob")
    return slackbot


@pytest.fixture
def channel_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with INCIDENT_CHANNEL set: every card goes to that channel."""
    fake_slack.add_channel(INCIDENT_CHANNEL, "incidents")
    fake_slack.add_user(BOB, "bob")
    with running_bot(
        fake_slack, engine, committing_sessions, incident_channel=INCIDENT_CHANNEL
    ) as running:
        yield running


# --- helpers: reading the database ---


def load(bot: Bot, incident_id: int) -> Incident:
    with bot.sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None, f"INC-{incident_id} is not in the database"
        return incident


def events(bot: Bot, incident_id: int) -> list[IncidentEvent]:
    with bot.sessions() as session:
        return list(
            session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.id)
            )
        )


def count_incidents(bot: Bot) -> int:
    with bot.sessions() as session:
        return session.scalar(select(func.count()).select_from(Incident)) or 0


def count_deliveries(bot: Bot) -> int:
    """The outbox rows of changes; a refusal adds only the one that tells the person why."""
    with bot.sessions() as session:
        told = Delivery.action == DeliveryAction.TELL_USER
        return session.scalar(select(func.count()).select_from(Delivery).where(~told)) or 0


def settle(bot: Bot, incident_id: int) -> None:
    """Wait until the listener's drain of the incident is over: no delivery of it in flight
    (the outbox leases a row while its Slack call is made) and the next one to send, if any,
    waiting for its back-off (later rows wait behind it)."""

    def idle() -> bool:
        with bot.sessions() as session:
            rows = session.scalars(
                select(Delivery)
                .where(
                    Delivery.incident_id == incident_id,
                    Delivery.delivered_at.is_(None),
                    Delivery.failed_at.is_(None),
                )
                .order_by(Delivery.id)
            ).all()
            now = session.scalar(select(func.now()))
        return not rows or (
            all(r.lease_until is None for r in rows) and rows[0].next_attempt_at > now
        )

    deadline = time.monotonic() + 5
    while not idle():  # the database, not the fake, says when: poll it
        assert time.monotonic() < deadline, f"INC-{incident_id}: a delivery stayed in flight"
        time.sleep(0.01)


def latest_incident_id(bot: Bot) -> int:
    with bot.sessions() as session:
        found = session.scalar(select(func.max(Incident.id)))
        assert found is not None, "no incident was stored"
        return found


# --- helpers: what the fake Slack saw ---


def notices(fake: FakeSlack, user_id: str) -> list[str]:
    """Everything told to `user_id` alone: DMs from the app and ephemeral messages."""
    dms = [m["text"] for m in fake.messages(user_id)]  # the app's DM with that person
    return dms + [e["text"] for e in fake.ephemeral_messages(user=user_id)]


def wait_for_notice(fake: FakeSlack, user_id: str, seen: int) -> str:
    """Wait for the (seen+1)th message told to `user_id`; return its text."""
    fake.wait_for(lambda: len(notices(fake, user_id)) > seen)
    return notices(fake, user_id)[seen]


def ephemerals(fake: FakeSlack, user_id: str = USER) -> list[str]:
    return [e["text"] for e in fake.ephemeral_messages(user=user_id)]


def wait_for_ephemeral(fake: FakeSlack, seen: int, user_id: str = USER) -> str:
    fake.wait_for(lambda: len(ephemerals(fake, user_id)) > seen)
    return ephemerals(fake, user_id)[seen]


def wait_for_new_view(fake: FakeSlack, user_id: str, previous: dict[str, Any] | None) -> dict:
    previous_id = previous["id"] if previous else None

    def opened() -> dict[str, Any] | None:
        view = fake.top_view(user_id)
        return view if view is not None and view["id"] != previous_id else None

    return fake.wait_for(opened)


def card_message(bot: Bot, incident_id: int) -> dict[str, Any]:
    incident = load(bot, incident_id)
    assert incident.card_ts, f"INC-{incident_id} has no card"
    message = bot.fake.message(incident.slack_channel_id or "", incident.card_ts)
    assert message is not None, "the card is not in its channel"
    return message


def thread(bot: Bot, incident_id: int) -> list[dict[str, Any]]:
    incident = load(bot, incident_id)
    assert incident.card_ts and incident.slack_channel_id
    return bot.fake.thread(incident.slack_channel_id, incident.card_ts)


def wait_for_reply(bot: Bot, incident_id: int, seen: int) -> dict[str, Any]:
    bot.fake.wait_for(lambda: len(thread(bot, incident_id)) > seen)
    replies = thread(bot, incident_id)
    assert len(replies) == seen + 1, [r["text"] for r in replies]
    settle(bot, incident_id)
    return replies[-1]


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def status_buttons(message: dict[str, Any]) -> list[str]:
    return [a[len(STATUS_BUTTON) :] for a in buttons(message) if a.startswith(STATUS_BUTTON)]


def card_fields(message: dict[str, Any]) -> dict[str, str]:
    section = next(b for b in message["blocks"] if b["type"] == "section" and "fields" in b)
    fields = {}
    for field in section["fields"]:
        label, _, value = field["text"].partition("\n")
        fields[label.strip("*")] = value
    return fields


def header(message: dict[str, Any]) -> str:
    block = message["blocks"][0]
    assert block["type"] == "header"
    assert block["text"]["type"] == "plain_text"
    return block["text"]["text"]


def input_block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def input_element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    assert block["type"] == "input"
    return block["element"]


def texts_sent(fake: FakeSlack) -> Iterator[tuple[str, str, str]]:
    """(method, kind, text) of every text the app sent to Slack.

    A message's top-level `text` counts as mrkdwn: it is the notification and fallback text.
    """

    def walk(value: Any) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str) and value.get("type") in ("mrkdwn", "plain_text"):
                yield value["type"], value["text"]
            for key, item in value.items():
                if key != "text" or not isinstance(item, str):
                    yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for call in fake.calls:
        params = call.params
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
            if isinstance(params.get("text"), str):
                yield call.method, "mrkdwn", params["text"]
            for part in ("blocks", "attachments"):
                for kind, text in walk(params.get(part) or []):
                    yield call.method, kind, text
        elif call.method in ("views.open", "views.push", "views.update", "views.publish"):
            for kind, text in walk(params.get("view") or {}):
                yield call.method, kind, text


# --- helpers: acting like a person ---


def submit(
    bot: Bot, view: dict[str, Any], inputs: dict[str, Any] | None = None, *, user_id: str = USER
) -> dict[str, Any] | None:
    """Submit a modal; the parsed `response_action` body, or None for a plain ack (closed)."""
    status, _, body = bot.post(
        payloads.view_submission(view, inputs, fake=bot.fake, user_id=user_id)
    )
    assert status == 200, body
    return json.loads(body) if body else None


def open_declare(
    bot: Bot, text: str = "", *, user_id: str = USER, channel_id: str = CHANNEL
) -> dict[str, Any]:
    previous = bot.fake.top_view(user_id)
    status, _, body = bot.command(text, user_id=user_id, channel_id=channel_id)
    assert status == 200, body
    view = wait_for_new_view(bot.fake, user_id, previous)
    assert view["callback_id"] == "incident_declare"
    return view


def declare(
    bot: Bot,
    title: str = "Checkout is failing",
    severity: str = "SEV2",
    *,
    user_id: str = USER,
    channel_id: str = CHANNEL,
    **inputs: Any,
) -> int:
    """Declare through `/incident` and its modal; returns the id once the bot is done."""
    view = open_declare(bot, user_id=user_id, channel_id=channel_id)
    seen = len(notices(bot.fake, user_id))
    fields = {"title": title, "severity": severity, **inputs}
    assert submit(bot, view, fields, user_id=user_id) is None
    incident_id = latest_incident_id(bot)  # committed before the ack
    card_channel = load(bot, incident_id).slack_channel_id or ""
    # The reporter is told only when the card went elsewhere, or did not go through.
    expect_notice = card_channel != channel_id

    def done() -> bool:
        told = len(notices(bot.fake, user_id)) > seen
        posted = any(f" INC-{incident_id} [" in m["text"] for m in bot.fake.messages(card_channel))
        return told or (posted and not expect_notice)

    bot.fake.wait_for(done)
    settle(bot, incident_id)
    return incident_id


def click(
    bot: Bot,
    incident_id: int,
    action_id: str,
    *,
    user_id: str = USER,
    card: dict[str, Any] | None = None,
) -> None:
    card = card if card is not None else card_message(bot, incident_id)
    channel_id = load(bot, incident_id).slack_channel_id
    status, _, body = bot.post(
        payloads.block_actions_from(
            card, action_id, channel_id=channel_id, fake=bot.fake, user_id=user_id
        )
    )
    assert status == 200, body


def click_crafted(
    bot: Bot, incident_id: int, action_id: str, value: dict[str, Any], *, user_id: str = USER
) -> None:
    """A card button the card does not show (an old client, a hand-made request)."""
    card = card_message(bot, incident_id)
    act = payloads.action(action_id, block_id="card_actions", value=json.dumps(value))
    status, _, body = bot.post(
        payloads.block_actions(
            act, message=card, channel_id=CHANNEL, fake=bot.fake, user_id=user_id
        )
    )
    assert status == 200, body


def open_from_card(
    bot: Bot, incident_id: int, action_id: str, *, user_id: str = USER
) -> dict[str, Any]:
    previous = bot.fake.top_view(user_id)
    click(bot, incident_id, action_id, user_id=user_id)
    return wait_for_new_view(bot.fake, user_id, previous)


def move(bot: Bot, incident_id: int, target: str, *, user_id: str = USER) -> dict[str, Any]:
    """Press the card's button for `target` (and fill the resolve modal); returns the reply."""
    seen = len(thread(bot, incident_id))
    if incidents.resolves(load(bot, incident_id).status, Status(target)):
        modal = open_from_card(bot, incident_id, STATUS_BUTTON + target, user_id=user_id)
        assert submit(bot, modal, {"resolution": "Rolled back"}, user_id=user_id) is None
    else:
        click(bot, incident_id, STATUS_BUTTON + target, user_id=user_id)
    return wait_for_reply(bot, incident_id, seen)


def state_of(bot: Bot, incident_id: int) -> tuple[Any, ...]:
    """What must not move when a change is refused."""
    incident = load(bot, incident_id)
    return (
        incident.status,
        incident.title,
        incident.service,
        incident.description,
        incident.resolution,
        incident.updated_at,
        len(events(bot, incident_id)),
        len(thread(bot, incident_id)),
        len(bot.fake.calls_to("chat.update")),
        count_deliveries(bot),
    )


# --- declaring ---


def test_declare_modal_posts_the_card_and_stores_the_incident(bot: Bot):
    status, _, body = bot.command("Checkout is failing")
    assert (status, body) == (200, "")
    modal = wait_for_new_view(bot.fake, USER, None)
    assert modal["callback_id"] == "incident_declare"
    assert input_block_ids(modal) == DECLARE_BLOCKS
    assert input_element(modal, "title")["initial_value"] == "Checkout is failing"
    assert input_element(modal, "owner") == {
        "type": "users_select",
        "action_id": "owner",
        "initial_user": USER,
    }
    assert input_element(modal, "channel")["type"] == "conversations_select"
    assert [o["value"] for o in input_element(modal, "severity")["options"]] == [
        "SEV1",
        "SEV2",
        "SEV3",
        "SEV4",
    ]
    assert [o["value"] for o in input_element(modal, "category")["options"]] == [
        "outage",
        "degradation",
        "security",
        "data",
        "other",
    ]

    answer = submit(
        bot,
        modal,
        {
            "severity": "SEV2",
            "category": "outage",
            "service": "payments",
            "description": "Every /pay request answers 502.",
            "owner": BOB,
        },
    )
    assert answer is None  # a plain ack closes the modal
    incident_id = latest_incident_id(bot)
    bot.fake.wait_for(lambda: bot.fake.messages(CHANNEL))
    settle(bot, incident_id)

    incident = load(bot, incident_id)
    assert (incident.title, incident.severity.value, incident.status) == (
        "Checkout is failing",
        "SEV2",
        Status.OPEN,
    )
    assert (incident.category, incident.service) == ("outage", "payments")
    assert incident.description == "Every /pay request answers 502."
    assert (incident.reporter, incident.owner, incident.assignee) == (USER, BOB, None)
    assert (incident.slack_channel_id, incident.slack_team_id) == (CHANNEL, defaults.TEAM_ID)
    assert [e.kind for e in events(bot, incident_id)] == [EventKind.CREATED]

    cards = bot.fake.messages(CHANNEL)
    assert len(cards) == 1
    card = cards[0]
    assert incident.card_ts == card["ts"]
    assert f"INC-{incident_id}" in card["text"] and "Checkout is failing" in card["text"]
    assert header(card) == f"🟠 INC-{incident_id}: Checkout is failing"
    fields = card_fields(card)
    assert fields["Status"] == "🆕 Open"
    assert fields["Severity"] == "🟠 SEV2 (high)"
    assert fields["Service"] == "payments"
    assert fields["Category"] == "outage"
    assert fields["Lead"] == f"<@{BOB}>"
    assert fields["Reporter"] == f"<@{USER}>"
    assert fields["Declared"].startswith(f"<!date^{int(incident.created_at.timestamp())}^")
    assert any(
        b["type"] == "section" and b.get("text", {}).get("text") == incident.description
        for b in card["blocks"]
    )
    assert status_buttons(card) == NEXT_STATUSES["open"]
    assert {"incident_add_note", "incident_edit"} <= set(buttons(card))
    # Nothing went wrong that the reporter would have to be told about.
    assert [n for n in notices(bot.fake, USER) if "⚠️" in n] == []


INVALID_DECLARATIONS = {
    "title of 2 characters": ({"title": "ab"}, "title", "at least 3 characters"),
    "title of 256 characters": ({"title": "x" * 256}, "title", "too long"),
    "no severity": ({"severity": None}, "severity", "severity"),
    "unknown category": (
        {"category": {"text": {"type": "plain_text", "text": "Volcano"}, "value": "volcano"}},
        "category",
        "Unknown category 'volcano'",
    ),
    "service of 121 characters": ({"service": "s" * 121}, "service", "too long"),
    "NUL in the title": ({"title": "DB\x00 down"}, "title", "NUL"),
    "NUL in the description": ({"description": "dump: \x00\x01"}, "description", "NUL"),
}


@pytest.mark.parametrize("case", list(INVALID_DECLARATIONS), ids=list(INVALID_DECLARATIONS))
def test_invalid_declaration_comes_back_inline_on_its_block_and_creates_nothing(
    bot: Bot, case: str
):
    changes, block_id, message = INVALID_DECLARATIONS[case]
    modal = open_declare(bot)
    inputs = {"title": "Checkout is failing", "severity": "SEV2", **changes}
    inputs = {k: v for k, v in inputs.items() if v is not None}

    answer = submit(bot, modal, inputs)

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block_id], answer
    assert message in answer["errors"][block_id]
    assert count_incidents(bot) == 0
    assert count_deliveries(bot) == 0
    assert bot.fake.calls_to("chat.postMessage") == []


def test_declare_without_a_channel_is_refused_inline_when_no_incident_channel_is_set(bot: Bot):
    modal = open_declare(bot, channel_id=DM_CHANNEL)  # typed in a DM with the app
    assert "initial_conversation" not in input_element(modal, "channel")

    answer = submit(bot, modal, {"title": "Checkout is failing", "severity": "SEV2"})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["channel"]
    assert answer["errors"]["channel"]
    assert count_incidents(bot) == 0
    assert bot.fake.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("typed_in", "expected"),
    [(CHANNEL, CHANNEL), ("G0PRIVATE01", "G0PRIVATE01"), (DM_CHANNEL, None)],
    ids=["public channel", "private channel", "DM"],
)
def test_channel_input_defaults_to_where_the_command_was_typed(
    bot: Bot, typed_in: str, expected: str | None
):
    modal = open_declare(bot, channel_id=typed_in)
    assert input_element(modal, "channel").get("initial_conversation") == expected


def test_channel_input_defaults_to_incident_channel_and_the_card_goes_there(channel_bot: Bot):
    bot = channel_bot
    modal = open_declare(bot, channel_id=CHANNEL)
    assert input_element(modal, "channel")["initial_conversation"] == INCIDENT_CHANNEL

    assert submit(bot, modal, {"title": "Search is down", "severity": "SEV3"}) is None
    note = wait_for_ephemeral(bot.fake, 0)

    incident = load(bot, latest_incident_id(bot))
    assert incident.slack_channel_id == INCIDENT_CHANNEL
    assert [m["ts"] for m in bot.fake.messages(INCIDENT_CHANNEL)] == [incident.card_ts]
    assert bot.fake.messages(CHANNEL) == []
    # Typed elsewhere: the reporter is told, where they typed, where the card went.
    assert note == f"Declared INC-{incident.id}; its card is in <#{INCIDENT_CHANNEL}>."
    assert bot.fake.ephemeral_messages(user=USER)[0]["channel"] == CHANNEL


def test_global_shortcut_opens_the_same_declare_modal(channel_bot: Bot):
    bot = channel_bot
    from_command = open_declare(bot)
    bot.fake.close_views(USER)

    status, _, body = bot.post(payloads.global_shortcut("report_incident", fake=bot.fake))
    assert (status, body) == (200, "")
    from_shortcut = wait_for_new_view(bot.fake, USER, None)

    assert from_shortcut["callback_id"] == "incident_declare"
    assert from_shortcut["blocks"] == from_command["blocks"]
    assert from_shortcut["title"] == from_command["title"]

    assert submit(bot, from_shortcut, {"title": "Queue is stuck", "severity": "SEV4"}) is None
    confirmation = wait_for_notice(bot.fake, USER, 0)
    incident = load(bot, latest_incident_id(bot))
    assert (incident.title, incident.reporter, incident.slack_channel_id) == (
        "Queue is stuck",
        USER,
        INCIDENT_CHANNEL,
    )
    assert confirmation.startswith(f"Declared INC-{incident.id}")


def test_global_shortcut_without_incident_channel_leaves_the_channel_to_pick(bot: Bot):
    status, _, _ = bot.post(payloads.global_shortcut("report_incident", fake=bot.fake))
    assert status == 200
    modal = wait_for_new_view(bot.fake, USER, None)
    assert modal["callback_id"] == "incident_declare"
    assert input_block_ids(modal) == DECLARE_BLOCKS
    assert "initial_conversation" not in input_element(modal, "channel")

    answer = submit(bot, modal, {"title": "Queue is stuck", "severity": "SEV4"})
    assert answer is not None and list(answer["errors"]) == ["channel"]

    answer = submit(bot, modal, {"title": "Queue is stuck", "severity": "SEV4", "channel": CHANNEL})
    assert answer is None
    wait_for_notice(bot.fake, USER, 0)
    assert load(bot, latest_incident_id(bot)).slack_channel_id == CHANNEL


# --- the card's buttons ---

EDGES = [
    (start, target)
    for start, targets in NEXT_STATUSES.items()
    for target in targets
    if target != "resolved"
]
PATH_TO = {"open": [], "investigating": ["investigating"], "mitigated": ["mitigated"]}
PATH_TO["resolved"] = ["resolved"]
MILESTONE = {
    "investigating": "acknowledged_at",
    "mitigated": "mitigated_at",
    "resolved": "resolved_at",
    "closed": "closed_at",
}


@pytest.mark.parametrize(("start", "target"), EDGES, ids=[f"{s}->{t}" for s, t in EDGES])
def test_every_allowed_status_button_moves_the_incident_and_updates_the_card(
    bot: Bot, start: str, target: str
):
    incident_id = declare(bot, severity="SEV2")
    for step in PATH_TO[start]:
        move(bot, incident_id, step)
    assert load(bot, incident_id).status == Status(start)
    card = card_message(bot, incident_id)
    assert status_buttons(card) == NEXT_STATUSES[start]
    updates = len(bot.fake.calls_to("chat.update"))

    reply = move(bot, incident_id, target, user_id=BOB)

    incident = load(bot, incident_id)
    assert incident.status == Status(target)
    assert getattr(incident, MILESTONE[target]) is not None
    if target == "investigating" and start == "resolved":
        assert incident.resolved_at is None  # reopened: no longer resolved
    last = events(bot, incident_id)[-1]
    assert (last.kind, last.actor, last.from_value, last.to_value) == (
        EventKind.STATUS_CHANGED,
        BOB,
        start,
        target,
    )

    update = bot.fake.calls_to("chat.update")[updates:]
    # (A SEV2 also has its own channel, whose pinned summary is edited too.)
    assert [(u["channel"], u["ts"]) for u in update if u["channel"] == CHANNEL] == [
        (CHANNEL, incident.card_ts)
    ]
    card = card_message(bot, incident_id)
    assert "edited" in card
    assert card_fields(card)["Status"].endswith(target.capitalize())
    assert status_buttons(card) == NEXT_STATUSES[target]
    assert {"incident_add_note", "incident_edit"} <= set(buttons(card))

    assert f"<@{BOB}>" in reply["text"]
    assert f"{start} → {target}" in reply["text"]
    assert reply["thread_ts"] == incident.card_ts
    assert reply.get("subtype") == "thread_broadcast"  # SEV2: also shown in the channel
    assert bot.fake.ephemeral_messages(user=BOB) == []


@pytest.mark.parametrize(("severity", "broadcast"), [("SEV1", True), ("SEV3", False)])
def test_status_changes_are_broadcast_to_the_channel_only_for_sev1_and_sev2(
    bot: Bot, severity: str, broadcast: bool
):
    incident_id = declare(bot, severity=severity)
    reply = move(bot, incident_id, "investigating")

    assert (reply.get("subtype") == "thread_broadcast") is broadcast
    in_channel = [m["ts"] for m in bot.fake.messages(CHANNEL)]
    assert (reply["ts"] in in_channel) is broadcast
    # Notes are thread-only whatever the severity.
    modal = open_from_card(bot, incident_id, "incident_add_note")
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"note": "Looking at the load balancer"}) is None
    note = wait_for_reply(bot, incident_id, seen)
    assert note.get("subtype") != "thread_broadcast"


def test_stale_card_button_is_refused_with_an_ephemeral_message_and_changes_nothing(bot: Bot):
    incident_id = declare(bot, severity="SEV3")
    stale_card = card_message(bot, incident_id)  # what USER still sees: an open incident
    move(bot, incident_id, "investigating", user_id=BOB)  # someone else moved it meanwhile
    before = state_of(bot, incident_id)

    for n, target in enumerate(["mitigated", "investigating", "resolved"]):
        views_opened = len(bot.fake.calls_to("views.open"))
        click(bot, incident_id, STATUS_BUTTON + target, card=stale_card)
        message = wait_for_ephemeral(bot.fake, n)
        assert f"INC-{incident_id}" in message
        assert "changed while you were looking" in message
        assert "investigating" in message
        assert len(bot.fake.calls_to("views.open")) == views_opened  # no resolve modal
        assert state_of(bot, incident_id) == before
    assert bot.fake.ephemeral_messages(user=USER)[0]["channel"] == CHANNEL


def test_resolve_button_asks_for_resolution_and_cause_then_stores_and_threads_them(bot: Bot):
    incident_id = declare(bot, severity="SEV1")
    move(bot, incident_id, "mitigated")
    before = state_of(bot, incident_id)

    modal = open_from_card(bot, incident_id, STATUS_BUTTON + "resolved", user_id=BOB)
    assert modal["callback_id"] == "incident_resolve"
    assert input_block_ids(modal) == ["resolution", "cause", "note"]
    assert state_of(bot, incident_id) == before  # nothing changes until it is submitted

    seen = len(thread(bot, incident_id))
    answer = submit(
        bot,
        modal,
        {
            "resolution": "Rolled back deploy 42",
            "cause": "A config flag <beta> & a typo",
            "note": "All clear from support",
        },
        user_id=BOB,
    )
    assert answer is None
    reply = wait_for_reply(bot, incident_id, seen)

    incident = load(bot, incident_id)
    assert incident.status == Status.RESOLVED and incident.resolved_at is not None
    assert incident.resolution == "Rolled back deploy 42"
    assert incident.cause == "A config flag <beta> & a typo"
    last = events(bot, incident_id)[-1]
    assert (last.actor, last.from_value, last.to_value, last.text) == (
        BOB,
        "mitigated",
        "resolved",
        "All clear from support",
    )
    assert f"<@{BOB}>" in reply["text"] and "mitigated → resolved" in reply["text"]
    assert "*Resolution:* Rolled back deploy 42" in reply["text"]
    assert "*Cause:* A config flag &lt;beta&gt; &amp; a typo" in reply["text"]
    assert "All clear from support" in reply["text"]
    assert reply.get("subtype") == "thread_broadcast"

    card = card_message(bot, incident_id)
    assert status_buttons(card) == NEXT_STATUSES["resolved"]
    sections = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section" and "text" in b]
    assert "*Resolution*\nRolled back deploy 42" in sections
    assert "*Cause*\nA config flag &lt;beta&gt; &amp; a typo" in sections


@pytest.mark.parametrize("start", ["open", "investigating"])
def test_resolve_modal_works_from_each_active_status(bot: Bot, start: str):
    incident_id = declare(bot, severity="SEV4")
    for step in PATH_TO[start]:
        move(bot, incident_id, step)
    reply = move(bot, incident_id, "resolved")
    assert load(bot, incident_id).status == Status.RESOLVED
    assert load(bot, incident_id).resolution == "Rolled back"
    assert f"{start} → resolved" in reply["text"]


def test_resolve_modal_submitted_after_someone_else_moved_the_incident_changes_nothing(bot: Bot):
    incident_id = declare(bot, severity="SEV3")
    modal = open_from_card(bot, incident_id, STATUS_BUTTON + "resolved")
    move(bot, incident_id, "mitigated", user_id=BOB)
    before = state_of(bot, incident_id)

    answer = submit(bot, modal, {"resolution": "Restarted the pods"})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["resolution"]  # the first input: there is no better one
    assert "changed while you were looking" in answer["errors"]["resolution"]
    assert state_of(bot, incident_id) == before
    assert load(bot, incident_id).resolution is None


def test_add_note_button_opens_the_note_modal_and_the_note_is_stored_and_threaded(bot: Bot):
    other = declare(bot, "Another incident", "SEV3")
    incident_id = declare(bot, severity="SEV3")
    modal = open_from_card(bot, incident_id, "incident_add_note", user_id=BOB)
    assert modal["callback_id"] == "incident_note"
    assert input_block_ids(modal) == ["note"]
    context = next(b for b in modal["blocks"] if b["type"] == "context")
    assert context["elements"][0]["text"] == f"*INC-{incident_id}* Checkout is failing"

    seen = len(thread(bot, incident_id))
    updates = len(bot.fake.calls_to("chat.update"))
    text = "Failover to <replica-2> done & traffic back"
    assert submit(bot, modal, {"note": text}, user_id=BOB) is None
    reply = wait_for_reply(bot, incident_id, seen)

    note = events(bot, incident_id)[-1]
    assert (note.kind, note.actor, note.text) == (EventKind.NOTE, BOB, text)
    assert reply["text"] == (
        f"📝 <@{BOB}> added a note:\n> Failover to &lt;replica-2&gt; done &amp; traffic back"
    )
    assert len(bot.fake.calls_to("chat.update")) == updates + 1
    assert load(bot, incident_id).status == Status.OPEN
    assert [e.kind for e in events(bot, other)] == [EventKind.CREATED]
    assert thread(bot, other) == []


def test_edit_button_saves_only_the_fields_the_user_changed(bot: Bot):
    incident_id = declare(
        bot,
        title="Checkout is failing",
        service="payments",
        description="502s on /pay",
        category="outage",
    )
    modal = open_from_card(bot, incident_id, "incident_edit", user_id=BOB)
    assert modal["callback_id"] == "incident_edit"
    assert input_block_ids(modal) == [
        "title",
        "service",
        "category",
        "description",
        "cause",
        "resolution",
    ]
    assert input_element(modal, "title")["initial_value"] == "Checkout is failing"
    assert input_element(modal, "service")["initial_value"] == "payments"
    assert input_element(modal, "category")["initial_option"]["value"] == "outage"

    # Someone else changes the service while BOB has the modal open.
    with bot.sessions.begin() as session:
        session.get(Incident, incident_id).service = "payments-api"
    seen = len(thread(bot, incident_id))

    assert submit(bot, modal, {"title": "Checkout fails for EU cards"}, user_id=BOB) is None
    reply = wait_for_reply(bot, incident_id, seen)

    incident = load(bot, incident_id)
    assert incident.title == "Checkout fails for EU cards"
    assert incident.service == "payments-api"  # the other person's change stands
    assert (incident.description, incident.category) == ("502s on /pay", "outage")
    changed = [(e.field, e.actor) for e in events(bot, incident_id) if e.kind == "field_changed"]
    assert changed == [("title", BOB)]
    assert f"<@{BOB}> changed the title" in reply["text"]
    assert "Checkout fails for EU cards" in reply["text"]
    assert "service" not in reply["text"]
    card = card_message(bot, incident_id)
    assert header(card).endswith("Checkout fails for EU cards")
    assert card_fields(card)["Service"] == "payments-api"


def test_edit_modal_leaves_out_a_description_longer_than_an_input_and_keeps_it(bot: Bot):
    description = ("Timeline of the outage, minute by minute. " * 100)[:3_500].strip()
    incident_id = declare(bot, description=description, service="search")
    assert load(bot, incident_id).description == description

    modal = open_from_card(bot, incident_id, "incident_edit")
    assert "description" not in input_block_ids(modal)
    assert "title" in input_block_ids(modal)
    assert "description" not in json.loads(modal["private_metadata"])["h"]

    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"title": "Search is slow", "service": "search-api"}) is None
    wait_for_reply(bot, incident_id, seen)

    incident = load(bot, incident_id)
    assert (incident.title, incident.service) == ("Search is slow", "search-api")
    assert incident.description == description


# --- refused changes: a clear message and nothing changes ---


def test_buttons_of_an_unknown_incident_say_so_and_change_nothing(bot: Bot):
    incident_id = declare(bot, severity="SEV3")
    card = card_message(bot, incident_id)
    with bot.sessions.begin() as session:
        session.execute(delete(Incident).where(Incident.id == incident_id))
    views_opened = len(bot.fake.calls_to("views.open"))

    for n, action_id in enumerate(
        [STATUS_BUTTON + "investigating", STATUS_BUTTON + "resolved", "incident_add_note"]
    ):
        status, _, _ = bot.post(
            payloads.block_actions_from(card, action_id, channel_id=CHANNEL, fake=bot.fake)
        )
        assert status == 200
        assert wait_for_ephemeral(bot.fake, n) == f"There is no incident INC-{incident_id}."

    assert len(bot.fake.calls_to("views.open")) == views_opened
    assert count_incidents(bot) == 0
    assert bot.fake.calls_to("chat.update") == []


def test_bad_status_disallowed_transition_and_missing_permission_are_refused(bot: Bot):
    incident_id = declare(bot, severity="SEV3")
    move(bot, incident_id, "investigating")
    before = state_of(bot, incident_id)

    click_crafted(
        bot, incident_id, STATUS_BUTTON + "bogus", {"id": incident_id, "status": "investigating"}
    )
    assert "Unknown status 'bogus'" in wait_for_ephemeral(bot.fake, 0)
    click_crafted(
        bot, incident_id, STATUS_BUTTON + "open", {"id": incident_id, "status": "investigating"}
    )
    assert "can't go from investigating to open" in wait_for_ephemeral(bot.fake, 1)
    assert state_of(bot, incident_id) == before

    move(bot, incident_id, "closed")
    assert status_buttons(card_message(bot, incident_id)) == []
    before = state_of(bot, incident_id)
    reopen = {"id": incident_id, "status": "closed"}
    click_crafted(bot, incident_id, STATUS_BUTTON + "investigating", reopen)
    assert "only an incident admin can reopen it" in wait_for_ephemeral(bot.fake, 2)
    assert state_of(bot, incident_id) == before

    # An admin may.
    seen = len(thread(bot, incident_id))
    click_crafted(bot, incident_id, STATUS_BUTTON + "investigating", reopen, user_id=ADMIN_ID)
    reply = wait_for_reply(bot, incident_id, seen)
    assert load(bot, incident_id).status == Status.INVESTIGATING
    assert f"<@{ADMIN_ID}>" in reply["text"] and "closed → investigating" in reply["text"]


def test_editing_a_closed_incident_is_refused_inline_for_non_admins(bot: Bot):
    incident_id = declare(bot, severity="SEV3")
    move(bot, incident_id, "closed")
    modal = open_from_card(bot, incident_id, "incident_edit")
    before = state_of(bot, incident_id)

    answer = submit(bot, modal, {"title": "Renamed after the fact"})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["title"]
    assert "only an incident admin can change it" in answer["errors"]["title"]
    assert state_of(bot, incident_id) == before


OVER_LONG = {
    "note of 3,001": ("incident_add_note", {"note": "n" * 3_001}, "note"),
    "title of 256": ("incident_edit", {"title": "t" * 256}, "title"),
    "service of 121": ("incident_edit", {"service": "s" * 121}, "service"),
    "resolution of 10,001": (
        STATUS_BUTTON + "resolved",
        {"resolution": "r" * 10_001},
        "resolution",
    ),
    "cause of 10,001": (
        STATUS_BUTTON + "resolved",
        {"resolution": "Restarted", "cause": "c" * 10_001},
        "cause",
    ),
    "blank note": ("incident_add_note", {"note": "   "}, "note"),
}


@pytest.mark.parametrize("case", list(OVER_LONG), ids=list(OVER_LONG))
def test_over_long_text_in_a_modal_comes_back_inline_and_changes_nothing(bot: Bot, case: str):
    action_id, inputs, block_id = OVER_LONG[case]
    incident_id = declare(bot, severity="SEV3", service="payments")
    modal = open_from_card(bot, incident_id, action_id)
    before = state_of(bot, incident_id)

    answer = submit(bot, modal, inputs)

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block_id], answer
    assert answer["errors"][block_id]
    assert state_of(bot, incident_id) == before


# --- message shortcut: "Add to incident timeline" ---


def options_for(bot: Bot, modal: dict[str, Any], typed: str) -> list[tuple[str, str]]:
    status, headers, body = bot.post(
        payloads.block_suggestion("incident_picker", typed, view=modal)
    )
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    options = json.loads(body)["options"]
    for option in options:
        assert option["text"]["type"] == "plain_text" and len(option["text"]["text"]) <= 75
    return [(o["value"], o["text"]["text"]) for o in options]


def open_timeline_modal(bot: Bot, message: dict[str, Any]) -> dict[str, Any]:
    previous = bot.fake.top_view(USER)
    status, _, body = bot.post(
        payloads.message_shortcut(
            "add_to_incident_timeline", message, fake=bot.fake, channel_id=CHANNEL
        )
    )
    assert (status, body) == (200, "")
    modal = wait_for_new_view(bot.fake, USER, previous)
    assert modal["callback_id"] == "incident_timeline_note"
    return modal


def test_message_shortcut_adds_the_message_as_a_note_at_its_time_with_its_permalink(bot: Bot):
    payments = declare(bot, "Payments webhook retries", "SEV2")
    search = declare(bot, "Search latency high", "SEV3")
    old = declare(bot, "Payments outage last week", "SEV1")
    move(bot, old, "resolved")
    # Slack delivers message text escaped.
    said = bot.fake.add_message(CHANNEL, "Rolled back &lt;deploy 42&gt; &amp; restarted", user=BOB)

    modal = open_timeline_modal(bot, said)
    assert input_block_ids(modal) == ["incident", "note"]
    assert input_element(modal, "incident")["type"] == "external_select"
    assert input_element(modal, "note")["initial_value"] == "Rolled back <deploy 42> & restarted"

    everything = options_for(bot, modal, "")
    assert sorted(value for value, _ in everything) == sorted([str(payments), str(search)])
    by_words = options_for(bot, modal, "payments")
    assert [value for value, _ in by_words] == [str(payments)]
    assert by_words[0][1].startswith(f"INC-{payments} SEV2 Payments webhook")
    assert [v for v, _ in options_for(bot, modal, "latency search")] == [str(search)]
    assert [v for v, _ in options_for(bot, modal, f"INC-{search}")] == [str(search)]
    assert [v for v, _ in options_for(bot, modal, f"inc-{payments}")] == [str(payments)]
    assert options_for(bot, modal, "nothing like this") == []

    seen = len(thread(bot, payments))
    assert submit(bot, modal, {"incident_picker": str(payments)}) is None
    reply = wait_for_reply(bot, payments, seen)

    permalink = bot.fake.client().chat_getPermalink(channel=CHANNEL, message_ts=said["ts"])
    permalink = permalink["permalink"]
    note = events(bot, payments)[-1]
    assert (note.kind, note.actor, note.text) == (
        EventKind.NOTE,
        USER,
        "Rolled back <deploy 42> & restarted",
    )
    seconds, micros = said["ts"].split(".")
    assert note.occurred_at == datetime.fromtimestamp(int(seconds), UTC).replace(
        microsecond=int(micros)
    )
    assert note.details == {"source_url": permalink, "source": f"{CHANNEL}/{said['ts']}"}
    assert f"(<{permalink}|from a message>)" in reply["text"]

    again = open_timeline_modal(bot, said)  # the same message, a second time: refused inline
    answer = submit(bot, again, {"incident_picker": str(payments)})
    assert answer == {
        "response_action": "errors",
        "errors": {"incident": f"That message is already a note of INC-{payments}."},
    }
    assert events(bot, payments)[-1].id == note.id
    assert "Rolled back &lt;deploy 42&gt; &amp; restarted" in reply["text"]
    assert f"<@{USER}>" in reply["text"]
    assert [e.kind for e in events(bot, search)] == [EventKind.CREATED]


def test_incident_picker_does_not_offer_a_resolved_incident_by_its_id(bot: Bot):
    active = declare(bot, "Payments webhook retries", "SEV2")
    old = declare(bot, "Payments outage last week", "SEV1")
    move(bot, old, "resolved")
    modal = open_timeline_modal(bot, bot.fake.add_message(CHANNEL, "It is back"))

    assert [v for v, _ in options_for(bot, modal, f"INC-{active}")] == [str(active)]
    assert options_for(bot, modal, f"INC-{old}") == []


def test_timeline_note_without_an_incident_is_refused_inline(bot: Bot):
    declare(bot, "Payments webhook retries", "SEV2")
    modal = open_timeline_modal(bot, bot.fake.add_message(CHANNEL, "It is back"))
    events_before = len(events(bot, latest_incident_id(bot)))

    answer = submit(bot, modal, {})

    assert answer is not None and list(answer["errors"]) == ["incident"]
    assert len(events(bot, latest_incident_id(bot))) == events_before


def test_message_shortcut_on_a_very_long_message_still_opens_a_valid_modal(bot: Bot):
    said = bot.fake.add_message(CHANNEL, "log line " * 1_000)
    modal = open_timeline_modal(bot, said)
    prefilled = input_element(modal, "note")["initial_value"]
    assert 0 < len(prefilled) <= 3_000
    assert prefilled.startswith("log line log line")


# --- App Home ---


def home_order(view: dict[str, Any]) -> list[str]:
    """Section headings and incident refs of a Home view, top to bottom."""
    out = []
    for block in view["blocks"]:
        if block["type"] == "section":
            text = block["text"]["text"]
            if text.startswith("*Yours") or text.startswith("*Everyone"):
                out.append(text.strip("*").split(" ")[0])
            out += re.findall(r"\*(INC-\d+)\*", text)
    return out


def publish_count(bot: Bot) -> int:
    return len(bot.fake.calls_to("views.publish"))


def open_home(bot: Bot) -> dict[str, Any]:
    published = publish_count(bot)
    status, _, _ = bot.post(payloads.event_callback(payloads.app_home_opened_event(USER)))
    assert status == 200
    bot.fake.wait_for_call("views.publish", published + 1)
    return bot.fake.home_views[USER]


def choose(bot: Bot, home: dict[str, Any], action_id: str, value: str) -> dict[str, Any]:
    published = publish_count(bot)
    status, _, _ = bot.post(payloads.block_actions_from(home, action_id, value, fake=bot.fake))
    assert status == 200
    bot.fake.wait_for_call("views.publish", published + 1)
    return bot.fake.home_views[USER]


def selected(home: dict[str, Any], action_id: str) -> str:
    controls = next(b for b in home["blocks"] if b["type"] == "actions")
    element = next(e for e in controls["elements"] if e["action_id"] == action_id)
    return element["initial_option"]["value"]


@pytest.fixture
def home_incidents(bot: Bot) -> dict[str, int]:
    # Declared most severe first, so "newest first" and "most severe first" differ.
    ids = {
        "others_sev1": declare(bot, "API is down", "SEV1", owner=BOB),
        "others_sev3": declare(bot, "Disk filling on db-3", "SEV3", owner=BOB),
        "mine_resolved": declare(bot, "Old outage", "SEV1"),  # USER owns it (the default)
        "assigned_sev2": declare(bot, "Checkout errors", "SEV2", user_id=BOB),
        "mine_sev4": declare(bot, "Slow search for some", "SEV4"),
    }
    seen = len(thread(bot, ids["assigned_sev2"]))
    assert bot.command(f"assign {ids['assigned_sev2']} assignee me")[0] == 200
    wait_for_reply(bot, ids["assigned_sev2"], seen)
    assert load(bot, ids["assigned_sev2"]).assignee == USER
    move(bot, ids["mine_resolved"], "resolved")
    return ids


def test_app_home_lists_the_users_incidents_first_then_others_by_severity(
    bot: Bot, home_incidents: dict[str, int]
):
    ids = {k: f"INC-{v}" for k, v in home_incidents.items()}
    home = open_home(bot)

    assert home["type"] == "home"
    assert home_order(home) == [
        "Yours",
        ids["assigned_sev2"],
        ids["mine_sev4"],
        "Everyone's",
        ids["others_sev1"],
        ids["others_sev3"],
    ]
    assert selected(home, "home_filter_severity") == "any"
    assert selected(home, "home_filter_status") == "active"


def test_app_home_filters_republish_with_the_filter_applied(
    bot: Bot, home_incidents: dict[str, int]
):
    ids = {k: f"INC-{v}" for k, v in home_incidents.items()}
    home = open_home(bot)

    home = choose(bot, home, "home_filter_severity", "SEV1")
    assert home_order(home) == ["Yours", "Everyone's", ids["others_sev1"]]
    assert selected(home, "home_filter_severity") == "SEV1"
    assert selected(home, "home_filter_status") == "active"

    home = choose(bot, home, "home_filter_status", "resolved")  # the severity filter stays
    assert home_order(home) == ["Yours", ids["mine_resolved"], "Everyone's"]
    assert selected(home, "home_filter_severity") == "SEV1"
    assert selected(home, "home_filter_status") == "resolved"

    home = choose(bot, home, "home_filter_severity", "any")
    home = choose(bot, home, "home_filter_status", "all")
    assert home_order(home) == [
        "Yours",
        ids["mine_resolved"],
        ids["assigned_sev2"],
        ids["mine_sev4"],
        "Everyone's",
        ids["others_sev1"],
        ids["others_sev3"],
    ]


def test_app_home_declare_button_opens_the_declare_modal(bot: Bot):
    home = open_home(bot)
    assert home_order(home) == ["Yours", "Everyone's"]

    status, _, _ = bot.post(payloads.block_actions_from(home, "home_declare", fake=bot.fake))
    assert status == 200
    modal = wait_for_new_view(bot.fake, USER, None)

    assert modal["callback_id"] == "incident_declare"
    assert input_block_ids(modal) == DECLARE_BLOCKS
    assert input_element(modal, "owner")["initial_user"] == USER
    answer = submit(
        bot, modal, {"title": "Declared from Home", "severity": "SEV3", "channel": CHANNEL}
    )
    assert answer is None
    wait_for_notice(bot.fake, USER, 0)
    assert load(bot, latest_incident_id(bot)).title == "Declared from Home"


# --- display limits and escaping ---


def assert_delivered(bot: Bot, incident_id: int) -> None:
    with bot.sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.incident_id == incident_id)).all()
    assert rows
    assert [n for n in notices(bot.fake, USER) if "⚠️" in n] == []
    assert [(r.action.value, r.last_error) for r in rows if r.delivered_at is None] == []
    assert all(r.last_error is None or r.last_error.startswith("skipped") for r in rows), [
        r.last_error for r in rows
    ]


def test_longest_title_and_description_make_a_card_slack_accepts(bot: Bot):
    title = "🔥" * 255
    description = ("The primary database refuses connections. " * 300)[:9_999] + "."
    incident_id = declare(bot, title, "SEV1", description=description)

    incident = load(bot, incident_id)
    assert (incident.title, incident.description) == (title, description)
    assert_delivered(bot, incident_id)
    card = card_message(bot, incident_id)
    assert len(header(card)) <= 150 and header(card).startswith(f"🔴 INC-{incident_id}: 🔥🔥")

    move(bot, incident_id, "investigating")  # chat.update of the same card is accepted too
    assert card_fields(card_message(bot, incident_id))["Status"] == "🔍 Investigating"

    long_note = ("Checked every replica; " * 200)[:3_000]
    modal = open_from_card(bot, incident_id, "incident_add_note")
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"note": long_note}) is None
    reply = wait_for_reply(bot, incident_id, seen)
    assert reply["text"].startswith(f"📝 <@{USER}> added a note:\n> Checked every replica")
    assert events(bot, incident_id)[-1].text == long_note
    assert_delivered(bot, incident_id)


def test_description_full_of_markup_still_makes_a_card_slack_accepts(bot: Bot):
    # Pasted HTML or XML: each <, > and & grows when escaped for mrkdwn.
    description = ('<div class="err">&nbsp;</div> ' * 400)[:10_000]
    incident_id = declare(bot, "Error page shown to everyone", "SEV2", description=description)

    assert load(bot, incident_id).card_ts is not None, notices(bot.fake, USER)
    assert_delivered(bot, incident_id)
    sections = [
        b["text"]["text"]
        for b in card_message(bot, incident_id)["blocks"]
        if b["type"] == "section" and "text" in b
    ]
    assert any(s.startswith("&lt;div class=") for s in sections)


def test_resolution_full_of_markup_still_updates_the_card(bot: Bot):
    incident_id = declare(bot, "Error page shown to everyone", "SEV3")
    modal = open_from_card(bot, incident_id, STATUS_BUTTON + "resolved")
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"resolution": "<<>>&" * 600}) is None
    # The thread reply, or a message to the person saying what went wrong.
    bot.fake.wait_for(lambda: len(thread(bot, incident_id)) > seen or notices(bot.fake, USER))
    assert notices(bot.fake, USER) == []

    assert load(bot, incident_id).status == Status.RESOLVED
    wait_for_reply(bot, incident_id, seen)
    assert_delivered(bot, incident_id)
    assert card_fields(card_message(bot, incident_id))["Status"] == "✅ Resolved"


DANGEROUS = ("<!channel>", "<!here>", "<!everyone>", "<@U0EVIL0001>", "<https://evil")


def declare_dangerous(bot: Bot) -> int:
    return declare(
        bot,
        "<!channel> db down",
        "SEV1",
        description="ping <@U0EVIL0001> and <!here>",
        service="<https://evil.example|runbook>",
    )


def unescaped_mentions(bot: Bot) -> list[tuple[str, str]]:
    """(method, text) of every mrkdwn text sent to Slack that carries a live mention."""
    return [
        (method, text)
        for method, kind, text in texts_sent(bot.fake)
        if kind == "mrkdwn" and any(d in text for d in DANGEROUS)
    ]


def test_user_text_never_reaches_slack_mrkdwn_unescaped(bot: Bot):
    incident_id = declare_dangerous(bot)
    move(bot, incident_id, "investigating")
    modal = open_from_card(bot, incident_id, "incident_add_note")
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"note": "<!everyone> look"}) is None
    wait_for_reply(bot, incident_id, seen)
    modal = open_from_card(bot, incident_id, "incident_edit")
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"title": "<!channel> db down again"}) is None
    wait_for_reply(bot, incident_id, seen)
    said = bot.fake.add_message(CHANNEL, "&lt;!here&gt; it is back &amp; green")
    modal = open_timeline_modal(bot, said)
    seen = len(thread(bot, incident_id))
    assert submit(bot, modal, {"incident_picker": str(incident_id)}) is None
    wait_for_reply(bot, incident_id, seen)
    open_home(bot)
    responses = len(bot.responses())
    assert bot.command("list")[0] == 200
    bot.fake.wait_for(lambda: len(bot.responses()) > responses)

    assert unescaped_mentions(bot) == []
    # The escaped form is what went out (so the check above looked at the right texts) ...
    mrkdwn = "\n".join(text for _, kind, text in texts_sent(bot.fake) if kind == "mrkdwn")
    for escaped in (
        "&lt;!channel&gt; db down",
        "&lt;@U0EVIL0001&gt;",
        "&lt;!here&gt;",
        "&lt;!everyone&gt; look",
        "&lt;https://evil.example|runbook&gt;",
        "&lt;!here&gt; it is back &amp; green",
    ):
        assert escaped in mrkdwn, escaped
    # ... while a plain_text header may show it as typed: it pings nobody.
    assert header(card_message(bot, incident_id)).endswith("<!channel> db down again")


def test_incident_show_reply_escapes_the_title_in_its_text(bot: Bot):
    incident_id = declare_dangerous(bot)
    assert bot.command(f"show {incident_id}")[0] == 200
    reply = bot.fake.wait_for(lambda: bot.responses())[0]

    assert any(
        "&lt;!channel&gt; db down" in t for _, kind, t in texts_sent(bot.fake) if kind == "mrkdwn"
    )
    assert f"INC-{incident_id}" in reply["text"]
    assert unescaped_mentions(bot) == []


def test_editing_keeps_a_category_that_is_no_longer_configured(slackbot: Bot) -> None:
    """The category list changed since; an edit that doesn't touch the category keeps it."""
    with slackbot.sessions.begin() as session:
        incident = incidents.declare(
            session,
            IncidentDraft(title="Legacy incident", severity="SEV3", category="vendor"),
            Actor(USER),
            categories=("vendor", "other"),
        )
        incident_id = incident.id
    status, _, _ = slackbot.command(f"edit {incident_id}")
    assert status == 200
    modal = slackbot.fake.wait_for(lambda: slackbot.fake.top_view())
    status, _, body = slackbot.post(
        payloads.view_submission(modal, {"title": "Legacy incident, renamed"}, fake=slackbot.fake)
    )
    assert status == 200 and body == ""
    with slackbot.sessions() as session:
        stored = session.get_one(Incident, incident_id)
        assert (stored.title, stored.category) == ("Legacy incident, renamed", "vendor")
