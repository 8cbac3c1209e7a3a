"""Running an incident with the real process (`python -m bot run`), its settings in the
environment and `.env` as a user starts it: a SEV1 without a lead is reminded, the lead is taken
by button, a role by command and another through the API, each DMed its duties; the channel's
topic names the lead and its welcome message loses its "take" buttons; an update that moves the
status is posted once in the thread, once in the channel and once to each subscriber; the promised
next update, missed, nudges the lead and the comms role."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import tokens
from tests.fakeslack import FakeSlack, defaults, payloads, post_payload
from tests.test_run import OutputReader, bot_process, free_port, wait_until_healthy

ALICE = defaults.USER_ID  # declares; the reporter, so subscribed
BOB = "U0BOB00001"  # takes the lead by button
CAROL = "U0CAROL001"  # takes comms by command
DAVE = "U0DAVE0001"  # subscribes from the card
ERIN = "U0ERIN0001"  # made scribe through the API
ROLES = (
    "comms=Communications lead: posts the updates;scribe=Scribe: keeps the timeline;"
    "ops=Operations: runs the fixes"
)


def _text(message: dict[str, Any]) -> str:
    return message.get("text", "") + json.dumps(message.get("blocks") or [])


def _api(base_url: str, method: str, path: str, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None


def test_an_incident_is_run_with_roles_updates_and_subscribers(
    tmp_path: Path, database_url: str, committing_sessions: sessionmaker[Session]
):
    with committing_sessions.begin() as session:
        token, _ = tokens.create_token(session, "coordination-run")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # The roles come from .env, the rest from the environment: both are read.
    (tmp_path / ".env").write_text(f"INCIDENT_ROLES={ROLES}\nLEAD_REMINDER_AFTER=2s\n")
    with FakeSlack() as fake:
        for user_id, name in ((BOB, "bob"), (CAROL, "carol"), (DAVE, "dave"), (ERIN, "erin")):
            fake.add_user(user_id, name)
        settings = {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "INCIDENT_CHANNEL": defaults.CHANNEL_ID,
            "PORT": str(port),
            "SCHEDULER_INTERVAL": "1s",
            "UPDATE_INTERVALS": "3s,15m",
        }
        with bot_process(tmp_path, **settings) as process:
            output = OutputReader(process)
            wait_until_healthy(process, base_url)
            try:
                _run_an_incident(fake, f"{base_url}/slack/events", base_url, token)
            finally:
                log = output.stop()
                print(log)
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert [w for w in warnings if "SESSION_SECRET is not set" not in w] == []


def _run_an_incident(fake: FakeSlack, events: str, base_url: str, token: str) -> None:
    def send(payload: dict[str, Any]) -> None:
        status, _, body = post_payload(events, payload)
        assert status == 200, body

    def dms(user_id: str) -> list[dict[str, Any]]:
        return fake.messages(fake.dm_channel(user_id))

    # `declare` always declares, whatever the words after it.
    send(payloads.slash_command("/incident", "declare update failed on checkout", fake=fake))
    view = fake.wait_for(lambda: fake.top_view(ALICE), timeout=10)
    # The form offers the declarer as lead; Alice clears it: nobody leads yet.
    nobody = {"owner": {"owner": {"type": "users_select", "selected_user": None}}}
    send(payloads.view_submission(view, {"severity": "SEV1"}, values=nobody, fake=fake))

    def card() -> dict[str, Any] | None:
        found = [m for m in fake.messages(defaults.CHANNEL_ID) if "update failed" in _text(m)]
        return found[0] if found else None

    posted = fake.wait_for(card, timeout=10)
    room = fake.wait_for(lambda: fake.channel_by_name("inc-1-update-failed-on-checkout"), 10)
    room_id = room["id"]

    # The channel's first message is the welcome, pinned, with a button for each empty role.
    welcome = fake.wait_for(lambda: (fake.messages(room_id) or [None])[0], timeout=10)
    assert "update failed on checkout" in _text(welcome)
    for role in ("Communications lead", "Scribe", "Operations"):
        assert role in _text(welcome)
    assert "incident_take_role:comms" in _text(welcome)
    fake.wait_for(lambda: welcome["ts"] in fake.pinned(room_id), timeout=10)

    # No lead after LEAD_REMINDER_AFTER: a reminder in the channel and the thread, with a button.
    def reminder() -> dict[str, Any] | None:
        found = [m for m in fake.messages(room_id) if "no lead" in m.get("text", "")]
        return found[0] if found else None

    reminded = fake.wait_for(reminder, timeout=15)
    assert "incident_take_lead" in _text(reminded)
    fake.wait_for(
        lambda: any(
            "no lead" in m.get("text", "") and m.get("thread_ts") == posted["ts"]
            for m in fake.messages(defaults.CHANNEL_ID, include_replies=True)
        ),
        timeout=10,
    )

    # Bob takes the lead from the reminder: the topic names him, he is DMed the lead's duties.
    send(
        payloads.block_actions_from(
            reminded, "incident_take_lead", channel_id=room_id, user_id=BOB, fake=fake
        )
    )
    fake.wait_for(lambda: "lead @bob" in fake.topic(room_id).lower(), timeout=10)
    fake.wait_for(lambda: any("Incident lead" in _text(m) for m in dms(BOB)), timeout=10)
    # A second "I'll lead" says who leads.
    fake.clear_calls()
    send(
        payloads.block_actions_from(
            reminded, "incident_take_lead", channel_id=room_id, user_id=DAVE, fake=fake
        )
    )
    fake.wait_for(
        lambda: (
            any("already leads" in str(c.get("text")) for c in fake.calls_to("chat.postEphemeral"))
            or any("already leads" in str(c.get("text")) for c in fake.calls_to("response_url"))
        ),
        timeout=10,
    )

    # Carol takes comms by command inside the channel, no id needed; DMed its duties.
    send(
        payloads.slash_command(
            "/incident", "role comms me", fake=fake, user_id=CAROL, channel_id=room_id
        )
    )
    fake.wait_for(lambda: any("posts the updates" in _text(m) for m in dms(CAROL)), timeout=10)

    # Erin is made scribe through the API.
    assert _api(base_url, "PUT", "/api/v1/incidents/1/roles/scribe", token, {"user": ERIN}) == 200
    fake.wait_for(lambda: any("keeps the timeline" in _text(m) for m in dms(ERIN)), timeout=10)

    # The welcome message is edited: comms and scribe are taken, ops is still offered.
    def welcome_now() -> str:
        return _text(next(m for m in fake.messages(room_id) if m["ts"] == welcome["ts"]))

    fake.wait_for(
        lambda: (
            "incident_take_role:comms" not in welcome_now()
            and "incident_take_role:scribe" not in welcome_now()
        ),
        timeout=10,
    )
    assert "incident_take_role:ops" in welcome_now()

    # Dave subscribes from the card.
    latest_card = next(m for m in fake.messages(defaults.CHANNEL_ID) if m["ts"] == posted["ts"])
    send(
        payloads.block_actions_from(
            latest_card,
            "incident_subscribe",
            channel_id=defaults.CHANNEL_ID,
            user_id=DAVE,
            fake=fake,
        )
    )
    fake.wait_for(lambda: any("subscribed" in str(c) for c in fake.calls), timeout=10)

    # Carol posts an update that moves the status and promises the next in 3 s.
    send(
        payloads.slash_command("/incident", "update", fake=fake, user_id=CAROL, channel_id=room_id)
    )
    form = fake.wait_for(lambda: fake.top_view(CAROL), timeout=10)
    assert form["callback_id"] == "incident_update"
    summary = "Rolled back the 14:02 deploy; error rate falling"
    send(
        payloads.view_submission(
            form,
            {
                "update_status": "mitigated",
                "summary": summary,
                "impact": "Some checkouts failed for 20 minutes",
                "next_update": "3",
            },
            user_id=CAROL,
            fake=fake,
        )
    )

    def count(messages: list[dict[str, Any]]) -> int:
        return sum(summary in _text(m) for m in messages)

    def posted_in_room() -> list[dict[str, Any]]:
        # The welcome and the pinned summary show the latest update too: they are not posts of it.
        pinned = fake.pinned(room_id)
        return [m for m in fake.messages(room_id) if m["ts"] not in pinned]

    def replies() -> list[dict[str, Any]]:
        return [
            m
            for m in fake.messages(defaults.CHANNEL_ID, include_replies=True)
            if m.get("thread_ts") == posted["ts"] and m["ts"] != posted["ts"]
        ]

    fake.wait_for(lambda: count(posted_in_room()) and count(replies()), timeout=10)
    for subscriber in (ALICE, DAVE):
        fake.wait_for(lambda s=subscriber: count(dms(s)), timeout=10)
    # The card and its copy pinned in the channel show it, with the status it moved to.
    fake.wait_for(lambda: summary in _text(card() or {}), timeout=10)
    assert "Mitigated" in _text(card() or {})

    # The promise is missed: the lead and comms are nudged, each with an Update button.
    def nudged(person: str) -> list[dict[str, Any]]:
        return [m for m in dms(person) if "was promised for" in m.get("text", "")]

    for person in (BOB, CAROL):
        fake.wait_for(lambda p=person: nudged(p), timeout=15)
        assert "incident_update" in json.dumps(nudged(person)[0].get("blocks"))
    fake.wait_for(lambda: "overdue" in _text(card() or {}).lower(), timeout=10)

    # Each went once, whatever the sweeps and retries did meanwhile; Carol wrote the update and
    # is not subscribed, so she got no copy of it.
    assert count(posted_in_room()) == 1
    assert count(replies()) == 1
    assert [count(dms(person)) for person in (ALICE, DAVE, CAROL)] == [1, 1, 0]
