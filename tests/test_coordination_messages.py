"""What the bot sends for running an incident, through the real outbox and the fake Slack: the
card (lead, roles, latest update, next update due or overdue), the channel's topic and welcome
message, the structured update's layout, the lead reminder, and the DMs (a role's duties, a
subscriber's copy of a change, a nudge) worded when they are sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete as sql_delete

from bot import incidents
from bot.delivery import TAG_EVENT_TYPE, Deliverer
from bot.incidents import Actor, IncidentDraft, progress, recording, roles
from bot.incidents.progress import UpdateDraft
from bot.incidents.roles import RoleRules
from bot.incidents.subscribers import subscribe
from bot.slack import blocks, ids
from db.models import DeliveryAction, EventKind, Incident, IncidentEvent, Severity, Status
from tests.fakeslack import FakeSlack, validate_message_blocks
from tests.test_delivery import CHANNEL, Sessions, deliveries, now
from tests.test_incident_channels import RULES

ALICE = Actor("U0ALICE0001")
BOB = "U0BOB000001"
CAROL = "U0CAROL0001"
OLGA = "U0OWNER0001"
RULE_SET = RoleRules()
GRACE = timedelta(seconds=5)


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    for person in (ALICE.user_id, BOB, CAROL, "U0LEAD0001", "U0ONCALL001"):
        fake_slack.add_user(person)
    fake_slack.add_user(OLGA, name="olga", display_name="Olga (IC)")
    fake_slack.add_usergroup("S0ONCALL", ["U0ONCALL001", "U0LEAD0001"])
    return fake_slack


def declare(sessions: Sessions, severity: str = "SEV1", **fields: Any) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout is failing", severity=severity, slack_channel_id=CHANNEL, **fields
        )
        return incidents.declare(session, draft, ALICE, channels=RULES).id


def load(sessions: Sessions, incident_id: int) -> Incident:
    with sessions() as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def give(sessions: Sessions, incident_id: int, role: str, user: str | None, **kw: Any) -> None:
    with sessions.begin() as session:
        roles.assign_role(session, incident_id, role, user, ALICE, rules=RULE_SET, **kw)


def update(sessions: Sessions, incident_id: int, **fields: Any) -> None:
    with sessions.begin() as session:
        progress.post_update(session, incident_id, UpdateDraft(**fields), ALICE)


def texts(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, in order, one string."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(out)


def action_ids(message: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found.append(element["action_id"])
        accessory = block.get("accessory") or {}
        if accessory.get("type") == "button":
            found.append(accessory["action_id"])
    return found


def card(fake: FakeSlack, sessions: Sessions, incident_id: int) -> dict[str, Any]:
    found = fake.message(CHANNEL, load(sessions, incident_id).card_ts or "")
    assert found is not None
    assert validate_message_blocks(found["blocks"]) == []
    return found


def dms(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    return fake.messages(fake.dm_channel(user))


# --- The card -----------------------------------------------------------------------------------


def test_the_card_shows_the_lead_the_roles_the_latest_update_and_when_the_next_is_due(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, "SEV2")
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    before = card(fake, sessions, incident_id)
    assert "*Lead*\nnobody" in texts(before)
    assert ids.TAKE_LEAD_ACTION in action_ids(before), "I'll lead while there is no lead"
    assert {ids.UPDATE_ACTION, ids.SUBSCRIBE_ACTION, ids.ADD_NOTE_ACTION} <= set(action_ids(before))

    give(sessions, incident_id, "lead", OLGA)
    give(sessions, incident_id, "comms", BOB)
    update(
        sessions,
        incident_id,
        summary="Payments <time out> for EU",
        impact="EU customers can't pay",
        next_update_in=timedelta(minutes=15),
    )
    t0 = now()
    deliverer.drain(now=t0)

    shown = card(fake, sessions, incident_id)
    text = texts(shown)
    assert f"*Lead*\n<@{OLGA}>" in text and "*Owner*" not in text
    assert f"*Communications lead* <@{BOB}>" in text and "*Scribe* nobody" in text
    assert "*Latest update*" in text and "Payments &lt;time out&gt; for EU" in text
    assert "EU customers can't pay" in text
    assert "Next update due <!date^" in text and "overdue" not in text
    assert ids.TAKE_LEAD_ACTION not in action_ids(shown), "no I'll lead once someone leads"


def test_the_card_shows_an_overdue_update_and_the_nudge_is_not_posted_in_the_thread(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, "SEV2", owner=OLGA)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    update(sessions, incident_id, summary="Looking", next_update_in=timedelta(minutes=15))
    deliverer.drain()
    card_ts = load(sessions, incident_id).card_ts or ""
    replies_before = len(fake.thread(CHANNEL, card_ts))
    later = now() + timedelta(minutes=16)

    with sessions.begin() as session:
        assert progress.nudge_overdue(session, incident_id, now=later) is not None
    assert deliverer.drain(now=later).problems == []

    text = texts(card(fake, sessions, incident_id))
    assert ":warning: *Update overdue* since <!date^" in text
    assert len(fake.thread(CHANNEL, card_ts)) == replies_before, "the card shows it, no reply"
    [nudge] = dms(fake, OLGA)
    assert "The next update on INC-" in nudge["text"] and "was promised for" in nudge["text"]
    assert action_ids(nudge) == [ids.UPDATE_ACTION]
    assert validate_message_blocks(nudge["blocks"]) == []


def test_a_nudge_whose_update_came_before_it_was_sent_is_not_sent(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, "SEV2", owner=OLGA)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    update(sessions, incident_id, summary="Looking", next_update_in=timedelta(minutes=15))
    deliverer.drain()
    later = now() + timedelta(minutes=16)
    with sessions.begin() as session:
        progress.nudge_overdue(session, incident_id, now=later)
    update(sessions, incident_id, summary="Found it")  # before the outbox sent the nudge

    assert deliverer.drain(now=later).problems == []

    assert dms(fake, OLGA) == []
    [nudge] = [
        r
        for r in deliveries(sessions, incident_id)
        if r.action == DeliveryAction.TELL_USER and r.payload.get("about") == "nudge"
    ]
    assert nudge.last_error == "skipped: the update came" and nudge.delivered_at is not None


# --- The incident channel: topic, welcome -------------------------------------------------------


def test_the_welcome_is_the_channels_first_message_pinned_and_edited_as_roles_are_taken(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    assert deliverer.drain().problems == []
    opened = load(sessions, incident_id)
    room = opened.own_channel_id or ""

    first = fake.messages(room)[0]
    assert first["ts"] == opened.own_channel_welcome_ts
    assert first["metadata"]["event_type"] == TAG_EVENT_TYPE
    assert fake.pinned(room) == [opened.own_channel_welcome_ts, opened.own_channel_summary_ts]
    assert validate_message_blocks(first["blocks"]) == []
    said = texts(first)
    assert "Checkout is failing" in said and "SEV1" in said and "Open" in said
    assert "/incident update" in said and "/incident role comms me" in said
    assert "/incident subscribe" in said
    assert f"{fake.base_url}/archives/{CHANNEL}/p" in said, "the card's permalink"
    taking = action_ids(first)
    assert ids.TAKE_LEAD_ACTION in taking
    assert {f"{ids.TAKE_ROLE_ACTION}:comms", f"{ids.TAKE_ROLE_ACTION}:scribe"} <= set(taking)
    assert all(ids.TAKE_ROLE_ACTION_PATTERN.match(a) for a in taking if "take_role" in a)
    assert fake.topic(room) == "SEV1 · open · no lead"

    give(sessions, incident_id, "comms", BOB)
    give(sessions, incident_id, "lead", OLGA)
    assert deliverer.drain().problems == []

    edited = fake.message(room, opened.own_channel_welcome_ts or "")
    assert edited is not None and validate_message_blocks(edited["blocks"]) == []
    taking = action_ids(edited)
    assert f"{ids.TAKE_ROLE_ACTION}:comms" not in taking and ids.TAKE_LEAD_ACTION not in taking
    assert f"{ids.TAKE_ROLE_ACTION}:scribe" in taking, "the role still empty keeps its button"
    assert f"<@{BOB}>" in texts(edited) and f"<@{OLGA}>" in texts(edited)
    assert f"{fake.base_url}/archives/{CHANNEL}/p" in texts(edited), "the permalink stays"
    assert fake.topic(room) == "SEV1 · open · lead @Olga (IC)"
    assert fake.messages(room)[0]["ts"] == opened.own_channel_welcome_ts


def test_the_welcome_links_the_web_page_and_post_mortem_only_with_a_public_url(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    public = "https://incidents.example.com"
    Deliverer(sessions, fake.client(), public_url=public).drain()
    room = load(sessions, incident_id).own_channel_id or ""

    said = texts(fake.messages(room)[0])
    assert f"<{public}/incidents/{incident_id}|Web page>" in said
    assert f"<{public}/incidents/{incident_id}/postmortem|Post-mortem draft>" in said


def test_the_welcome_keeps_the_cards_channel_when_slack_gives_no_permalink(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    fake.fail("chat.getPermalink", error="message_not_found", times=None)
    assert Deliverer(sessions, fake.client(retry_handlers=[])).drain().problems == []
    room = load(sessions, incident_id).own_channel_id or ""

    said = texts(fake.messages(room)[0])
    assert f"The card in <#{CHANNEL}>" in said and "Web page" not in said


# --- Replies: the update, roles, the lead reminder ----------------------------------------------


def test_an_update_that_moves_the_status_is_one_clear_message_in_the_thread_and_the_channel(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    opened = load(sessions, incident_id)
    room, card_ts = opened.own_channel_id or "", opened.card_ts or ""
    in_thread, in_room = len(fake.thread(CHANNEL, card_ts)), len(fake.messages(room))

    update(
        sessions,
        incident_id,
        summary="Rolled back the deploy",
        impact="Checkout errors for 5% of EU customers",
        status="mitigated",
        next_update_in=timedelta(minutes=30),
    )
    assert deliverer.drain().problems == []

    [reply] = fake.thread(CHANNEL, card_ts)[in_thread:]
    [posted] = fake.messages(room)[in_room:]
    for message in (reply, posted):
        assert validate_message_blocks(message["blocks"]) == []
        said = texts(message)
        assert "📣 *Update* from <@U0ALICE0001>" in said
        assert "*Status:* 🆕 Open → *🩹 Mitigated*" in said
        assert "*What we know*\n> Rolled back the deploy" in said
        assert "*Customer impact*\n> Checkout errors for 5% of EU customers" in said
        assert "*Next update:* by <!date^" in said
        assert "Rolled back the deploy" in message["text"]
    assert reply.get("subtype") == "thread_broadcast", "a SEV1's status move is broadcast"


def test_an_update_without_a_promise_says_no_further_updates_are_promised(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, "SEV3")
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    card_ts = load(sessions, incident_id).card_ts or ""

    update(sessions, incident_id, summary="Quiet now")
    deliverer.drain()

    [reply] = fake.thread(CHANNEL, card_ts)
    said = texts(reply)
    assert "no further updates promised" in said and "(unchanged)" in said
    assert "No further updates promised" in texts(card(fake, sessions, incident_id))


def test_roles_and_a_lead_handoff_are_said_in_the_thread_and_the_channel(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    opened = load(sessions, incident_id)
    room, card_ts = opened.own_channel_id or "", opened.card_ts or ""

    give(sessions, incident_id, "comms", BOB)
    give(sessions, incident_id, "lead", CAROL, handoff="DB failover done; watch the queue")
    give(sessions, incident_id, "comms", None)
    assert deliverer.drain().problems == []

    thread = [m["text"] for m in fake.thread(CHANNEL, card_ts)]
    channel = [m["text"] for m in fake.messages(room)]
    for said in (thread, channel):
        joined = "\n".join(said)
        assert f"🎭 <@{BOB}> is now Communications lead (by <@U0ALICE0001>)" in joined
        assert (
            f"👤 <@{CAROL}> is now the incident lead, taking over from <@{OLGA}> "
            "(by <@U0ALICE0001>)"
        ) in joined
        assert f"*Handoff from <@{OLGA}>:*\n> DB failover done; watch the queue" in joined
        assert f"🎭 Nobody is Communications lead now (<@{BOB}> was)" in joined


def test_a_lead_reminder_has_the_ill_lead_button_in_the_thread_and_the_channel(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    opened = load(sessions, incident_id)
    room, card_ts = opened.own_channel_id or "", opened.card_ts or ""
    in_room = len(fake.messages(room))
    with sessions.begin() as session:
        locked = recording.lock_incident(session, incident_id)
        at = (locked.leaderless_since or now()) + timedelta(minutes=5)
        roles.remind_lead(session, locked, now=at)

    assert deliverer.drain(now=at).problems == []

    [reply] = fake.thread(CHANNEL, card_ts)
    [posted] = fake.messages(room)[in_room:]
    for message in (reply, posted):
        assert validate_message_blocks(message["blocks"]) == []
        assert f"SEV1 INC-{incident_id} has had no lead for 5 minutes" in message["text"]
        assert action_ids(message) == [ids.TAKE_LEAD_ACTION]


# --- DMs ----------------------------------------------------------------------------------------


def test_whoever_takes_a_role_is_sent_its_duties_and_the_links(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    deliverer = Deliverer(
        sessions, fake.client(), role_rules=RULE_SET, public_url="https://inc.example.com"
    )
    deliverer.drain()
    room = load(sessions, incident_id).own_channel_id

    give(sessions, incident_id, "comms", BOB)
    give(sessions, incident_id, "lead", CAROL, handoff="Failover done")
    assert deliverer.drain().problems == []

    [to_bob] = dms(fake, BOB)
    said = texts(to_bob)
    assert to_bob["text"].startswith(f"You are now Communications lead of INC-{incident_id}")
    assert "*Your duties*\nposts the updates" in said
    assert f"Channel: <#{room}>" in said and f"Card: in <#{CHANNEL}>" in said
    assert f"<https://inc.example.com/incidents/{incident_id}|Web page>" in said
    assert validate_message_blocks(to_bob["blocks"]) == []
    [to_carol] = dms(fake, CAROL)
    said = texts(to_carol)
    assert "You are now *Incident lead*" in said and "Runs the incident" in said
    assert f"*Handoff from <@{OLGA}>*\n> Failover done" in said


def test_a_subscriber_gets_one_dm_per_change_with_an_unsubscribe_button(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    with sessions.begin() as session:
        assert subscribe(session, incident_id, CAROL)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()

    update(sessions, incident_id, summary="Rolled back", status="mitigated")
    with sessions.begin() as session:
        incidents.change_status(session, incident_id, "resolved", ALICE, resolution="Rolled back")
    assert deliverer.drain().problems == []

    first, second = dms(fake, CAROL)
    assert "has an update" in first["text"]
    assert "*What we know*\n> Rolled back" in texts(first)
    assert "is resolved" in second["text"] and "mitigated → resolved" in texts(second)
    for message in (first, second):
        assert action_ids(message) == [ids.UNSUBSCRIBE_ACTION]
        assert validate_message_blocks(message["blocks"]) == []


def test_a_dm_whose_events_are_gone_is_skipped_cleanly(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    deliverer = Deliverer(sessions, fake.client(), role_rules=RULE_SET)
    deliverer.drain()
    give(sessions, incident_id, "comms", BOB)
    with sessions.begin() as session:
        session.execute(
            sql_delete(IncidentEvent).where(
                IncidentEvent.incident_id == incident_id,
                IncidentEvent.kind == EventKind.ROLE_ASSIGNED,
            )
        )

    result = deliverer.drain()

    assert result.problems == []
    assert dms(fake, BOB) == []
    [told] = [r for r in deliveries(sessions, incident_id) if r.action == DeliveryAction.TELL_USER]
    assert told.last_error == "skipped: its events are gone" and told.delivered_at is not None


def test_a_role_dm_whose_answer_is_lost_is_looked_up_in_the_dm_not_sent_twice(
    fake: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions, owner=OLGA)
    Deliverer(sessions, fake.client(), role_rules=RULE_SET).drain()
    give(sessions, incident_id, "comms", BOB)
    [told] = [r for r in deliveries(sessions, incident_id) if r.action == DeliveryAction.TELL_USER]
    deliverer = Deliverer(sessions, fake.client(timeout=0.5), role_rules=RULE_SET)
    fake.answer_late("chat.postMessage", 2.0)
    t0 = now()

    first = deliverer.drain(delivery_id=told.id, now=t0)
    assert (first.delivered, first.problems) == (0, [])
    later = deliverer.drain(delivery_id=told.id, now=t0 + GRACE + timedelta(seconds=1))

    dm = fake.dm_channel(BOB)
    assert (later.delivered, later.found) == (1, 1)
    [posted] = fake.messages(dm)
    assert "Communications lead" in posted["text"]
    assert [c["channel"] for c in fake.calls_to("conversations.history")] == [dm]


def test_the_fake_wants_im_history_to_read_a_dm(fake: FakeSlack):
    client = fake.client()
    dm = client.conversations_open(users=BOB)["channel"]["id"]
    assert client.conversations_history(channel=dm)["ok"]
    fake.scopes.discard("im:history")
    with pytest.raises(Exception, match="missing_scope"):
        client.conversations_history(channel=dm)


# --- Rendering alone ----------------------------------------------------------------------------


def test_the_topic_says_who_leads():
    lead = Incident(id=1, title="x", severity=Severity.SEV1, status=Status.OPEN)
    assert blocks.channel_topic(lead) == "SEV1 · open · no lead"
    lead.owner = OLGA
    assert blocks.channel_topic(lead) == f"SEV1 · open · lead <@{OLGA}>"


def test_the_worst_case_card_welcome_and_dms_stay_within_slacks_limits():
    at = now()
    worst = "<!channel> & " + "<" * 2_990
    incident = Incident(
        id=2_147_483_647,
        title=worst[:255],
        description=worst,
        service="&" * 120,
        severity=Severity.SEV1,
        status=Status.INVESTIGATING,
        reporter=ALICE.user_id,
        created_at=at,
        updated_at=at,
        slack_channel_id=CHANNEL,
        own_channel_id="C0ROOM0001",
        next_update_at=at - timedelta(minutes=1),
        cause=worst[:1_000],
        resolution=worst[:1_000],
    )
    many = RoleRules(roles=tuple(roles.Role(f"r{n}", "&" * 80, "<" * 500) for n in range(40)))
    held = [(role, None) for role in many.all]
    update_event = IncidentEvent(
        id=1,
        incident_id=incident.id,
        kind=EventKind.STATUS_UPDATE,
        actor=ALICE.user_id,
        occurred_at=at,
        text=worst,
        field="status",
        from_value="open",
        to_value="investigating",
        details={
            "impact": worst[:1_000],
            "next_update_at": at.isoformat(),
            "cause": worst[:1_000],
            "resolution": worst[:1_000],
        },
    )
    handoff = IncidentEvent(
        id=2,
        incident_id=incident.id,
        kind=EventKind.ASSIGNED,
        actor=ALICE.user_id,
        occurred_at=at,
        field="owner",
        from_value=BOB,
        to_value=CAROL,
        details={"role": "lead", "handoff": "<" * 500},
    )
    rendered = {
        "card": blocks.card(incident, roles=held, latest=update_event, now=at),
        "welcome": blocks.welcome(incident, held, public_url="https://x.example.com")[1],
        "thread": blocks.thread_blocks(incident, [update_event, handoff], many) or [],
        "role dm": blocks.role_dm(incident, handoff, many, "https://x.example.com")[1],
        "subscriber dm": (blocks.subscriber_dm(incident, [update_event], None) or ("", []))[1],
        "nudge dm": blocks.nudge_dm(incident, at)[1],
    }
    for name, shown in rendered.items():
        as_sent = [b.to_dict() for b in shown]
        assert as_sent, name
        assert validate_message_blocks(as_sent) == [], name
    for name, shown in rendered.items():  # a header is plain text: nobody is pinged there
        said = texts({"blocks": [b.to_dict() for b in shown if b.type != "header"]})
        assert "<!channel>" not in said, name
    shown_card = {"blocks": [b.to_dict() for b in rendered["card"]]}
    assert ":warning: *Update overdue*" in texts(shown_card)
