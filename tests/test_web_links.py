"""Slack's side of the web surface: cards and `/incident show` link to the incident's page when
PUBLIC_URL says where it is, and what an API token changed is told by the token's name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, IncidentDraft
from bot.slack import blocks
from db.models import Incident
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import Bot

PUBLIC_URL = "https://incidents.example.com"
CHANNEL = defaults.CHANNEL_ID
ALICE = Actor("U0ALICE0001")
ALERTMANAGER = Actor.token("alertmanager", is_admin=False)


def declare(sessions: sessionmaker[Session], actor: Actor = ALICE) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout is failing", severity="SEV3", slack_channel_id=CHANNEL
        )
        return incidents.declare(session, draft, actor).id


def the_card(fake: FakeSlack) -> dict[str, Any]:
    [card] = [m for m in fake.messages(CHANNEL) if m.get("user") == fake.bot_user_id]
    return card


def footer(message: dict[str, Any]) -> str:
    context = message["blocks"][-1]
    assert context["type"] == "context"
    return context["elements"][0]["text"]


def test_the_card_links_to_the_incidents_page_when_the_public_url_is_set(
    fake_slack: FakeSlack, committing_sessions: sessionmaker[Session]
):
    incident_id = declare(committing_sessions)
    deliverer = Deliverer(committing_sessions, fake_slack.client(), public_url=PUBLIC_URL)

    assert deliverer.drain().problems == []

    link = f"<{PUBLIC_URL}/incidents/{incident_id}|Open on the web>"
    card = the_card(fake_slack)
    assert footer(card).endswith(f"`/incident show {incident_id}` · {link}")
    with committing_sessions.begin() as session:
        incidents.change_status(session, incident_id, "investigating", ALICE)
    assert deliverer.drain().problems == []
    edited = fake_slack.message(CHANNEL, card["ts"])
    assert edited is not None and "investigating" in edited["text"]
    assert footer(edited).endswith(link)  # edits keep it


def test_without_a_public_url_the_card_has_no_web_link(
    fake_slack: FakeSlack, committing_sessions: sessionmaker[Session]
):
    incident_id = declare(committing_sessions)

    assert Deliverer(committing_sessions, fake_slack.client()).drain().problems == []

    card = the_card(fake_slack)
    assert footer(card).endswith(f"`/incident show {incident_id}`")
    assert "Open on the web" not in json.dumps(card)


def new_incident(session: Session) -> Incident:
    draft = IncidentDraft(title="Checkout is failing", severity="SEV3")
    return incidents.declare(session, draft, ALICE)


@pytest.mark.parametrize(
    "public_url",
    [
        None,
        "",
        "https://incidents.example.com/a|b",  # would end the link's label early
        "https://incidents.example.com/a>b",
        "https://incidents.example.com/<!channel>",
        "ftp://incidents.example.com",
    ],
)
def test_no_web_link_from_an_address_that_could_break_out_of_it(
    session: Session, public_url: str | None
):
    incident = new_incident(session)
    rendered = json.dumps(
        [b.to_dict() for b in blocks.card(incident, public_url=public_url)]
        + [
            b.to_dict()
            for b in blocks.incident_detail(
                incident, [], ALICE, card_link=None, public_url=public_url
            )
        ]
    )
    assert "Open on the web" not in rendered
    assert "<!channel>" not in rendered


def test_incident_show_links_to_the_web_page(session: Session):
    incident = new_incident(session)

    shown = [
        b.to_dict()
        for b in blocks.incident_detail(incident, [], ALICE, card_link=None, public_url=PUBLIC_URL)
    ]

    links = [
        element["text"]
        for block in shown
        if block["type"] == "context"
        for element in block["elements"]
    ]
    assert f"<{PUBLIC_URL}/incidents/{incident.id}|Open on the web>" in links


def test_what_an_api_token_changed_is_told_by_its_name_never_as_a_mention(slackbot: Bot):
    sessions, fake = slackbot.sessions, slackbot.fake
    incident_id = declare(sessions, ALERTMANAGER)
    assert slackbot.deliverer.drain().problems == []
    with sessions.begin() as session:
        incidents.change_status(session, incident_id, "investigating", ALERTMANAGER)
        incidents.add_note(session, incident_id, ALERTMANAGER, "Error rate back under 1%")

    assert slackbot.deliverer.drain().problems == []

    card = the_card(fake)
    assert "*Reporter*\nAPI token alertmanager" in json.dumps(card["blocks"]).replace("\\n", "\n")
    replies = [m["text"] for m in fake.thread(CHANNEL, card["ts"])]
    assert replies == [
        "🔍 API token alertmanager changed the status: *open → investigating*",
        "📝 API token alertmanager added a note:\n> Error rate back under 1%",
    ]
    sent = json.dumps([call.params for call in fake.calls if call.method.startswith("chat.")])
    assert "token:alertmanager" not in sent
    assert "<@token" not in sent
