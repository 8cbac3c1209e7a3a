"""`/incident` end to end: signed slash commands sent to the real bot over HTTP on loopback.

Every assertion is on what reached the fake Slack (the HTTP answer to the command, what was
posted to its response_url, Web API calls) and on the database the bot committed to.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, IncidentDraft
from bot.slack import ids
from bot.slack.blocks import escape
from db.models import Delivery, DeliveryAction, EventKind, Incident, IncidentEvent, Severity, Status
from tests.fakeslack import defaults, message_text_length, payloads
from tests.fakeslack.blockkit import MESSAGE_BLOCKS_TEXT_LIMIT
from tests.slackbot import ADMIN_ID, Bot
from tests.steps import resolution

USER = defaults.USER_ID
OTHER = "U0BOB00001"
THIRD = "U0CAROL001"
CHANNEL = defaults.CHANNEL_ID
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STATUSES = "open, investigating, mitigated, resolved, closed"
# Slack answers a slash command after 3 s with "operation_timeout"; the ack must beat that.
ACK_DEADLINE = 3.0


# --- Talking to the bot ------------------------------------------------------------------------


# What each command's ack said, by its response_url: a change is confirmed in the ack itself.
ACKS: dict[str, str] = {}


def run(
    bot: Bot, text: str, *, user: str = USER, channel: str = CHANNEL, expect: str | None = None
) -> str:
    """Send `/incident <text>`, check the ack (200, in time, body `expect` if given); returns
    its response_url."""
    payload = payloads.slash_command(
        "/incident", text, fake=bot.fake, user_id=user, channel_id=channel
    )
    started = time.monotonic()
    status, _, body = bot.post(payload)
    elapsed = time.monotonic() - started
    assert status == 200, (status, body)
    if expect is not None:
        assert body == expect
    assert elapsed < ACK_DEADLINE, f"/incident {text[:40]!r} acked after {elapsed:.2f}s"
    ACKS[payload["response_url"]] = body
    return payload["response_url"]


def warnings(bot: Bot) -> list[str]:
    """What the bot told people went wrong (its error handler and delivery problems)."""
    return [
        str(params.get("text"))
        for params in bot.fake.calls_to("chat.postEphemeral")
        if str(params.get("text", "")).startswith("⚠️")
    ]


def answer(bot: Bot, response_url: str, index: int = 0) -> dict[str, Any]:
    """The command's answer: its ack's text, or else what the bot posted to `response_url`
    (waiting for it), checked to be ephemeral."""
    if index == 0 and ACKS.get(response_url):
        return {"text": ACKS[response_url]}
    bot.fake.wait_for(lambda: len(bot.fake.responses(response_url)) > index or warnings(bot))
    posts = bot.fake.responses(response_url)
    assert len(posts) > index, f"no answer; the bot said instead: {warnings(bot)}"
    body = posts[index]
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return body


def ask(bot: Bot, text: str, *, user: str = USER, channel: str = CHANNEL) -> dict[str, Any]:
    return answer(bot, run(bot, text, user=user, channel=channel))


def settle(bot: Bot) -> None:
    """A later command's answer: by then a listener that acked before it has long finished."""
    assert "run incidents from Slack" in ask(bot, "help")["text"]


def click(bot: Bot, message: dict[str, Any], action_id: str, *, user: str = USER) -> dict[str, Any]:
    """Click a button of an ephemeral message the bot posted; returns its block_actions payload."""
    shown = {"ts": f"{time.time():.6f}", "text": message.get("text", ""), **message}
    payload = payloads.block_actions_from(
        shown, action_id, channel_id=CHANNEL, fake=bot.fake, user_id=user, is_ephemeral=True
    )
    started = time.monotonic()
    status, _, body = bot.post(payload)
    assert status == 200, (status, body)
    assert time.monotonic() - started < ACK_DEADLINE
    return payload


def slack_writes(bot: Bot) -> list[str]:
    """Every Web API call that shows something in Slack (posts, edits, modals)."""
    return [
        method
        for method, _ in bot.fake.calls
        if method.startswith(("chat.", "views.", "conversations.", "files."))
        and method != "chat.getPermalink"
    ]


def thread_replies(bot: Bot, card_ts: str) -> list[dict[str, Any]]:
    return [p for p in bot.fake.calls_to("chat.postMessage") if p.get("thread_ts") == card_ts]


def wait_thread_reply(bot: Bot, card_ts: str, count: int = 1) -> dict[str, Any]:
    bot.fake.wait_for(lambda: len(thread_replies(bot, card_ts)) >= count or warnings(bot))
    replies = thread_replies(bot, card_ts)
    assert len(replies) >= count, f"no thread reply; the bot said instead: {warnings(bot)}"
    return replies[count - 1]


# --- Reading what was rendered -----------------------------------------------------------------


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text of `blocks`, in order: section text and fields, context elements, headers."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields") or []]
        if block["type"] == "context":
            out += [element["text"] for element in block["elements"]]
    return out


def listed_ids(body: dict[str, Any]) -> list[int]:
    return [
        int(m.group(1))
        for text in texts(body.get("blocks") or [])
        for m in [re.match(r"\S+ \*INC-(\d+)\*", text)]
        if m
    ]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for _, _, element in payloads.iter_elements(blocks):
        if element["type"] == "button":
            found[element["action_id"]] = element
    return found


def note_delete_buttons(blocks: list[dict[str, Any]]) -> list[str]:
    """The note texts (first quoted line) that carry a Delete button."""
    out = []
    for block in blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == ids.DELETE_NOTE_ACTION:
            out.append(block["text"]["text"].split("\n> ", 1)[1])
    return out


def input_value(view: dict[str, Any], block_id: str) -> str | None:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return block["element"].get("initial_value")


# --- Building state through the domain ---------------------------------------------------------


def declare(
    bot: Bot,
    title: str = "Checkout is failing",
    *,
    severity: str = "SEV3",
    card: bool = False,
    status: Status | None = None,
    at: datetime | None = None,
    reporter: str = USER,
    **fields: Any,
) -> int:
    with bot.sessions.begin() as session:
        incident = incidents.declare(
            session,
            IncidentDraft(
                title=title,
                severity=severity,
                slack_channel_id=CHANNEL if card else None,
                **fields,
            ),
            Actor(reporter),
            now=at,
        )
        if status is not None and status != Status.OPEN:
            incidents.change_status(
                session,
                incident.id,
                status,
                Actor(ADMIN_ID, is_admin=True),
                now=at,
                resolution=resolution(status),
            )
        return incident.id


def post_cards(bot: Bot) -> None:
    result = Deliverer(bot.sessions, bot.fake.client()).drain()
    assert not result.problems


def with_card(bot: Bot, title: str = "Checkout is failing", **kwargs: Any) -> tuple[int, str]:
    """An incident whose card is already in the channel; the fake's call log starts empty."""
    number = declare(bot, title, card=True, **kwargs)
    post_cards(bot)
    ts = load(bot, number).card_ts
    assert ts
    bot.fake.clear_calls()
    return number, ts


def load(bot: Bot, number: int) -> Incident:
    with bot.sessions() as session:
        incident = session.get(Incident, number)
        assert incident is not None
        return incident


def events(bot: Bot, number: int) -> list[IncidentEvent]:
    with bot.sessions() as session:
        return list(
            session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == number)
                .order_by(IncidentEvent.id)
            )
        )


def snapshot(bot: Bot) -> tuple[Any, ...]:
    """Everything a command could change: incidents, timeline, the outbox's updates."""
    with bot.sessions() as session:
        rows = session.execute(
            select(
                Incident.id,
                Incident.title,
                Incident.status,
                Incident.severity,
                Incident.owner,
                Incident.assignee,
                Incident.version,
                Incident.updated_at,
            ).order_by(Incident.id)
        ).all()
        timeline = session.execute(
            select(IncidentEvent.id, IncidentEvent.text, IncidentEvent.deleted_at).order_by(
                IncidentEvent.id
            )
        ).all()
        # A refusal writes only the row that tells the person why.
        told = Delivery.action == DeliveryAction.TELL_USER
        outbox = session.scalar(select(func.count()).select_from(Delivery).where(~told))
    return tuple(rows), tuple(timeline), outbox


# --- help, and declaring ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["help", "HELP", "?"])
def test_help_lists_every_subcommand(slackbot: Bot, text: str) -> None:
    body = ask(slackbot, text)

    for usage in (
        "`/incident list [filters]`",
        "`/incident show <id>`",
        "`/incident status <id> <status> [note]`",
        "`/incident sev <id> <severity> [note]`",
        "`/incident note <id> <text>`",
        "`/incident assign <id> [owner|assignee] @someone|me|nobody`",
        "`/incident edit <id>`",
        "`/incident delete <id>`",
        "`service:<name>`",
        "`category:<name>`",
        "`mine`",
    ):
        assert usage in body["text"]
    assert slack_writes(slackbot) == []


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("", None),
        ("   ", None),
        ("declare", None),
        ("new", None),
        ("Checkout is failing", "Checkout is failing"),
        ("declare Checkout is failing", "Checkout is failing"),
        ("NEW   Checkout is failing  ", "Checkout is failing"),
        # Starts like a subcommand but is not one: the whole text is the title.
        ("listing page is blank", "listing page is blank"),
        ("Notes app crashes", "Notes app crashes"),
        # Slack escapes &, < and >; the form shows what the person typed.
        ("DB &lt;primary&gt; &amp; replica down", "DB <primary> & replica down"),
    ],
)
def test_declare_opens_the_modal_with_the_title(
    slackbot: Bot, text: str, title: str | None
) -> None:
    run(slackbot, text)

    opened = slackbot.fake.wait_for_call("views.open")
    assert len(opened) == 1
    view = slackbot.fake.top_view()
    assert view is not None
    assert view["callback_id"] == ids.DECLARE_VIEW
    assert input_value(view, ids.TITLE_BLOCK) == title
    channel = next(b for b in view["blocks"] if b.get("block_id") == ids.CHANNEL_BLOCK)
    assert channel["element"]["initial_conversation"] == CHANNEL
    owner = next(b for b in view["blocks"] if b.get("block_id") == ids.OWNER_BLOCK)
    assert owner["element"]["initial_user"] == USER
    assert json.loads(view["private_metadata"]) == {"origin": CHANNEL}
    assert slackbot.responses() == []
    assert snapshot(slackbot)[0] == ()


def test_declare_from_a_dm_lets_the_person_pick_the_channel(slackbot: Bot) -> None:
    run(slackbot, "Checkout is failing", channel="D0DIRECT01")

    slackbot.fake.wait_for_call("views.open")
    view = slackbot.fake.top_view()
    assert view is not None
    channel = next(b for b in view["blocks"] if b.get("block_id") == ids.CHANNEL_BLOCK)
    assert "initial_conversation" not in channel["element"]
    assert channel["element"]["default_to_current_conversation"] is True


def test_declared_through_the_modal_the_card_is_posted(slackbot: Bot) -> None:
    run(slackbot, "Payments &amp; refunds failing")
    slackbot.fake.wait_for_call("views.open")
    view = slackbot.fake.top_view()
    assert view is not None

    submission = payloads.view_submission(
        view, {ids.SEVERITY_BLOCK: "SEV2", ids.SERVICE_BLOCK: "payments"}, fake=slackbot.fake
    )
    status, _, body = slackbot.post(submission)
    assert (status, body) == (200, "")

    # Stored before the ack; the card's ts is written after chat.postMessage returns.
    incident = load(slackbot, 1)
    assert (incident.title, incident.severity, incident.service) == (
        "Payments & refunds failing",
        Severity.SEV2,
        "payments",
    )
    card = slackbot.fake.wait_for(lambda: slackbot.fake.messages(CHANNEL))[0]
    assert "INC-1 [SEV2, open] Payments &amp; refunds failing" in card["text"]


# --- list ----------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(slackbot: Bot) -> Bot:
    """Six incidents declared an hour apart, INC-1 first (so INC-6 is the newest)."""
    rows: list[tuple[str, str, Status, dict[str, str]]] = [
        (
            "Checkout latency",
            "SEV1",
            Status.OPEN,
            {"service": "checkout", "category": "outage", "owner": USER},
        ),
        (
            "Login errors",
            "SEV2",
            Status.INVESTIGATING,
            {"service": "auth", "category": "degradation", "assignee": USER},
        ),
        ("Disk full on db", "SEV3", Status.MITIGATED, {"service": "db", "category": "data"}),
        (
            "Old outage of checkout pages",
            "SEV1",
            Status.RESOLVED,
            {"service": "checkout", "category": "outage", "owner": USER},
        ),
        ("Ancient auth thing", "SEV4", Status.CLOSED, {"service": "auth"}),
        (
            "Search slow",
            "SEV4",
            Status.OPEN,
            {"service": "search", "category": "degradation", "owner": OTHER, "assignee": OTHER},
        ),
    ]
    for hour, (title, severity, status, fields) in enumerate(rows, start=1):
        made = declare(
            slackbot,
            title,
            severity=severity,
            status=status,
            at=BASE + timedelta(hours=hour),
            **fields,
        )
        assert made == hour
    return slackbot


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("", [6, 3, 2, 1]),  # active by default, newest first
        ("active", [6, 3, 2, 1]),
        ("all", [6, 5, 4, 3, 2, 1]),
        ("open", [6, 1]),
        ("investigating", [2]),
        ("mitigated", [3]),
        ("resolved", [4]),
        ("closed", [5]),
        ("RESOLVED closed", [5, 4]),
        ("sev1", [1]),
        ("sev1 all", [4, 1]),
        ("SEV4", [6]),
        ("sev1 sev2", [2, 1]),
        ("service:checkout", [1]),
        ("service:Checkout all", [4, 1]),
        ("category:outage all", [4, 1]),
        ("category:degradation", [6, 2]),
        ("mine", [2, 1]),
        ("mine all", [4, 2, 1]),
        # Combined filters narrow each other.
        ("all sev1 service:checkout mine", [4, 1]),
        ("sev2 category:degradation mine", [2]),
        ("investigating service:checkout", []),
        # Free text searches title, description and service, case-insensitively; words AND.
        ("latency", [1]),
        ("CHECKOUT", [1]),
        ("checkout all", [4, 1]),
        ("all outage", [4]),
        ("disk db", [3]),
        ("auth all", [5, 2]),
        ("sev4 slow", [6]),
    ],
)
def test_list_filters(catalogue: Bot, filters: str, expected: list[int]) -> None:
    body = ask(catalogue, f"list {filters}")

    assert listed_ids(body) == expected
    header = texts(body["blocks"])[0]
    if expected:
        counted = f"{len(expected)} incident{'' if len(expected) == 1 else 's'}"
        assert header.startswith(f"*{counted}*")
        assert body["text"] == counted
    else:
        assert header.startswith("No incidents")
    if filters:
        assert f"matching `{filters}`" in header
    assert "list_pages" not in [b.get("block_id") for b in body["blocks"]]
    assert slack_writes(catalogue) == []


def test_list_shows_each_incident_summary(catalogue: Bot) -> None:
    body = ask(catalogue, "list sev2")

    summary = next(t for t in texts(body["blocks"]) if "*INC-2*" in t)
    assert "SEV2" in summary
    assert "investigating" in summary
    assert "_auth_" in summary
    assert "Login errors" in summary


def test_list_with_nothing_to_show(slackbot: Bot) -> None:
    declare(slackbot, "Checkout is failing", status=Status.CLOSED)

    empty = ask(slackbot, "list")
    assert texts(empty["blocks"]) == ["No incidents."]
    searched = ask(slackbot, "list no such words")
    assert texts(searched["blocks"]) == ["No incidents matching `no such words`."]
    assert buttons(empty["blocks"]) == buttons(searched["blocks"]) == {}


def test_list_pages_with_next_and_previous(slackbot: Bot) -> None:
    for number in range(1, 46):
        declare(
            slackbot,
            f"Checkout outage {number}",
            severity="SEV2",
            at=BASE + timedelta(minutes=number),
        )
    # Not matching the filter: must not leak into any page.
    for number in range(46, 49):
        declare(slackbot, f"Noise {number}", severity="SEV4", at=BASE + timedelta(hours=5))

    first = ask(slackbot, "list sev2")
    assert listed_ids(first) == list(range(45, 25, -1))
    assert "*45 incidents* matching `sev2` · page 1 of 3" in texts(first["blocks"])[0]
    assert list(buttons(first["blocks"])) == [f"{ids.LIST_PAGE_ACTION}:next"]

    pressed = click(slackbot, first, f"{ids.LIST_PAGE_ACTION}:next")
    second = answer(slackbot, pressed["response_url"])
    assert second["replace_original"] is True
    assert listed_ids(second) == list(range(25, 5, -1))
    assert "page 2 of 3" in texts(second["blocks"])[0]
    assert list(buttons(second["blocks"])) == [
        f"{ids.LIST_PAGE_ACTION}:prev",
        f"{ids.LIST_PAGE_ACTION}:next",
    ]

    pressed = click(slackbot, second, f"{ids.LIST_PAGE_ACTION}:next")
    third = answer(slackbot, pressed["response_url"])
    assert third["replace_original"] is True
    assert listed_ids(third) == [5, 4, 3, 2, 1]
    assert "page 3 of 3" in texts(third["blocks"])[0]
    assert list(buttons(third["blocks"])) == [f"{ids.LIST_PAGE_ACTION}:prev"]

    pressed = click(slackbot, third, f"{ids.LIST_PAGE_ACTION}:prev")
    back = answer(slackbot, pressed["response_url"])
    assert back["replace_original"] is True
    assert listed_ids(back) == list(range(25, 5, -1))

    pressed = click(slackbot, back, f"{ids.LIST_PAGE_ACTION}:prev")
    assert listed_ids(answer(slackbot, pressed["response_url"])) == list(range(45, 25, -1))
    assert slack_writes(slackbot) == []


# --- show --------------------------------------------------------------------------------------


@pytest.fixture
def detailed(slackbot: Bot) -> Bot:
    """INC-1 with a note by USER, a status change, and a note by OTHER (no card)."""
    number = declare(
        slackbot,
        "Checkout is failing",
        severity="SEV2",
        service="checkout",
        description="Card payments time out for EU customers.",
        owner=OTHER,
        assignee=USER,
        at=BASE,
    )
    with slackbot.sessions.begin() as session:
        incidents.add_note(
            session, number, Actor(USER), "alice's note", now=BASE + timedelta(minutes=1)
        )
        incidents.change_status(
            session,
            number,
            Status.INVESTIGATING,
            Actor(USER),
            note="looking",
            now=BASE + timedelta(minutes=2),
        )
        incidents.add_note(
            session, number, Actor(OTHER), "bob's note", now=BASE + timedelta(minutes=3)
        )
    return slackbot


@pytest.mark.parametrize("ref", ["1", "INC-1", "inc-1", "#1", "INC-0001"])
def test_show_details_and_timeline(detailed: Bot, ref: str) -> None:
    body = ask(detailed, f"show {ref}")

    shown = texts(body["blocks"])
    assert shown[0] == "🟠 *INC-1* Checkout is failing"
    fields = "\n".join(shown[1:7])
    assert "*Status*\n🔍 Investigating" in fields
    assert "*Severity*\n🟠 SEV2 (high)" in fields
    assert f"*Owner*\n<@{OTHER}>" in fields
    assert f"*Assignee*\n<@{USER}>" in fields
    assert "*Service*\ncheckout" in fields
    assert "Card payments time out for EU customers." in shown
    assert "*Timeline* (last 4)" in shown
    timeline = shown[shown.index("*Timeline* (last 4)") + 1 :]
    assert len(timeline) == 4
    assert f"<@{USER}> declared the incident as SEV2" in timeline[0]
    assert "alice's note" in timeline[1]
    assert "*open → investigating*" in timeline[2]
    assert "> looking" in timeline[2]
    assert "bob's note" in timeline[3]
    assert body["text"] == "INC-1: Checkout is failing"
    # No card: no link, and nothing was asked of Slack.
    assert "open_card" not in buttons(body["blocks"])
    assert detailed.fake.calls_to("chat.getPermalink") == []


@pytest.mark.parametrize(
    ("viewer", "deletable"),
    [
        (USER, ["alice's note"]),
        (OTHER, ["bob's note"]),
        (ADMIN_ID, ["alice's note", "bob's note"]),
        (THIRD, []),
    ],
)
def test_show_offers_note_deletion_to_author_and_admin(
    detailed: Bot, viewer: str, deletable: list[str]
) -> None:
    body = ask(detailed, "show 1", user=viewer)

    assert note_delete_buttons(body["blocks"]) == deletable


def test_note_delete_button_from_show_deletes_the_note(detailed: Bot) -> None:
    body = ask(detailed, "show 1")

    pressed = click(detailed, body, ids.DELETE_NOTE_ACTION)
    reply = answer(detailed, pressed["response_url"])
    assert reply["text"] == "Note deleted from INC-1."
    note = next(e for e in events(detailed, 1) if e.kind == EventKind.NOTE and e.actor == USER)
    assert (note.text, note.deleted_by) == (None, USER)
    again = texts(ask(detailed, "show 1")["blocks"])
    assert f"note deleted by <@{USER}>" in "\n".join(again)
    assert "alice's note" not in "\n".join(again)


def test_show_keeps_the_last_ten_timeline_entries(slackbot: Bot) -> None:
    number = declare(slackbot, "Checkout is failing", at=BASE)
    with slackbot.sessions.begin() as session:
        for n in range(1, 13):
            incidents.add_note(
                session, number, Actor(USER), f"note number {n}", now=BASE + timedelta(minutes=n)
            )

    shown = texts(ask(slackbot, "show 1")["blocks"])

    assert "*Timeline* (last 10)" in shown
    timeline = "\n".join(shown[shown.index("*Timeline* (last 10)") + 1 :])
    assert [int(n) for n in re.findall(r"note number (\d+)", timeline)] == list(range(3, 13))
    assert "declared the incident" not in timeline


def test_show_of_long_notes_fits_in_one_slack_message(slackbot: Bot) -> None:
    """Ten pasted stack traces: the detail must stay under Slack's total text per message."""
    number = declare(slackbot, at=BASE)
    trace = "\n".join(f"  at com.example.Checkout.pay(Checkout.java:{n})" for n in range(62))
    assert 2_900 < len(trace) <= incidents.NOTE_MAX
    with slackbot.sessions.begin() as session:
        for n in range(1, 11):
            incidents.add_note(session, number, Actor(USER), trace, now=BASE + timedelta(minutes=n))

    body = ask(slackbot, f"show {number}")

    assert "*Timeline* (last 10)" in texts(body["blocks"])
    assert message_text_length(body["blocks"]) <= MESSAGE_BLOCKS_TEXT_LIMIT


def test_show_links_to_the_card(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)

    body = ask(slackbot, f"show {number}")

    asked = slackbot.fake.calls_to("chat.getPermalink")
    assert [(p["channel"], p["message_ts"]) for p in asked] == [(CHANNEL, card_ts)]
    link = buttons(body["blocks"])["open_card"]
    assert link["text"]["text"] == "Open card"
    assert link["url"] == (
        f"{slackbot.fake.base_url}/archives/{CHANNEL}/p{card_ts.replace('.', '')}"
    )


def test_show_without_a_permalink_still_answers(slackbot: Bot) -> None:
    number, _ = with_card(slackbot)
    slackbot.fake.fail("chat.getPermalink", error="message_not_found")

    body = ask(slackbot, f"show {number}")

    assert texts(body["blocks"])[0] == "🟡 *INC-1* Checkout is failing"
    assert "open_card" not in buttons(body["blocks"])


# --- changes: status, severity, note, assign ---------------------------------------------------


def test_status_change(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)

    reply = ask(slackbot, f"status {number} investigating looking at the LB logs")

    assert reply["text"] == "INC-1 is now investigating."
    incident = load(slackbot, number)
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at is not None
    last = events(slackbot, number)[-1]
    assert (last.kind, last.actor, last.from_value, last.to_value, last.text) == (
        EventKind.STATUS_CHANGED,
        USER,
        "open",
        "investigating",
        "looking at the LB logs",
    )
    thread = wait_thread_reply(slackbot, card_ts)
    assert thread["channel"] == CHANNEL
    assert f"<@{USER}> changed the status: *open → investigating*" in thread["text"]
    assert "> looking at the LB logs" in thread["text"]
    updates = slackbot.fake.calls_to("chat.update")
    assert len(updates) == 1
    assert (updates[0]["channel"], updates[0]["ts"]) == (CHANNEL, card_ts)
    assert "[SEV3, investigating]" in updates[0]["text"]
    card = slackbot.fake.message(CHANNEL, card_ts)
    assert card is not None
    assert "🔍 Investigating" in "\n".join(texts(card["blocks"]))


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("status 1 mitigated", Status.MITIGATED),
        ("status INC-1 in progress", Status.INVESTIGATING),
        ("status #1 Resolved", Status.RESOLVED),
        ("status 1 fixed rolled back the deploy", Status.RESOLVED),
        ("status 1 closed", Status.CLOSED),
    ],
)
def test_status_words_and_skipping_steps(slackbot: Bot, text: str, status: Status) -> None:
    declare(slackbot)
    with slackbot.sessions.begin() as session:
        incidents.edit(session, 1, Actor(USER), {"resolution": "Rolled back the deploy"})

    reply = ask(slackbot, text)

    assert reply["text"] == f"INC-1 is now {status.value}."
    assert load(slackbot, 1).status == status


@pytest.mark.parametrize(
    ("text", "status", "title"),
    [
        ("status 1 resolved", Status.RESOLVED, "Resolve"),
        ("status 1 closed", Status.CLOSED, "Close"),
    ],
)
def test_resolving_without_a_resolution_opens_the_form_that_asks_for_it(
    slackbot: Bot, text: str, status: Status, title: str
) -> None:
    declare(slackbot)

    run(slackbot, text)

    modal = slackbot.fake.wait_for(lambda: slackbot.fake.top_view(USER))
    assert modal["callback_id"] == "incident_resolve"
    assert modal["title"]["text"] == f"{title} INC-1"
    assert load(slackbot, 1).status == Status.OPEN  # nothing changed until the form is sent
    status_code, _, body = slackbot.post(
        payloads.view_submission(modal, {"resolution": "Restarted the pods"}, fake=slackbot.fake)
    )
    assert (status_code, body) == (200, "")
    incident = load(slackbot, 1)
    assert (incident.status, incident.resolution) == (status, "Restarted the pods")


@pytest.mark.parametrize(
    ("severity", "broadcast"),
    [("SEV1", True), ("SEV2", True), ("SEV3", False), ("SEV4", False)],
)
def test_status_reply_broadcast_only_for_sev1_and_sev2(
    slackbot: Bot, severity: str, broadcast: bool
) -> None:
    number, card_ts = with_card(slackbot, severity=severity)

    run(slackbot, f"status {number} mitigated")

    thread = wait_thread_reply(slackbot, card_ts)
    assert bool(thread.get("reply_broadcast")) is broadcast
    assert (
        any(m.get("subtype") == "thread_broadcast" for m in slackbot.fake.messages(CHANNEL))
        is broadcast
    )


def test_severity_change_is_not_broadcast(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot, severity="SEV2")

    reply = ask(slackbot, f"sev {number} critical customers cannot pay")

    assert reply["text"] == "INC-1 is now SEV1."
    assert load(slackbot, number).severity == Severity.SEV1
    last = events(slackbot, number)[-1]
    assert (last.kind, last.from_value, last.to_value, last.text) == (
        EventKind.SEVERITY_CHANGED,
        "SEV2",
        "SEV1",
        "customers cannot pay",
    )
    thread = wait_thread_reply(slackbot, card_ts)
    assert f"<@{USER}> changed the severity: *SEV2 → SEV1*" in thread["text"]
    assert "> customers cannot pay" in thread["text"]
    assert not thread.get("reply_broadcast")
    update = slackbot.fake.calls_to("chat.update")[0]
    assert (update["channel"], update["ts"]) == (CHANNEL, card_ts)
    assert "INC-1 [SEV1, open]" in update["text"]


@pytest.mark.parametrize(("word", "severity"), [("sev4", "SEV4"), ("P1", "SEV1"), ("2", "SEV2")])
def test_severity_words(slackbot: Bot, word: str, severity: str) -> None:
    declare(slackbot)

    assert ask(slackbot, f"sev 1 {word}")["text"] == f"INC-1 is now {severity}."
    assert load(slackbot, 1).severity == Severity(severity)


def test_note(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)

    reply = ask(slackbot, f"note INC-{number} rolled back the deploy\nerrors dropping")

    assert reply["text"] == "Note added to INC-1."
    last = events(slackbot, number)[-1]
    assert (last.kind, last.actor, last.text) == (
        EventKind.NOTE,
        USER,
        "rolled back the deploy\nerrors dropping",
    )
    thread = wait_thread_reply(slackbot, card_ts)
    assert thread["text"] == (
        f"📝 <@{USER}> added a note:\n> rolled back the deploy\n> errors dropping"
    )
    update = slackbot.fake.calls_to("chat.update")[0]
    assert (update["channel"], update["ts"]) == (CHANNEL, card_ts)


@pytest.mark.parametrize(
    ("text", "before", "after", "reply", "line"),
    [
        (
            "assign 1 me",
            {},
            {"assignee": USER},
            f"INC-1 assignee: <@{USER}>.",
            f"set the assignee to <@{USER}>",
        ),
        (
            f"assign 1 <@{OTHER}|bob>",
            {},
            {"assignee": OTHER},
            f"INC-1 assignee: <@{OTHER}>.",
            f"set the assignee to <@{OTHER}>",
        ),
        (
            f"assign 1 owner <@{OTHER}|bob>",
            {"owner": USER},
            {"owner": OTHER, "assignee": None},
            f"INC-1 owner: <@{OTHER}>.",
            f"👤 <@{OTHER}> is now the incident lead, taking over from <@{USER}>",
        ),
        (
            f"assign 1 Assignee <@{OTHER}>",
            {"owner": USER},
            {"owner": USER, "assignee": OTHER},
            f"INC-1 assignee: <@{OTHER}>.",
            f"set the assignee to <@{OTHER}>",
        ),
        (
            "assign 1 owner me",
            {},
            {"owner": USER},
            f"INC-1 owner: <@{USER}>.",
            f"👤 <@{USER}> is now the incident lead",
        ),
        (
            "assign 1 nobody",
            {"assignee": OTHER},
            {"assignee": None},
            "INC-1 assignee: nobody.",
            f"unassigned the assignee (<@{OTHER}>)",
        ),
        (
            "assign 1 owner nobody",
            {"owner": OTHER, "assignee": OTHER},
            {"owner": None, "assignee": OTHER},
            "INC-1 owner: nobody.",
            f"👤 Nobody is the incident lead now (<@{OTHER}> was) (by <@{USER}>)",
        ),
    ],
)
def test_assign(
    slackbot: Bot,
    text: str,
    before: dict[str, str],
    after: dict[str, str | None],
    reply: str,
    line: str,
) -> None:
    number, card_ts = with_card(slackbot, **before)

    assert ask(slackbot, text)["text"] == reply

    incident = load(slackbot, number)
    for role, user in after.items():
        assert getattr(incident, role) == user
    last = events(slackbot, number)[-1]
    assert last.kind == EventKind.ASSIGNED
    thread = wait_thread_reply(slackbot, card_ts)
    # The owner is the lead: its lines say who leads now.
    assert (line if line.startswith("👤") else f"👤 <@{USER}> {line}") in thread["text"]
    update = slackbot.fake.calls_to("chat.update")[0]
    assert (update["channel"], update["ts"]) == (CHANNEL, card_ts)


# --- edit and delete ---------------------------------------------------------------------------


def test_edit_opens_the_edit_modal(slackbot: Bot) -> None:
    number = declare(
        slackbot, "Checkout is failing", service="checkout", description="EU only", category="data"
    )
    before = snapshot(slackbot)

    run(slackbot, f"edit INC-{number}")

    slackbot.fake.wait_for_call("views.open")
    view = slackbot.fake.top_view()
    assert view is not None
    assert view["callback_id"] == ids.EDIT_VIEW
    assert view["title"]["text"] == "Edit INC-1"
    assert input_value(view, ids.TITLE_BLOCK) == "Checkout is failing"
    assert input_value(view, ids.SERVICE_BLOCK) == "checkout"
    assert input_value(view, ids.DESCRIPTION_BLOCK) == "EU only"
    category = next(b for b in view["blocks"] if b.get("block_id") == ids.CATEGORY_BLOCK)
    assert category["element"]["initial_option"]["value"] == "data"
    assert json.loads(view["private_metadata"])["id"] == number
    assert snapshot(slackbot) == before
    assert slackbot.responses() == []


def test_delete_is_refused_to_non_admins(slackbot: Bot) -> None:
    number, _ = with_card(slackbot)
    before = snapshot(slackbot)

    reply = ask(slackbot, f"delete {number}")

    assert reply["text"] == "Only an incident admin can delete INC-1."
    assert "blocks" not in reply
    settle(slackbot)
    assert snapshot(slackbot) == before
    assert slack_writes(slackbot) == []


def test_delete_asks_an_admin_then_deletes(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot, "Checkout is failing")

    confirm = ask(slackbot, f"delete {number}", user=ADMIN_ID)

    assert (
        "Delete *INC-1* Checkout is failing with its whole timeline?" in texts(confirm["blocks"])[0]
    )
    button = buttons(confirm["blocks"])[ids.DELETE_INCIDENT_ACTION]
    assert button["style"] == "danger"
    assert "confirm" in button
    # Asking changes nothing.
    assert load(slackbot, number).title == "Checkout is failing"
    assert slack_writes(slackbot) == []

    pressed = click(slackbot, confirm, ids.DELETE_INCIDENT_ACTION, user=ADMIN_ID)

    reply = answer(slackbot, pressed["response_url"])
    assert reply["text"] == "Deleted INC-1 (Checkout is failing)."
    assert reply["replace_original"] is True
    deleted = slackbot.fake.wait_for_call("chat.delete")
    assert deleted == [{"channel": CHANNEL, "ts": card_ts}]
    assert slackbot.fake.message(CHANNEL, card_ts) is None
    with slackbot.sessions() as session:
        assert session.get(Incident, number) is None
        assert session.scalar(select(func.count()).select_from(IncidentEvent)) == 0


def test_delete_button_pressed_by_a_non_admin_is_refused(slackbot: Bot) -> None:
    number, _ = with_card(slackbot)
    confirm = ask(slackbot, f"delete {number}", user=ADMIN_ID)
    before = snapshot(slackbot)

    pressed = click(slackbot, confirm, ids.DELETE_INCIDENT_ACTION, user=USER)

    assert answer(slackbot, pressed["response_url"])["text"] == (
        "Only an incident admin can delete INC-1."
    )
    assert snapshot(slackbot) == before
    assert slack_writes(slackbot) == []


# --- refusals: a clear message, nothing changed, nothing posted --------------------------------

NOT_AN_ID = "'{}' is not an incident id. Use INC-12, #12 or 12."
WHO = "Who? Usage: `/incident assign <id> [owner|assignee] @someone` (or `me`, `nobody`)."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("show abc", NOT_AN_ID.format("abc")),
        ("status INC-x resolved", NOT_AN_ID.format("INC-x")),
        ("note 0 hello", NOT_AN_ID.format("0")),
        ("assign 1.5 me", NOT_AN_ID.format("1.5")),
        ("status 1 bogus", f"Unknown status 'bogus'. Use one of: {STATUSES}."),
        ("status 1 bogus with a note", f"Unknown status 'bogus'. Use one of: {STATUSES}."),
        ("status 1", f"Which status? Usage: `/incident status <id> <status> [note]` ({STATUSES})."),
        (
            "sev 1 sev9",
            "Unknown severity 'sev9'. Use one of: SEV1 (critical), SEV2 (high), SEV3 (medium), "
            "SEV4 (low).",
        ),
        ("sev 1", "Which severity? Usage: `/incident sev <id> <sev1..sev4> [note]`."),
        ("note 1", "The note is empty. Usage: `/incident note <id> <text>`."),
        ("note 1    ", "The note is empty. Usage: `/incident note <id> <text>`."),
        ("assign 1", WHO),
        ("assign 1 owner", WHO),
        ("assign 1 bob", WHO),
        ("assign 1 @bob", WHO),
        *[
            (name, f"Which incident? Usage: `/incident {name} <id> ...` (e.g. INC-12).")
            for name in ("show", "status", "sev", "note", "assign", "edit", "delete")
        ],
    ],
)
def test_malformed_commands_are_answered_in_the_ack(slackbot: Bot, text: str, message: str) -> None:
    with_card(slackbot, owner=USER)
    before = snapshot(slackbot)

    # Sent escaped: Slack shows `<id>` literally instead of reading it as a link.
    url = run(slackbot, text, expect=escape(message))

    settle(slackbot)
    assert slackbot.fake.responses(url) == []
    assert snapshot(slackbot) == before
    assert slack_writes(slackbot) == []


NOTE_TOO_LONG = "Note is too long: 3,001 characters, the limit is 3,000."


@pytest.mark.parametrize(
    ("status", "text", "message", "user"),
    [
        (None, "show 99", "There is no incident INC-99.", USER),
        (None, "status 99 resolved", "There is no incident INC-99.", USER),
        (None, "sev INC-99 sev1", "There is no incident INC-99.", USER),
        (None, "note #99 hello", "There is no incident INC-99.", USER),
        (None, "assign 99 me", "There is no incident INC-99.", USER),
        (None, "edit 99", "There is no incident INC-99.", USER),
        (None, "delete 99", "There is no incident INC-99.", ADMIN_ID),
        (None, "status 1 open", "INC-1 is already open.", USER),
        (None, "sev 1 medium", "INC-1 is already SEV3.", USER),
        (None, "assign 1 owner me", f"Nothing changed: the owner is already {USER}.", USER),
        (
            Status.RESOLVED,
            "status 1 mitigated",
            "INC-1 can't go from resolved to mitigated. Allowed next: investigating, closed.",
            USER,
        ),
        (
            Status.INVESTIGATING,
            "status 1 open",
            "INC-1 can't go from investigating to open. Allowed next: mitigated, resolved, closed.",
            USER,
        ),
        (Status.CLOSED, "status 1 resolved", "INC-1 is closed, which is final.", USER),
        (
            Status.CLOSED,
            "status 1 reopen",
            "INC-1 is closed; only an incident admin can reopen it.",
            USER,
        ),
        (
            Status.CLOSED,
            "sev 1 sev1",
            "INC-1 is closed; only an incident admin can change it.",
            USER,
        ),
        (None, "delete 1", "Only an incident admin can delete INC-1.", USER),
        (None, "note 1 " + "x" * 3_001, NOTE_TOO_LONG, USER),
        (None, "status 1 investigating " + "x" * 3_001, NOTE_TOO_LONG, USER),
        (None, "sev 1 sev2 " + "x" * 3_001, NOTE_TOO_LONG, USER),
    ],
)
def test_refusals_change_nothing(
    slackbot: Bot, status: Status | None, text: str, message: str, user: str
) -> None:
    with_card(slackbot, owner=USER, status=status)
    before = snapshot(slackbot)

    reply = ask(slackbot, text, user=user)

    assert reply["text"] == message
    assert snapshot(slackbot) == before
    assert slack_writes(slackbot) == []


def test_admin_may_reopen_a_closed_incident(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot, status=Status.CLOSED)

    reply = ask(slackbot, f"status {number} reopen", user=ADMIN_ID)

    assert reply["text"] == "INC-1 is now investigating."
    incident = load(slackbot, number)
    assert (incident.status, incident.closed_at, incident.resolved_at) == (
        Status.INVESTIGATING,
        None,
        None,
    )
    assert "*closed → investigating*" in wait_thread_reply(slackbot, card_ts)["text"]


def test_note_of_exactly_3000_characters_is_accepted(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)

    assert ask(slackbot, f"note {number} " + "y" * 3_000)["text"] == "Note added to INC-1."

    assert events(slackbot, number)[-1].text == "y" * 3_000
    wait_thread_reply(slackbot, card_ts)


# --- escaping ----------------------------------------------------------------------------------

LIVE_MENTION = re.compile(r"<!channel>|<!here>|<!everyone>|<@U0OTHER>")


def live_mentions(value: Any, path: str = "") -> list[str]:
    """Strings that Slack would parse as mrkdwn and that hold a mention (plain_text is inert)."""
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return []
        return [hit for k, v in value.items() for hit in live_mentions(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in live_mentions(v, f"{path}[{i}]")]
    if isinstance(value, str) and LIVE_MENTION.search(value):
        return [f"{path}: {value[:200]!r}"]
    return []


def test_user_text_never_mentions_anyone(slackbot: Bot) -> None:
    number, card_ts = with_card(
        slackbot, "<!channel> db down", severity="SEV1", service="<!here>", owner=USER
    )
    # The card was posted before the call log was cleared: check it too.
    card = slackbot.fake.message(CHANNEL, card_ts)
    assert card is not None
    assert live_mentions(card, "card") == []
    assert "&lt;!channel&gt; db down" in card["text"]

    ask(slackbot, f"note {number} <@U0OTHER> <!here>")
    ask(slackbot, f"status {number} investigating <!everyone> please look")
    ask(slackbot, f"sev {number} sev2 <@U0OTHER|other> said so")
    ask(slackbot, f"assign {number} me")
    wait_thread_reply(slackbot, card_ts, count=4)
    for text in ("show 1", "list", "list all db", "list <!channel>"):
        ask(slackbot, text)
    ask(slackbot, f"delete {number}", user=ADMIN_ID)

    assert events(slackbot, number)[1].text == "<@U0OTHER> <!here>"
    sent = [
        (method, params)
        for method, params in slackbot.fake.calls
        if method.startswith("chat.") or method == "response_url"
    ]
    # The four changes are confirmed in their acks, which are messages too.
    sent += [("ack", {"text": body}) for body in ACKS.values() if body]
    assert len(sent) >= 15
    assert "&lt;@U0OTHER&gt; &lt;!here&gt;" in json.dumps(thread_replies(slackbot, card_ts))
    problems = [hit for method, params in sent for hit in live_mentions(params, method)]
    assert problems == []


def test_command_text_is_unescaped_once(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)
    # What the person typed, entity text included; Slack escapes it once on the way in.
    typed = "R&D <3 > ops, see &lt;b&gt;"
    assert payloads.escape(typed) == "R&amp;D &lt;3 &gt; ops, see &amp;lt;b&amp;gt;"

    ask(slackbot, f"note {number} {payloads.escape(typed)}")

    assert events(slackbot, number)[-1].text == typed
    thread = wait_thread_reply(slackbot, card_ts)
    assert "> R&amp;D &lt;3 &gt; ops, see &amp;lt;b&amp;gt;" in thread["text"]
    shown = "\n".join(texts(ask(slackbot, f"show {number}")["blocks"]))
    assert "> R&amp;D &lt;3 &gt; ops, see &amp;lt;b&amp;gt;" in shown
    for rendered in (thread["text"], shown):
        assert "&amp;amp;" not in rendered
        assert "R&D" not in rendered


# A pasted HTML error page: nearly half of it is characters that escaping lengthens.
HTML_PAGE = "<tr><td>&nbsp;</td></tr>" * 80


def test_show_an_incident_whose_description_is_markup(slackbot: Bot) -> None:
    number = declare(slackbot, description=HTML_PAGE)

    body = ask(slackbot, f"show {number}")

    shown = texts(body["blocks"])
    assert shown[0] == "🟡 *INC-1* Checkout is failing"
    assert any(text.startswith("&lt;tr&gt;&lt;td&gt;&amp;nbsp;") for text in shown)
    assert all(len(text) <= 3_000 for text in shown)


def test_card_of_an_incident_whose_description_is_markup(slackbot: Bot) -> None:
    number = declare(slackbot, card=True, description=HTML_PAGE)

    assert ask(slackbot, f"status {number} investigating")["text"] == (
        "INC-1 is now investigating."
    )

    slackbot.fake.wait_for(lambda: slackbot.fake.messages(CHANNEL) or warnings(slackbot))
    assert warnings(slackbot) == []
    card = slackbot.fake.messages(CHANNEL)[0]
    assert "&lt;tr&gt;&lt;td&gt;&amp;nbsp;" in "\n".join(texts(card["blocks"]))
    assert "*open → investigating*" in wait_thread_reply(slackbot, card["ts"])["text"]


def test_note_text_may_start_on_the_next_line(slackbot: Bot) -> None:
    """`/incident note 12`, Shift+Enter, then the note: whitespace, not only a space, separates."""
    number = declare(slackbot)

    reply = ask(slackbot, f"note {number}\nrolled back the deploy")

    assert reply["text"] == "Note added to INC-1."
    assert events(slackbot, number)[-1].text == "rolled back the deploy"


# --- the 3-second rule -------------------------------------------------------------------------


def test_a_locked_incident_is_answered_busy_within_the_ack_deadline(slackbot: Bot) -> None:
    """Someone else's change holds the incident's row past the ack path's lock timeout: the
    ack says so, in time, and nothing changed; once the row is free the same command works."""
    number, card_ts = with_card(slackbot)

    with slackbot.sessions.begin() as session:
        session.execute(select(Incident).where(Incident.id == number).with_for_update()).one()
        started = time.monotonic()
        url = run(slackbot, f"status {number} investigating")
        waited = time.monotonic() - started

    assert answer(slackbot, url)["text"] == (
        "That incident is busy (someone else is changing it right now), so nothing was "
        "changed. Please try again in a moment."
    )
    assert 0.9 < waited < 2.0  # the 1 s lock timeout, well inside Slack's 3 s
    assert load(slackbot, number).status == Status.OPEN
    url = run(slackbot, f"status {number} investigating")
    assert answer(slackbot, url)["text"] == "INC-1 is now investigating."
    wait_thread_reply(slackbot, card_ts)


def test_ack_comes_before_slow_slack_work(slackbot: Bot) -> None:
    """Slack itself is slow (each call takes 1 s): every command is still acked at once."""
    number, card_ts = with_card(slackbot, severity="SEV1")
    slackbot.fake.delay(["chat.update", "chat.postMessage", "views.open"], 1.0)

    started = time.monotonic()
    run(slackbot, f"status {number} investigating")
    run(slackbot, "Another incident")
    assert time.monotonic() - started < 1.0

    wait_thread_reply(slackbot, card_ts)
    slackbot.fake.wait_for_call("views.open")


def test_error_messages_echoing_user_text_mention_nobody(slackbot: Bot) -> None:
    """A refusal quotes what was typed; what was typed must not ping anyone in it."""
    with slackbot.sessions.begin() as session:
        incident_id = incidents.declare(
            session, IncidentDraft(title="Checkout", severity="SEV3"), Actor(defaults.USER_ID)
        ).id
    for text, mention in (
        ("status <!channel> resolved", "!channel"),
        (f"sev {incident_id} <!here>", "!here"),
        (f"status {incident_id} <@U0OTHER>", "@U0OTHER"),
    ):
        status, _, body = slackbot.command(text)
        assert status == 200
        assert f"<{mention}>" not in body
        assert f"&lt;{mention}&gt;" in body
