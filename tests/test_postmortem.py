"""Post-mortems: the exact Markdown for a known incident, escaping of hostile text, the web
download (people and API tokens) and `/incident postmortem` end to end through the fake Slack."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents, reports
from bot.incidents import Actor, IncidentDraft, RoleRules, progress, roles, screenshots, tokens
from bot.reports.postmortem import paragraphs
from db.models import ApiToken
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import Bot, running_bot, sign_in_client
from tests.steps import FIXED

BASE = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ALICE = Actor(defaults.USER_ID)  # the fake's "Alice Example"
BOB = Actor("U0BOB00001")
ALERTS = Actor.token("alertmanager", is_admin=False)
CHANNEL = defaults.CHANNEL_ID
SITE = "https://incidents.example.com"


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def graph() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def walk_through(session: Session, *, card_channel: str | None = None) -> tuple[int, int]:
    """An incident from declaration to resolution with every kind of event; its id and its
    screenshot's."""
    incident_id = incidents.declare(
        session,
        IncidentDraft(
            title="Checkout is failing",
            severity="SEV2",
            description="Payments time out.\nAbout 30% of checkouts fail.",
            service="checkout",
            category="outage",
            slack_channel_id=card_channel,
            # Her DMs about its changes, due at BASE's clock, would hold the ones tests wait for.
            tell_people=False,
        ),
        ALICE,
        now=BASE,
    ).id
    incidents.edit(session, incident_id, ALICE, {"service": "checkout-api"}, now=at(5))
    incidents.change_status(
        session, incident_id, "investigating", BOB, note="Looking at the provider", now=at(10)
    )
    incidents.change_severity(session, incident_id, "SEV1", BOB, now=at(15))
    incidents.add_note(session, incident_id, ALERTS, "Error rate 31%", now=at(20))
    mistake = incidents.add_note(session, incident_id, BOB, "wrong incident, sorry", now=at(22))
    incidents.delete_note(session, mistake.id, BOB, now=at(23))
    incidents.assign(session, incident_id, ALICE, owner=BOB.user_id, now=at(25))
    roles.assign_role(
        session, incident_id, "comms", ALICE.user_id, BOB, rules=RoleRules(), now=at(26)
    )
    image = screenshots.validate_image("graph.png", graph())
    shot_id = screenshots.store_image(
        session, incident_id, BOB, image, caption="Error rate graph", now=at(30)
    )
    assert shot_id is not None
    screenshots.record_attachment(
        session,
        incident_id,
        BOB,
        screenshots.Attachment(stored=[shot_id]),
        caption="Error rate graph",
        now=at(30),
    )
    progress.post_update(
        session,
        incident_id,
        progress.UpdateDraft(
            summary="The provider is failing over.",
            impact="About 30% of checkouts fail.",
            next_update_in=timedelta(minutes=30),
        ),
        BOB,
        now=at(35),
    )
    incidents.change_status(session, incident_id, "mitigated", BOB, note="Rolled back", now=at(40))
    incidents.change_status(
        session,
        incident_id,
        "resolved",
        BOB,
        cause="A bad deploy",
        resolution="Rolled back,\nthen fixed forward.",
        now=at(100),
    )
    return incident_id, shot_id


def expected(incident_id: int, shot_id: int, *, alice: str, site: str | None) -> str:
    """The document for walk_through()'s incident; `alice` is how Alice is shown."""
    page = f"- Incident page: <{site}/incidents/{incident_id}>\n" if site else ""
    image = (
        f"\n  ![Error rate graph]({site}/incidents/{incident_id}/screenshots/{shot_id})"
        if site
        else ""
    )
    bob = BOB.user_id
    return f"""# INC-{incident_id} (SEV1, resolved): Checkout is failing

- Severity: SEV1 (critical)
- Status: resolved
- Service: checkout-api
- Category: outage
- Declared: 2025-03-03 09:00 UTC by {alice}
- Lead: {bob}
- Assignee: nobody
- Review: draft, reviewer nobody
{page}
## Summary

Payments time out.\\
About 30% of checkouts fail.

## Impact

- Started: 2025-03-03 09:00 UTC (declared; no impact start recorded)
- Ended: 2025-03-03 10:40 UTC (resolved; no impact end recorded)
- Duration: 1 h 40 min

### Customer impact

Not recorded.

## Milestones

| Milestone | Time (UTC) | Since declared |
|---|---|---|
| Declared | 2025-03-03 09:00 | |
| Acknowledged (MTTA) | 2025-03-03 09:10 | 10 min |
| Mitigated (MTTM) | 2025-03-03 09:40 | 40 min |
| Resolved (MTTR) | 2025-03-03 10:40 | 1 h 40 min |
| Closed | not yet | |

## Timeline (UTC)

- 2025-03-03 09:00 · {alice} · declared the incident as SEV2
- 2025-03-03 09:05 · {alice} · changed the service to:
  > checkout-api
- 2025-03-03 09:10 · {bob} · changed the status: open → investigating
  > Looking at the provider
- 2025-03-03 09:15 · {bob} · changed the severity: SEV2 → SEV1
- 2025-03-03 09:20 · API token alertmanager · added a note:
  > Error rate 31%
- 2025-03-03 09:25 · {alice} · made {bob} the lead
- 2025-03-03 09:26 · {bob} · gave the comms role to {alice}
- 2025-03-03 09:30 · {bob} · attached 1 screenshot
  > Error rate graph
- 2025-03-03 09:35 · {bob} · posted an update; next update promised in 30 min
  > The provider is failing over.
  >
  > Impact: About 30% of checkouts fail.
- 2025-03-03 09:40 · {bob} · changed the status: investigating → mitigated
  > Rolled back
- 2025-03-03 10:40 · {bob} · changed the status: mitigated → resolved

## Roles (times in UTC)

- Incident lead: {bob} (from 2025-03-03 09:25)
- Communications lead: {alice} (from 2025-03-03 09:26)
- Scribe: nobody

## Contributing factors

Not recorded.

## What went well

Not recorded.

## What went badly

Not recorded.

## Follow-ups

None yet.

## Cause

A bad deploy

## Resolution

Rolled back,\\
then fixed forward.

## Screenshots

- graph.png · "Error rate graph" · {len(graph())} B · 64x48 px · added by {bob} at \
2025-03-03 09:30 UTC{image}

## Review

- Status: draft
- Reviewer: nobody
"""


# --- The document --------------------------------------------------------------------------------


def test_the_document_of_a_known_incident_is_exactly_this(session: Session) -> None:
    incident_id, shot_id = walk_through(session)

    document = reports.postmortem_markdown(
        reports.postmortem_facts(session, f"INC-{incident_id}"),
        name={ALICE.user_id: "Alice Example"}.get,
        page_url=f"{SITE}/incidents/{incident_id}",
        screenshot_url=lambda incident, shot: f"{SITE}/incidents/{incident}/screenshots/{shot}",
    )

    assert document == expected(
        incident_id, shot_id, alice=f"Alice Example ({ALICE.user_id})", site=SITE
    )
    assert "wrong incident" not in document


def test_without_names_or_links_people_are_their_ids_and_screenshots_are_listed(
    session: Session,
) -> None:
    incident_id, shot_id = walk_through(session)

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident_id))

    assert document == expected(incident_id, shot_id, alice=ALICE.user_id, site=None)


def test_an_ongoing_incident_says_so_and_leaves_milestones_open(session: Session) -> None:
    incident = incidents.declare(
        session,
        IncidentDraft(title="Search is slow", severity="SEV4"),
        Actor("U0CAROL001"),
        now=BASE,
    )
    incidents.change_status(session, incident.id, "investigating", BOB, now=at(7))

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident.id))

    assert document.startswith(f"# INC-{incident.id} (SEV4, investigating): Search is slow\n\n")
    assert (
        "- Started: 2025-03-03 09:00 UTC (declared; no impact start recorded)\n"
        "- Ended: not yet\n- Duration: ongoing\n"
    ) in document
    assert "| Acknowledged (MTTA) | 2025-03-03 09:07 | 7 min |\n" in document
    assert "| Mitigated (MTTM) | not yet | |\n| Resolved (MTTR) | not yet | |\n" in document
    assert "## Summary\n\nNo description.\n" in document
    assert "## Cause\n\nNot recorded.\n\n## Resolution\n\nNot recorded.\n" in document
    assert "- Service: not recorded\n- Category: not recorded\n" in document
    assert "## Follow-ups\n\nNone yet.\n" in document
    assert document.endswith(
        "## Screenshots\n\nNone.\n\n## Review\n\n- Status: draft\n- Reviewer: nobody\n"
    )


def test_a_reopened_incident_is_ongoing_again(session: Session) -> None:
    incident = incidents.declare(
        session, IncidentDraft(title="Login loops", severity="SEV2"), ALICE, now=BASE
    )
    incidents.change_status(session, incident.id, "resolved", BOB, now=at(30), resolution=FIXED)
    incidents.change_status(session, incident.id, "investigating", BOB, now=at(50))

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident.id))

    assert "- Ended: not yet\n- Duration: ongoing\n" in document
    assert "| Resolved (MTTR) | not yet | |\n" in document
    assert "changed the status: resolved → investigating" in document


SECTIONS = [
    "## Summary",
    "## Impact",
    "### Customer impact",
    "## Milestones",
    "## Timeline (UTC)",
    "## Roles (times in UTC)",
    "## Contributing factors",
    "## What went well",
    "## What went badly",
    "## Follow-ups",
    "## Cause",
    "## Resolution",
    "## Screenshots",
    "## Review",
]
HOSTILE_TITLE = "# hi | x [link](javascript:alert(1)) <b>*bold*</b> `code` _it_ \\ end #"


def test_hostile_text_is_shown_literally(session: Session) -> None:
    incident = incidents.declare(
        session,
        IncidentDraft(
            title=HOSTILE_TITLE,
            severity="SEV3",
            description=(
                "- not a list\n1. nor this\n+ nor\n===\n~~~\n> nor a quote\n\n\n## nor a heading"
            ),
            service="a|b",
        ),
        Actor("U0EVE00001"),
        now=BASE,
    )
    incidents.add_note(
        session, incident.id, ALICE, "![img](https://evil.example/x.png)\n---\n<script>", now=at(1)
    )

    document = reports.postmortem_markdown(
        reports.postmortem_facts(session, incident.id),
        name={"U0EVE00001": "Eve *the* [admin](x)"}.get,
    )

    lines = document.splitlines()
    assert lines[0] == (
        f"# INC-{incident.id} (SEV3, open): \\# hi \\| x \\[link\\](javascript:alert(1)) "
        "\\<b\\>\\*bold\\*\\</b\\> \\`code\\` \\_it\\_ \\\\ end \\#"
    )
    summary = document.split("## Summary\n\n")[1].split("\n\n## Impact")[0]
    assert summary == (
        "\\- not a list\\\n1\\. nor this\\\n\\+ nor\\\n\\===\\\n\\~~~\\\n\\> nor a quote\n\n"
        "\\#\\# nor a heading"
    )
    assert "- Service: a\\|b\n" in document
    assert (
        "- Declared: 2025-03-03 09:00 UTC by Eve \\*the\\* \\[admin\\](x) (U0EVE00001)\n"
        in document
    )
    note = "  > !\\[img\\](https://evil.example/x.png)\\\n  > \\---\\\n  > \\<script\\>\n"
    assert f"added a note:\n{note}" in document
    # Every heading of the document is one of its own.
    headings = [line for line in lines if line.startswith("#")]
    assert headings == [
        lines[0],
        *SECTIONS,
    ]
    assert "<script>" not in document


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain words (with an aside)", "plain words (with an aside)"),
        ("a\\b", "a\\\\b"),
        ("snake_case and 2*3", "snake\\_case and 2\\*3"),
        ("12) twelve", "12\\) twelve"),
        ("2025. a year", "2025\\. a year"),
        ("---", "\\---"),
        ("= =", "\\= ="),
        ("~~~python", "\\~~~python"),
        ("-- a dash", "-- a dash"),
        ("-1 degrees", "-1 degrees"),
        ("  - indented", "\\- indented"),
        ("a\n\n\n\nb", "a\n\nb"),
        ("one\ntwo", "one\\\ntwo"),
    ],
)
def test_paragraphs_escape_only_what_would_be_markup(text: str, shown: str) -> None:
    assert "\n".join(paragraphs(text)) == shown


# --- On the web ----------------------------------------------------------------------------------


@pytest.fixture
def resolved(slackbot: Bot) -> tuple[int, int]:
    with slackbot.sessions.begin() as session:
        return walk_through(session)


def sign_in(client: Any, user_id: str = ALICE.user_id) -> None:
    sign_in_client(client, user_id)


@pytest.fixture
def api_token(committing_sessions: sessionmaker[Session]) -> Iterator[str]:
    name = f"pm-{uuid.uuid4().hex[:12]}"
    with committing_sessions.begin() as session:
        token, row = tokens.create_token(session, name)
        row_id = row.id
    yield token
    with committing_sessions.begin() as session:
        session.delete(session.get_one(ApiToken, row_id))


def test_signed_in_people_download_the_markdown(slackbot: Bot, resolved: tuple[int, int]) -> None:
    incident_id, shot_id = resolved
    client = slackbot.web.test_client()
    sign_in(client)

    response = client.get(f"/incidents/{incident_id}/postmortem")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=INC-{incident_id}-postmortem.md"
    )
    # Names from the workspace's directory (users.list): the fake Slack knows Alice, not Bob.
    assert response.get_data(as_text=True) == expected(
        incident_id, shot_id, alice=f"Alice Example ({ALICE.user_id})", site=None
    )
    # The screenshot link is the image's page, and it serves the stored bytes.
    shown = client.get(f"/incidents/{incident_id}/screenshots/{shot_id}")
    assert (shown.status_code, shown.data) == (200, graph())


def test_signed_out_people_are_sent_to_sign_in(slackbot: Bot, resolved: tuple[int, int]) -> None:
    incident_id, _ = resolved

    response = slackbot.web.test_client().get(f"/incidents/{incident_id}/postmortem")

    assert response.status_code == 302
    assert response.headers["Location"] == (f"/sign-in?next=/incidents/{incident_id}/postmortem")


@pytest.mark.parametrize(
    ("ref", "status", "said"),
    [
        ("424242", 404, "There is no incident INC-424242."),
        ("latest", 422, "is not an incident id"),
    ],
)
def test_a_bad_incident_is_a_clear_error_page(
    slackbot: Bot, ref: str, status: int, said: str
) -> None:
    client = slackbot.web.test_client()
    sign_in(client)

    response = client.get(f"/incidents/{ref}/postmortem")

    assert response.status_code == status
    assert said in response.get_data(as_text=True)
    assert "Content-Disposition" not in response.headers


def test_api_tokens_get_the_markdown(
    slackbot: Bot, resolved: tuple[int, int], api_token: str
) -> None:
    incident_id, shot_id = resolved
    client = slackbot.web.test_client()

    response = client.get(
        f"/api/v1/incidents/INC-{incident_id}/postmortem",
        headers={"Authorization": f"Bearer {api_token}"},
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert response.get_data(as_text=True) == expected(
        incident_id, shot_id, alice=f"Alice Example ({ALICE.user_id})", site=None
    )


@pytest.mark.parametrize(
    "authorization", [None, "Bearer itk_not-a-real-token", "Basic dXNlcjpwYXNz"]
)
def test_the_api_refuses_without_a_valid_token(
    slackbot: Bot, resolved: tuple[int, int], authorization: str | None
) -> None:
    incident_id, _ = resolved
    headers = {"Authorization": authorization} if authorization else {}

    response = slackbot.web.test_client().get(
        f"/api/v1/incidents/{incident_id}/postmortem", headers=headers
    )

    assert response.status_code == 401
    assert response.is_json and "Authorization: Bearer" in response.json["message"]


def test_the_api_answers_an_unknown_incident_in_json(slackbot: Bot, api_token: str) -> None:
    response = slackbot.web.test_client().get(
        "/api/v1/incidents/424242/postmortem", headers={"Authorization": f"Bearer {api_token}"}
    )

    assert response.status_code == 404
    assert response.json == {"message": "There is no incident INC-424242.", "detail": {}}


def test_the_openapi_document_describes_the_markdown_download(slackbot: Bot) -> None:
    spec = slackbot.web.test_client().get("/api/v1/openapi.json").json

    operation = spec["paths"]["/api/v1/incidents/{incident_id}/postmortem"]["get"]
    assert operation["responses"]["200"]["content"] == {
        "text/markdown": {"schema": {"type": "string"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
    }
    (images,) = [p for p in operation["parameters"] if p["name"] == "images"]
    assert images["in"] == "query"
    assert images["schema"]["enum"] == ["links", "inline"]
    assert {"404", "401"} <= set(operation["responses"])
    # Secured as the rest of the API is.
    assert operation["security"] == spec["paths"]["/api/v1/incidents"]["get"]["security"]
    assert "/incidents/{incident_id}/postmortem" not in spec["paths"]
    assert "/stats" not in spec["paths"]


# --- In Slack ------------------------------------------------------------------------------------


def with_card(bot: Bot) -> tuple[int, int, str]:
    with bot.sessions.begin() as session:
        incident_id, shot_id = walk_through(session, card_channel=CHANNEL)
    assert not bot.deliverer.drain().problems
    with bot.sessions() as session:
        card_ts = incidents.get_incident(session, incident_id).card_ts
    assert card_ts
    return incident_id, shot_id, card_ts


def command(bot: Bot, text: str, channel: str = CHANNEL) -> tuple[str, str]:
    """Send `/incident <text>`; its ack body and its response_url."""
    payload = payloads.slash_command(
        "/incident", text, fake=bot.fake, user_id=ALICE.user_id, channel_id=channel
    )
    status, _, body = bot.post(payload)
    assert status == 200, body
    return body, payload["response_url"]


def answers(bot: Bot, response_url: str, count: int = 1) -> list[str]:
    bot.fake.wait_for(lambda: len(bot.fake.responses(response_url)) >= count)
    return [r["text"] for r in bot.fake.responses(response_url)]


def uploaded(fake: FakeSlack) -> list[tuple[dict[str, Any], list[tuple[str, bytes]]]]:
    """Each completed upload's call, with its files' names and bytes."""
    done = []
    for call in fake.calls_to("files.completeUploadExternal"):
        files = [fake.file(item["id"]) for item in call["files"]]
        done.append((call, [(f["name"], fake.file_content(f["id"])) for f in files if f]))
    return done


def test_slack_posts_the_postmortem_into_the_cards_thread(slackbot: Bot) -> None:
    incident_id, shot_id, card_ts = with_card(slackbot)
    slackbot.fake.clear_calls()

    body, response_url = command(slackbot, f"postmortem INC-{incident_id}")
    slackbot.fake.wait_for(lambda: uploaded(slackbot.fake), timeout=10)

    assert body == ""
    assert answers(slackbot, response_url) == [
        f"Writing INC-{incident_id}'s post-mortem; it will be posted in the incident's thread "
        "as a Markdown file."
    ]
    [(call, files)] = uploaded(slackbot.fake)
    assert (call["channel_id"], call["thread_ts"]) == (CHANNEL, card_ts)
    assert call["initial_comment"] == (
        f"Post-mortem of INC-{incident_id}, in Markdown, ready to paste into a wiki."
    )
    name = f"Alice Example ({ALICE.user_id})"
    assert files == [
        (
            f"INC-{incident_id}-postmortem.md",
            expected(incident_id, shot_id, alice=name, site=None).encode(),
        )
    ]


def test_with_public_url_the_postmortem_links_the_web(
    fake_slack: FakeSlack, engine: Any, committing_sessions: sessionmaker[Session]
) -> None:
    with running_bot(fake_slack, engine, committing_sessions, public_url=SITE) as bot:
        incident_id, shot_id, _ = with_card(bot)
        fake_slack.clear_calls()
        command(bot, f"postmortem {incident_id}")
        fake_slack.wait_for(lambda: uploaded(fake_slack), timeout=10)

    [(call, files)] = uploaded(fake_slack)
    assert call["initial_comment"] == (
        f"Post-mortem of INC-{incident_id}, in Markdown, ready to paste into a wiki. Always "
        f"the latest: <{SITE}/incidents/{incident_id}/postmortem|download it from the web>."
    )
    name = f"Alice Example ({ALICE.user_id})"
    assert files[0][1].decode() == expected(incident_id, shot_id, alice=name, site=SITE)


def test_an_incident_without_a_card_gets_it_where_the_command_was_typed(slackbot: Bot) -> None:
    with slackbot.sessions.begin() as session:
        incident_id, _ = walk_through(session)

    _, response_url = command(slackbot, f"postmortem {incident_id}")
    slackbot.fake.wait_for(lambda: uploaded(slackbot.fake), timeout=10)

    assert "posted in this channel" in answers(slackbot, response_url)[0]
    [(call, files)] = uploaded(slackbot.fake)
    assert (call["channel_id"], call.get("thread_ts")) == (CHANNEL, None)
    assert files[0][0] == f"INC-{incident_id}-postmortem.md"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("postmortem INC-424242", "There is no incident INC-424242."),
        ("postmortem", "Which incident? Usage: `/incident postmortem &lt;id&gt; ...`"),
        ("postmortem latest", "'latest' is not an incident id"),
    ],
)
def test_bad_incidents_are_told_and_nothing_is_uploaded(
    slackbot: Bot, text: str, said: str
) -> None:
    body, response_url = command(slackbot, text)
    told = body or answers(slackbot, response_url)[0]

    assert said in told
    assert slackbot.fake.calls_to("files.getUploadURLExternal") == []
    assert slackbot.fake.calls_to("files.completeUploadExternal") == []


def test_a_refused_upload_is_told_ephemerally(slackbot: Bot) -> None:
    incident_id, _, card_ts = with_card(slackbot)
    slackbot.fake.fail("files.completeUploadExternal", error="is_archived")

    command(slackbot, f"postmortem {incident_id}")
    told = slackbot.fake.wait_for(
        lambda: slackbot.fake.ephemeral_messages(user=ALICE.user_id), timeout=10
    )

    assert [t["text"] for t in told] == [
        "I couldn't post the post-mortem in the incident's thread: Slack said is_archived. "
        "The channel is archived."
    ]
    assert [m for m in slackbot.fake.thread(CHANNEL, card_ts) if m.get("files")] == []


def test_a_channel_without_the_bot_is_told_by_dm(slackbot: Bot) -> None:
    with slackbot.sessions.begin() as session:
        incident_id, _ = walk_through(session)
    # Alice's DMs of the walk (her role's duties, sent at BASE's clock)
    # go first: a DM waits for the ones queued before it.
    assert not slackbot.deliverer.drain().problems
    before = len(slackbot.fake.messages(ALICE.user_id))
    slackbot.fake.add_channel("C0ELSEWHERE", "elsewhere", is_member=False)

    command(slackbot, f"postmortem {incident_id}", channel="C0ELSEWHERE")
    told = slackbot.fake.wait_for(
        lambda: slackbot.fake.messages(ALICE.user_id)[before:], timeout=10
    )

    assert told[0]["text"] == (
        "I couldn't post the post-mortem here: Slack said not_in_channel. Invite me to this "
        "channel (`/invite @` and my name), or ask where I am."
    )
    assert slackbot.fake.messages("C0ELSEWHERE") == []
