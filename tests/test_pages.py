"""The server-rendered pages through Flask's test client: every page renders, every form changes
the incident (or, refused, changes nothing and says why), permissions, CSRF and escaping."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from bot import incidents
from bot.incidents import Actor, screenshots
from db.models import Incident, IncidentEvent, Screenshot, Severity, Status
from tests.fakeslack import FakeSlack
from tests.slackbot import ADMIN_ID, Bot, running_bot, sign_in_client
from tests.steps import FIXED

ALICE = "U0USER0001"
BOB = "U0BOB00001"
CSRF = "csrf-token-for-tests"


@pytest.fixture
def client(slackbot: Bot) -> Any:
    return slackbot.web.test_client()


def sign_in(client: Any, user_id: str = ALICE) -> None:
    sign_in_client(client, user_id, csrf_token=CSRF)


def declare(bot: Bot, title: str = "Checkout is failing", by: str = ALICE, **fields: Any) -> int:
    draft = incidents.IncidentDraft(title=title, severity=fields.pop("severity", "SEV2"), **fields)
    with bot.sessions.begin() as session:
        return incidents.declare(session, draft, Actor.of(by, [ADMIN_ID])).id


def incident(bot: Bot, incident_id: int) -> Incident:
    with bot.sessions() as session:
        return incidents.get_incident(session, incident_id)


def events(bot: Bot, incident_id: int) -> list[IncidentEvent]:
    with bot.sessions() as session:
        return incidents.timeline(session, incident_id)


def post(client: Any, url: str, **form: Any) -> TestResponse:
    return client.post(url, data={"csrf_token": CSRF, **form})


def text_of(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def problem(response: TestResponse) -> str:
    found = re.search(r'id="problem"[^>]*>(.*?)</p>', text_of(response), re.S)
    assert found, text_of(response)[:2000]
    return found.group(1)


def flashed(client: Any, response: TestResponse) -> str:
    assert response.status_code == 303 or response.status_code == 302, text_of(response)[:2000]
    page = client.get(response.headers["Location"])
    found = re.search(r'class="box flash"[^>]*>(.*?)</p>', text_of(page))
    assert found, text_of(page)[:2000]
    return found.group(1)


def png(width: int = 8, height: int = 6, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


# --- Signing in --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/"),
        ("get", "/incidents?severity=SEV1"),
        ("get", "/incidents/1"),
        ("get", "/incidents/new"),
        ("get", "/incidents/1/edit"),
        ("get", "/incidents/1/screenshots/1"),
        ("post", "/incidents/1/notes"),
        ("post", "/incidents/new"),
    ],
)
def test_a_stranger_is_sent_to_sign_in_and_brought_back(client: Any, method: str, path: str):
    response = getattr(client, method)(path)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/sign-in?next=")
    assert client.get(location).status_code == 200


# --- The list ----------------------------------------------------------------------------------


def rows(response: TestResponse) -> list[str]:
    """The titles in the list, in order."""
    return re.findall(
        r'<td class="title"><a href="/incidents/\d+">(.*?)</a></td>', text_of(response)
    )


def test_the_list_shows_active_incidents_by_default_and_filters(slackbot: Bot, client: Any):
    sign_in(client)
    api = declare(slackbot, "API errors", severity="SEV1", service="api", category="outage")
    declare(slackbot, "DB slow", severity="SEV3", service="db", owner=BOB)
    done = declare(slackbot, "Old outage", severity="SEV2")
    with slackbot.sessions.begin() as session:
        incidents.change_status(session, done, "resolved", Actor(ALICE), resolution=FIXED)

    assert rows(client.get("/")) == ["DB slow", "API errors"]
    assert rows(client.get("/incidents?status=")) == ["Old outage", "DB slow", "API errors"]
    assert rows(client.get("/incidents?status=resolved")) == ["Old outage"]
    assert rows(client.get("/incidents?severity=SEV1")) == ["API errors"]
    assert rows(client.get("/incidents?service=DB")) == ["DB slow"]
    assert rows(client.get("/incidents?category=outage")) == ["API errors"]
    assert rows(client.get(f"/incidents?owner={BOB}")) == ["DB slow"]
    assert rows(client.get("/incidents?q=errors")) == ["API errors"]
    assert rows(client.get("/incidents?status=&sort=title")) == [
        "API errors",
        "DB slow",
        "Old outage",
    ]
    assert rows(client.get("/incidents?status=&sort=-severity")) == [
        "API errors",
        "Old outage",
        "DB slow",
    ]
    page = text_of(client.get("/incidents?severity=SEV1&q=errors"))
    assert 'value="errors"' in page  # the form shows what was asked
    assert f'href="/incidents/{api}"' in page


def test_the_list_pages_by_twenty_keeping_the_filters(slackbot: Bot, client: Any):
    sign_in(client)
    for n in range(25):
        declare(slackbot, f"Incident number {n:02}", service="api")
    first = client.get("/incidents?service=api&sort=title")
    assert len(rows(first)) == 20
    assert rows(first)[0] == "Incident number 00"
    assert "Page 1 of 2" in text_of(first)
    assert "25 incidents" in text_of(first)
    assert "Previous" not in text_of(first)
    next_link = re.search(r'rel="next" href="([^"]+)"', text_of(first)).group(1)
    assert "service=api" in next_link and "sort=title" in next_link and "page=2" in next_link
    second = client.get("/incidents" + next_link.replace("&amp;", "&"))
    assert rows(second) == [f"Incident number {n}" for n in range(20, 25)]
    assert "Page 2 of 2" in text_of(second)
    assert 'rel="prev"' in text_of(second) and 'rel="next"' not in text_of(second)


def test_a_list_past_the_count_cap_says_so(slackbot: Bot, client: Any):
    sign_in(client)
    now = datetime.now(UTC)
    with slackbot.sessions.begin() as session:
        session.add_all(
            Incident(
                title=f"Bulk {n}",
                severity=Severity.SEV4,
                status=Status.OPEN,
                reporter=ALICE,
                created_at=now,
                updated_at=now,
            )
            for n in range(incidents.COUNT_AHEAD + 1)
        )
    page = text_of(client.get("/incidents"))
    assert f"Page 1 · {incidents.COUNT_AHEAD}+ incidents" in page
    assert " of " not in re.search(r'id="page-position">(.*?)</span>', page, re.S).group(1)
    assert 'rel="next"' in page


@pytest.mark.parametrize(
    "query, message",
    [
        ("severity=SEV9", "Unknown severity &#39;SEV9&#39;"),
        ("status=exploded", "Unknown status &#39;exploded&#39;"),
        ("sort=colour", "Can&#39;t sort by &#39;colour&#39;"),
        ("page=0", "Page: Must be greater than or equal to 1"),
        ("page=many", "Page: Not a valid integer."),
        ("q=" + "x" * 501, "Search: Longer than maximum length 500."),
        ("service=a%00b", "Service: A NUL character is not allowed."),
    ],
)
def test_bad_filters_show_the_message_not_a_crash(
    slackbot: Bot, client: Any, query: str, message: str
):
    sign_in(client)
    declare(slackbot)
    response = client.get(f"/incidents?{query}")
    assert response.status_code == 422
    assert message in problem(response)
    assert rows(response) == []
    assert re.search(r'<option value="SEV1"\s*>SEV1</option>', text_of(response))  # to fix it


# --- An incident's page ------------------------------------------------------------------------


def test_the_incident_page_shows_facts_milestones_timeline_and_screenshots(
    slackbot: Bot, client: Any
):
    sign_in(client)
    incident_id = declare(
        slackbot, "Payments down", description="Card payments fail", service="payments", owner=BOB
    )
    with slackbot.sessions.begin() as session:
        incidents.change_status(session, incident_id, "investigating", Actor(ALICE), note="on it")
        incidents.add_note(session, incident_id, Actor.token("alertmanager", is_admin=False), "5xx")
        image = screenshots.validate_image("graph.png", png())
        shot = screenshots.store_image(session, incident_id, Actor(ALICE), image)
    page = text_of(client.get(f"/incidents/{incident_id}"))
    assert f"INC-{incident_id}: Payments down" in page
    for fact in ("Card payments fail", "payments", BOB, ALICE, "SEV2 (high)", "investigating"):
        assert fact in page
    assert re.search(r"Acknowledged</dt><dd class=\"milestone\">.*\(\d+ s after declaring\)", page)
    timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', page, re.S).group(1)
    assert timeline.index("declared it as SEV2") < timeline.index("open → investigating")
    assert timeline.index("open → investigating") < timeline.index("API token alertmanager")
    assert "on it" in timeline and "5xx" in timeline
    image_url = f"/incidents/{incident_id}/screenshots/{shot}"
    assert f'<a href="{image_url}"><img src="{image_url}"' in page

    served = client.get(image_url)
    assert served.status_code == 200
    assert served.data == png()
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in served.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/incidents", "/incidents/{id}", "/api/v1/incidents/{id}"])
def test_pages_and_answers_are_not_kept_by_browsers_or_proxies(
    slackbot: Bot, client: Any, path: str
):
    sign_in(client)
    incident_id = declare(slackbot, "Payments down")

    response = client.get(path.format(id=incident_id))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_a_screenshot_is_served_only_under_its_own_incident(slackbot: Bot, client: Any):
    sign_in(client)
    first, second = declare(slackbot), declare(slackbot, "Another one")
    with slackbot.sessions.begin() as session:
        image = screenshots.validate_image("a.png", png())
        shot = screenshots.store_image(session, first, Actor(ALICE), image)
    assert client.get(f"/incidents/{second}/screenshots/{shot}").status_code == 404
    assert client.get(f"/incidents/{first}/screenshots/{shot + 1}").status_code == 404
    assert client.get(f"/incidents/{first}/screenshots/{shot}").status_code == 200


def test_a_missing_or_malformed_incident_is_a_404_or_422_page(client: Any):
    sign_in(client)
    missing = client.get("/incidents/999999")
    assert missing.status_code == 404
    assert "There is no incident INC-999999." in text_of(missing)
    assert client.get("/incidents/not-an-id").status_code == 422


def test_user_typed_text_is_escaped_everywhere(slackbot: Bot, client: Any):
    sign_in(client)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    incident_id = declare(slackbot, attack, description=attack, service=attack)
    with slackbot.sessions.begin() as session:
        incidents.add_note(session, incident_id, Actor(ALICE), attack)
    for url in ("/incidents", f"/incidents/{incident_id}", f"/incidents/{incident_id}/edit"):
        page = text_of(client.get(url))
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page, url


# --- Forms -------------------------------------------------------------------------------------


def test_the_status_buttons_move_the_incident(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    page = text_of(client.get(f"/incidents/{incident_id}"))
    assert re.findall(r'name="status" value="(\w+)"', page) == [
        "investigating",
        "mitigated",
        "closed",
        "resolved",
    ]
    response = post(
        client, f"/incidents/{incident_id}/status", status="investigating", seen_status="open"
    )
    assert flashed(client, response) == f"INC-{incident_id} is now investigating."
    assert incident(slackbot, incident_id).status == Status.INVESTIGATING

    response = post(
        client,
        f"/incidents/{incident_id}/status",
        status="resolved",
        seen_status="investigating",
        resolution="Rolled back",
        cause="Bad deploy",
    )
    assert flashed(client, response) == f"INC-{incident_id} is now resolved."
    resolved = incident(slackbot, incident_id)
    assert (resolved.status, resolved.resolution, resolved.cause) == (
        Status.RESOLVED,
        "Rolled back",
        "Bad deploy",
    )


def test_a_stale_or_forbidden_status_change_is_refused_and_changes_nothing(
    slackbot: Bot, client: Any
):
    sign_in(client)
    incident_id = declare(slackbot)
    with slackbot.sessions.begin() as session:
        incidents.change_status(session, incident_id, "mitigated", Actor(BOB))
    stale = post(
        client, f"/incidents/{incident_id}/status", status="investigating", seen_status="open"
    )
    assert stale.status_code == 409
    assert "changed while you were looking" in problem(stale)
    assert incident(slackbot, incident_id).status == Status.MITIGATED

    with slackbot.sessions.begin() as session:
        incidents.change_status(session, incident_id, "closed", Actor(BOB), resolution=FIXED)
    page = text_of(client.get(f"/incidents/{incident_id}"))
    assert 'name="status"' not in page and "Change severity" not in page  # final for Alice
    reopen = post(client, f"/incidents/{incident_id}/status", status="investigating")
    assert reopen.status_code == 403
    assert "only an incident admin can reopen it" in problem(reopen)
    bogus = post(client, f"/incidents/{incident_id}/status", status="exploded")
    assert bogus.status_code == 422
    assert incident(slackbot, incident_id).status == Status.CLOSED
    assert len(events(slackbot, incident_id)) == 3


def test_the_severity_form(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot, severity="SEV3")
    response = post(client, f"/incidents/{incident_id}/severity", severity="SEV1")
    assert flashed(client, response) == f"INC-{incident_id} is now SEV1."
    assert incident(slackbot, incident_id).severity == Severity.SEV1
    same = post(client, f"/incidents/{incident_id}/severity", severity="SEV1")
    assert same.status_code == 422
    assert f"INC-{incident_id} is already SEV1." in problem(same)
    unknown = post(client, f"/incidents/{incident_id}/severity", severity="SEV7")
    assert unknown.status_code == 422
    assert incident(slackbot, incident_id).severity == Severity.SEV1


def test_notes_are_added_and_deleted_by_their_author_only(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    response = post(client, f"/incidents/{incident_id}/notes", text="Rollback started")
    assert flashed(client, response) == f"Note added to INC-{incident_id}."
    note = events(slackbot, incident_id)[-1]
    assert (note.text, note.actor) == ("Rollback started", ALICE)

    blank = post(client, f"/incidents/{incident_id}/notes", text="   ")
    assert blank.status_code == 422
    assert problem(blank) == "A note needs some text."
    too_long = post(client, f"/incidents/{incident_id}/notes", text="x" * 3001)
    assert too_long.status_code == 422
    assert "x" * 3001 in text_of(too_long)  # what was typed is still there to fix
    assert len(events(slackbot, incident_id)) == 2

    sign_in(client, BOB)
    assert "Delete note" not in text_of(client.get(f"/incidents/{incident_id}"))
    refused = post(client, f"/incidents/{incident_id}/notes/{note.id}/delete")
    assert refused.status_code == 403
    assert "Only the note&#39;s author or an incident admin" in problem(refused)
    assert events(slackbot, incident_id)[1].text == "Rollback started"

    sign_in(client, ALICE)
    assert "Delete note" in text_of(client.get(f"/incidents/{incident_id}"))
    deleted = post(client, f"/incidents/{incident_id}/notes/{note.id}/delete")
    assert flashed(client, deleted) == f"The note was deleted from INC-{incident_id}."
    assert events(slackbot, incident_id)[1].deleted_by == ALICE
    again = post(client, f"/incidents/{incident_id}/notes/{note.id}/delete")
    assert again.status_code == 404


def test_the_edit_page_saves_only_what_the_person_changed(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot, "Slow checkout", service="web")
    form = text_of(client.get(f"/incidents/{incident_id}/edit"))
    seen = dict(re.findall(r'name="(seen_\w+)" value="(\w+)"', form))
    assert set(seen) == {f"seen_{name}" for name in incidents.EDITABLE_FIELDS}
    with slackbot.sessions.begin() as session:  # someone else edits the service meanwhile
        incidents.edit(session, incident_id, Actor(BOB), {"service": "checkout"})
    fields = {"title": "Very slow checkout", "service": "web", "category": "outage", **seen}
    fields |= {"description": "", "cause": "", "resolution": ""}
    response = post(client, f"/incidents/{incident_id}/edit", **fields)
    assert flashed(client, response) == f"Your edits to INC-{incident_id} are saved."
    edited = incident(slackbot, incident_id)
    assert (edited.title, edited.service, edited.category) == (
        "Very slow checkout",
        "checkout",
        "outage",
    )


def test_a_refused_edit_keeps_the_typing_and_changes_nothing(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot, "Slow checkout")
    form = text_of(client.get(f"/incidents/{incident_id}/edit"))
    seen = dict(re.findall(r'name="(seen_\w+)" value="(\w+)"', form))
    response = post(
        client, f"/incidents/{incident_id}/edit", title="ab", service="typed here", **seen
    )
    assert response.status_code == 422
    assert "Title" in problem(response)
    assert 'value="typed here"' in text_of(response)
    unknown = post(client, f"/incidents/{incident_id}/edit", category="gremlins", **seen)
    assert unknown.status_code == 422
    assert (incident(slackbot, incident_id).title, incident(slackbot, incident_id).service) == (
        "Slow checkout",
        None,
    )
    assert len(events(slackbot, incident_id)) == 1


def test_a_screenshot_upload_is_stored_and_shown(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    url = f"/incidents/{incident_id}/screenshots"

    def upload(data: bytes, name: str) -> TestResponse:
        form = {"csrf_token": CSRF, "caption": "the graph", "screenshot": (io.BytesIO(data), name)}
        return client.post(url, data=form, content_type="multipart/form-data")

    assert flashed(client, upload(png(), "graph.png")) == (
        f"graph.png is attached to INC-{incident_id}."
    )
    again = flashed(client, upload(png(), "again.png"))
    assert again == f"INC-{incident_id} already had this image; nothing changed."
    with slackbot.sessions() as session:
        shots = screenshots.list_screenshots(session, incident_id)
    assert [(s.filename, s.caption, s.uploaded_by) for s in shots] == [
        ("graph.png", "the graph", ALICE)
    ]
    assert f'src="{url}/{shots[0].id}"' in text_of(client.get(f"/incidents/{incident_id}"))

    fake = upload(b"<html><body>not an image</body></html>", "evil.png")
    assert fake.status_code == 422
    assert problem(fake).startswith("evil.png was not kept:")
    truncated = upload(png()[:40], "cut.png")
    assert truncated.status_code == 422
    nothing = client.post(url, data={"csrf_token": CSRF}, content_type="multipart/form-data")
    assert nothing.status_code == 422
    assert problem(nothing) == "Choose an image file to attach."
    with slackbot.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Screenshot)) == 1
    assert len(events(slackbot, incident_id)) == 2  # declared, attached


def test_an_image_over_the_size_limit_is_refused(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
):
    with running_bot(fake_slack, engine, committing_sessions, max_screenshot_bytes=2048) as bot:
        client = bot.web.test_client()
        sign_in(client)
        incident_id = declare(bot)
        big = io.BytesIO()
        Image.effect_noise((64, 64), 100).save(big, "PNG")
        assert len(big.getvalue()) > 2048
        form = {"csrf_token": CSRF, "screenshot": (io.BytesIO(big.getvalue()), "big.png")}
        response = client.post(
            f"/incidents/{incident_id}/screenshots", data=form, content_type="multipart/form-data"
        )
        assert response.status_code == 422
        assert problem(response).startswith("big.png was not kept: it is larger than the")
        assert len(events(bot, incident_id)) == 1


def test_declaring_from_the_form(slackbot: Bot, client: Any):
    sign_in(client)
    form = text_of(client.get("/incidents/new"))
    assert 'id="declare-form"' in form
    response = post(
        client,
        "/incidents/new",
        title="Search is down",
        severity="SEV1",
        service="search",
        category="outage",
        description="No results",
    )
    incident_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert flashed(client, response) == f"INC-{incident_id} is declared."
    declared = incident(slackbot, incident_id)
    assert (declared.title, declared.severity, declared.reporter, declared.category) == (
        "Search is down",
        Severity.SEV1,
        ALICE,
        "outage",
    )

    refused = post(client, "/incidents/new", title="x", severity="SEV1", service="kept")
    assert refused.status_code == 422
    assert "Title" in problem(refused)
    assert 'value="kept"' in text_of(refused)
    assert post(client, "/incidents/new", title="Fine title", severity="SEV9").status_code == 422
    with slackbot.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1


def test_only_an_admin_deletes_an_incident_after_confirming(slackbot: Bot, client: Any):
    incident_id = declare(slackbot)
    sign_in(client, ALICE)
    assert "delete-incident" not in text_of(client.get(f"/incidents/{incident_id}"))
    assert client.get(f"/incidents/{incident_id}/delete").status_code == 403
    refused = post(client, f"/incidents/{incident_id}/delete")
    assert refused.status_code == 403
    assert f"Only an incident admin can delete INC-{incident_id}." in problem(refused)
    assert incident(slackbot, incident_id).title == "Checkout is failing"

    sign_in(client, ADMIN_ID)
    page = text_of(client.get(f"/incidents/{incident_id}"))
    assert f'href="/incidents/{incident_id}/delete"' in page
    confirm = text_of(client.get(f"/incidents/{incident_id}/delete"))
    assert 'id="confirm-delete"' in confirm
    response = post(client, f"/incidents/{incident_id}/delete")
    assert response.headers["Location"] == "/incidents"
    assert flashed(client, response) == f"INC-{incident_id} (Checkout is failing) is deleted."
    assert client.get(f"/incidents/{incident_id}").status_code == 404


# --- CSRF --------------------------------------------------------------------------------------


FORMS = [
    ("status", {"status": "investigating"}),
    ("severity", {"severity": "SEV1"}),
    ("notes", {"text": "hello"}),
    ("edit", {"title": "A new title"}),
    ("delete", {}),
    ("screenshots", {}),
]


@pytest.fixture
def admin_client(slackbot: Bot, client: Any) -> Iterator[Any]:
    sign_in(client, ADMIN_ID)
    yield client


@pytest.mark.parametrize("token", [None, "forged-token"])
@pytest.mark.parametrize("action, form", FORMS)
def test_a_form_without_this_sessions_token_is_refused_and_changes_nothing(
    slackbot: Bot, admin_client: Any, action: str, form: dict[str, str], token: str | None
):
    incident_id = declare(slackbot)
    sent = {**form, **({} if token is None else {"csrf_token": token})}
    response = admin_client.post(f"/incidents/{incident_id}/{action}", data=sent)
    assert response.status_code == 403
    assert "did not come from this site" in text_of(response)
    assert incident(slackbot, incident_id).status == Status.OPEN
    assert len(events(slackbot, incident_id)) == 1


def test_a_declaration_without_the_token_is_refused(slackbot: Bot, admin_client: Any):
    declared = admin_client.post("/incidents/new", data={"title": "Sneaky", "severity": "SEV1"})
    assert declared.status_code == 403
    with slackbot.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_a_note_deletion_without_the_token_is_refused(slackbot: Bot, admin_client: Any):
    incident_id = declare(slackbot)
    with slackbot.sessions.begin() as session:
        note = incidents.add_note(session, incident_id, Actor(ADMIN_ID), "keep me")
    response = admin_client.post(f"/incidents/{incident_id}/notes/{note.id}/delete")
    assert response.status_code == 403
    assert events(slackbot, incident_id)[-1].text == "keep me"


def test_timestamps_are_shown_in_the_configured_zone(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    declared = incident(slackbot, incident_id).created_at
    shown = declared.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert shown in text_of(client.get(f"/incidents/{incident_id}"))
