"""The post-mortem as a review: the impact window from the review's fields, the review's own
sections, follow-ups as a checklist of every status with their tickets, and the post-mortem with
its images beside it: a zip from the web (`?images=inline`) and a folder from the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents, reports
from bot.incidents import Actor, IncidentDraft, followups, review, screenshots, tokens
from db.models import ApiToken, FollowUpStatus, Screenshot
from tests.fakeslack import defaults
from tests.slackbot import Bot, sign_in_client
from tests.steps import FIXED

BASE = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ALICE = Actor(defaults.USER_ID)  # the fake's "Alice Example"
BOB = Actor("U0BOB00001")
CAROL = "U0CAROL001"
RULES = followups.FollowUpRules()
REPO_ROOT = Path(__file__).resolve().parent.parent


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def resolved_incident(session: Session) -> int:
    incident = incidents.declare(
        session,
        IncidentDraft(title="Checkout is failing", severity="SEV2", tell_people=False),
        ALICE,
        now=BASE,
    )
    incidents.change_status(session, incident.id, "resolved", BOB, resolution=FIXED, now=at(100))
    return incident.id


def add(session: Session, incident_id: int, title: str, minute: int, **draft: Any) -> int:
    made = followups.add_followup(
        session, incident_id, followups.FollowUpDraft(title, **draft), BOB, RULES, now=at(minute)
    )
    return made.id


def reviewed(session: Session) -> tuple[int, dict[str, int]]:
    """A resolved incident with its review written and a follow-up of every kind."""
    incident_id = resolved_incident(session)
    review.edit_review(
        session,
        incident_id,
        BOB,
        {
            # Customers saw errors 20 minutes before anyone declared, until 10 before the fix.
            "impact_started_at": at(-20),
            "impact_ended_at": at(90),
            "customer_impact": "About 30% of checkouts failed.\nNo payment was taken twice.",
            "contributing_factors": "- The deploy skipped the canary\n- No alert on 5xx rate",
            "went_well": "The rollback took 4 minutes.",
            "went_badly": "Nobody was paged for 20 minutes.",
            "review_status": "in_review",
            "reviewer": CAROL,
        },
        now=at(200),
    )
    ids = {
        "open": add(
            session,
            incident_id,
            "Alert on the 5xx rate",
            110,
            owner=BOB.user_id,
            due_on=date(2025, 3, 20),
            priority="high",
        ),
        "done": add(session, incident_id, "Canary every deploy", 111, owner=ALICE.user_id),
        "wont": add(session, incident_id, "Rewrite checkout in Rust", 112, priority="low"),
        "bare": add(session, incident_id, "Write the runbook", 113),
    }
    followups.set_followup_status(session, ids["done"], FollowUpStatus.DONE, ALICE, now=at(300))
    followups.set_followup_status(session, ids["wont"], "wont_do", BOB, now=at(1500))
    # A ticket in a private repository: the link is shown as it is (readers with access follow
    # it; the document fetches nothing).
    followups.record_ticket(
        session,
        ids["open"],
        "github",
        "acme/private-ops#42",
        "https://github.com/acme/private-ops/issues/42",
        now=at(115),
    )
    return incident_id, ids


def section(document: str, heading: str) -> str:
    """The body of `## heading`, up to the next `## `."""
    return document.split(f"\n## {heading}\n\n", 1)[1].split("\n\n## ", 1)[0].rstrip("\n")


def test_a_reviewed_incident_has_every_section_filled(session: Session) -> None:
    incident_id, ids = reviewed(session)

    document = reports.postmortem_markdown(
        reports.postmortem_facts(session, incident_id), name={ALICE.user_id: "Alice"}.get
    )

    alice = f"Alice ({ALICE.user_id})"
    assert f"- Review: in review, reviewer {CAROL}\n" in document
    # The window is the review's, not the declaration's: 20 minutes longer at the start, 10
    # shorter at the end.
    assert section(document, "Impact") == (
        "- Started: 2025-03-03 08:40 UTC\n"
        "- Ended: 2025-03-03 10:30 UTC\n"
        "- Duration: 1 h 50 min\n\n"
        "### Customer impact\n\n"
        "About 30% of checkouts failed.\\\nNo payment was taken twice."
    )
    assert section(document, "Contributing factors") == (
        "\\- The deploy skipped the canary\\\n\\- No alert on 5xx rate"
    )
    assert section(document, "What went well") == "The rollback took 4 minutes."
    assert section(document, "What went badly") == "Nobody was paged for 20 minutes."
    fu = {key: f"FU-{number}" for key, number in ids.items()}
    assert section(document, "Follow-ups") == (
        "2 of 4 done or dropped.\n\n"
        f"- [ ] {fu['open']}: Alert on the 5xx rate · owner {BOB.user_id} · due 2025-03-20 · "
        "priority high · ticket [acme/private-ops\\#42](<https://github.com/acme/private-ops/issues/42>)\n"
        f"- [ ] {fu['bare']}: Write the runbook · owner nobody · no due date · priority medium\n"
        f"- [x] {fu['done']}: Canary every deploy · done by {alice} on 2025-03-03 · "
        f"owner {alice} · no due date · priority medium\n"
        f"- [x] {fu['wont']}: Rewrite checkout in Rust · won't do (marked by {BOB.user_id} on "
        "2025-03-04) · owner nobody · no due date · priority low"
    )
    assert section(document, "Review") == f"- Status: in review\n- Reviewer: {CAROL}"
    # The work after the incident is in its timeline too.
    timeline = section(document, "Timeline (UTC)")
    assert f"· {BOB.user_id} · moved the review to in review\n" in timeline
    assert f"· {BOB.user_id} · made {CAROL} the reviewer\n" in timeline
    assert "· set the impact start to 2025-03-03 08:40 UTC\n" in timeline
    assert f"added the follow-up {fu['open']} for {BOB.user_id} due 2025-03-20:\n" in timeline
    assert f"marked {fu['done']} (Canary every deploy) done\n" in timeline
    assert f"marked {fu['wont']} (Rewrite checkout in Rust) won't do" in timeline
    assert (
        f"exported {fu['open']} (Alert on the 5xx rate) to github as "
        "[acme/private-ops\\#42](<https://github.com/acme/private-ops/issues/42>)"
    ) in timeline
    headings = [line for line in document.splitlines() if line.startswith("#")]
    assert headings[1:] == [
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


def test_without_review_fields_each_section_says_so(session: Session) -> None:
    incident_id = resolved_incident(session)

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident_id))

    assert section(document, "Impact") == (
        "- Started: 2025-03-03 09:00 UTC (declared; no impact start recorded)\n"
        "- Ended: 2025-03-03 10:40 UTC (resolved; no impact end recorded)\n"
        "- Duration: 1 h 40 min\n\n"
        "### Customer impact\n\nNot recorded."
    )
    for heading in ("Contributing factors", "What went well", "What went badly"):
        assert section(document, heading) == "Not recorded."
    assert section(document, "Follow-ups") == "None yet."
    assert document.endswith("## Review\n\n- Status: draft\n- Reviewer: nobody\n")
    assert "- Review: draft, reviewer nobody\n" in document


def test_only_the_impact_start_given_ends_at_the_resolution(session: Session) -> None:
    incident_id = resolved_incident(session)
    review.edit_review(session, incident_id, BOB, {"impact_started_at": at(-60)}, now=at(120))

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident_id))

    assert section(document, "Impact").startswith(
        "- Started: 2025-03-03 08:00 UTC\n"
        "- Ended: 2025-03-03 10:40 UTC (resolved; no impact end recorded)\n"
        "- Duration: 2 h 40 min\n"
    )
    # The milestones (and MTTR) still count from the declaration.
    assert "| Resolved (MTTR) | 2025-03-03 10:40 | 1 h 40 min |" in document


def test_a_ticket_link_that_is_not_http_is_not_made_a_link(session: Session) -> None:
    incident_id = resolved_incident(session)
    number = add(session, incident_id, "Fix [it](javascript:alert(1))", 110)
    followups.record_ticket(
        session, number, "jira", "OPS-7", "javascript:alert(document.cookie)", now=at(111)
    )
    other = add(session, incident_id, "Break out", 112)
    followups.record_ticket(
        session, other, "jira", "OPS-8", "https://jira.example.com/x> [evil](http://e)", now=at(113)
    )

    document = reports.postmortem_markdown(reports.postmortem_facts(session, incident_id))

    items = section(document, "Follow-ups")
    assert f"FU-{number}: Fix \\[it\\](javascript:alert(1)) · " in items
    assert items.count("ticket OPS-7") == 1 and "(<javascript" not in document
    assert "ticket OPS-8\n" in items + "\n" and "[evil]" not in document


# --- Image names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "mime", "name"),
    [
        ("graph.png", "image/png", "7-graph.png"),
        ("../../../etc/passwd", "image/png", "7-passwd.png"),
        ("..\\..\\windows\\evil.gif", "image/gif", "7-evil.gif"),
        ("photo.JPG", "image/jpeg", "7-photo.jpg"),
        ("not really.gif", "image/png", "7-not-really.png"),
        (".hidden", "image/webp", "7-hidden.webp"),
        ("Скриншот 2025.png", "image/png", "7-2025.png"),
        ("Скриншот.png", "image/png", "7.png"),
        ("a" * 300 + ".png", "image/png", f"7-{'a' * 60}.png"),
        ("/", "image/png", "7.png"),
    ],
)
def test_image_names_are_safe_unique_and_keep_the_checked_type(
    filename: str, mime: str, name: str
) -> None:
    assert reports.image_name(Screenshot(id=7, filename=filename, mime_type=mime)) == name


# --- On the web: ?images=inline --------------------------------------------------------------


def with_screenshots(session: Session) -> tuple[int, list[int]]:
    incident_id, _ = reviewed(session)
    shot_ids = []
    for minute, (name, colour) in enumerate(
        [("graph.png", (200, 0, 0)), ("../../../../etc/cron.d/evil.png", (0, 200, 0))]
    ):
        image = screenshots.validate_image(name, png(colour))
        shot_id = screenshots.store_image(
            session, incident_id, BOB, image, caption=f"Shot {minute}", now=at(30 + minute)
        )
        assert shot_id is not None
        shot_ids.append(shot_id)
    return incident_id, shot_ids


@pytest.fixture
def shots(slackbot: Bot) -> tuple[int, list[int]]:
    with slackbot.sessions.begin() as session:
        return with_screenshots(session)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_images_inline_is_a_zip_of_the_markdown_and_its_images(
    slackbot: Bot, shots: tuple[int, list[int]]
) -> None:
    incident_id, (graph_id, evil_id) = shots
    client = slackbot.web.test_client()
    sign_in_client(client, ALICE.user_id)

    response = client.get(f"/incidents/{incident_id}/postmortem?images=inline")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=INC-{incident_id}-postmortem.zip"
    )
    assert response.headers["Cache-Control"] == "private, no-store"
    files = unzip(response.data)
    graph, evil = f"images/{graph_id}-graph.png", f"images/{evil_id}-evil.png"
    assert list(files) == [f"INC-{incident_id}-postmortem.md", graph, evil]
    assert files[graph] == png((200, 0, 0)) and files[evil] == png((0, 200, 0))
    document = files[f"INC-{incident_id}-postmortem.md"].decode()
    assert f"  ![Shot 0]({graph})\n" in document and f"  ![Shot 1]({evil})\n" in document
    # The same document as the Markdown download, but for the image links.
    plain = client.get(f"/incidents/{incident_id}/postmortem").get_data(as_text=True)
    assert "![" not in plain
    assert [line for line in document.splitlines() if "![" not in line] == plain.splitlines()
    # The same incident gives the same zip, byte for byte.
    again = client.get(f"/incidents/{incident_id}/postmortem?images=inline")
    assert again.data == response.data


def test_the_api_answers_the_zip_to_a_token(slackbot: Bot, shots: tuple[int, list[int]]) -> None:
    incident_id, _ = shots
    name = f"pm-{uuid.uuid4().hex[:12]}"
    with slackbot.sessions.begin() as session:
        token, row = tokens.create_token(session, name)
    headers = {"Authorization": f"Bearer {token}"}
    client = slackbot.web.test_client()

    response = client.get(
        f"/api/v1/incidents/{incident_id}/postmortem?images=inline", headers=headers
    )
    wrong = client.get(f"/api/v1/incidents/{incident_id}/postmortem?images=embed", headers=headers)

    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert len(unzip(response.data)) == 3
    assert wrong.status_code == 422 and "images" in wrong.get_data(as_text=True)
    with slackbot.sessions.begin() as session:
        session.delete(session.get_one(ApiToken, row.id))


@pytest.mark.parametrize("images", ["embed", "INLINE!", "../"])
def test_other_images_values_are_refused_on_the_page(
    slackbot: Bot, shots: tuple[int, list[int]], images: str
) -> None:
    incident_id, _ = shots
    client = slackbot.web.test_client()
    sign_in_client(client, ALICE.user_id)

    response = client.get(f"/incidents/{incident_id}/postmortem", query_string={"images": images})

    assert response.status_code == 422
    assert "images must be inline" in response.get_data(as_text=True)
    assert "Content-Disposition" not in response.headers


def test_the_incident_page_offers_the_zip(slackbot: Bot, shots: tuple[int, list[int]]) -> None:
    incident_id, _ = shots
    client = slackbot.web.test_client()
    sign_in_client(client, ALICE.user_id)

    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)

    assert f'href="/incidents/{incident_id}/postmortem?images=inline"' in html


def test_links_is_the_default(slackbot: Bot, shots: tuple[int, list[int]]) -> None:
    incident_id, _ = shots
    client = slackbot.web.test_client()
    sign_in_client(client, ALICE.user_id)

    linked = client.get(f"/incidents/{incident_id}/postmortem?images=links")

    assert linked.status_code == 200 and linked.mimetype == "text/markdown"


# --- The CLI ---------------------------------------------------------------------------------


@pytest.fixture
def committed(committing_sessions: sessionmaker[Session]) -> tuple[int, list[int]]:
    with committing_sessions.begin() as session:
        return with_screenshots(session)


def run_postmortem(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    environ.pop("PUBLIC_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", "postmortem", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_writes_a_folder_with_the_images_beside_the_markdown(
    database_url: str, engine: Any, committed: tuple[int, list[int]], tmp_path: Path
) -> None:
    incident_id, (graph_id, evil_id) = committed
    folder = tmp_path / "wiki"

    done = run_postmortem(
        database_url, f"INC-{incident_id}", "--inline-images", "--out", str(folder)
    )

    assert done.returncode == 0, done.stderr
    document = folder / f"INC-{incident_id}-postmortem.md"
    graph, evil = (
        folder / "images" / f"{graph_id}-graph.png",
        folder / "images" / f"{evil_id}-evil.png",
    )
    assert done.stdout.splitlines() == [str(document), str(graph), str(evil)]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "wiki",
        f"wiki/INC-{incident_id}-postmortem.md",
        "wiki/images",
        f"wiki/images/{graph_id}-graph.png",
        f"wiki/images/{evil_id}-evil.png",
    ]
    assert graph.read_bytes() == png((200, 0, 0)) and evil.read_bytes() == png((0, 200, 0))
    text = document.read_text()
    assert f"![Shot 0](images/{graph_id}-graph.png)" in text
    assert "## Follow-ups\n\n2 of 4 done or dropped.\n" in text
    assert "and its 2 image(s)" in done.stderr
    # Run again: the same files, replaced.
    again = run_postmortem(database_url, str(incident_id), "--inline-images", "--out", str(folder))
    assert again.returncode == 0 and document.read_text() == text


def test_the_cli_prints_the_markdown_and_refuses_unknown_incidents(
    database_url: str, engine: Any, committed: tuple[int, list[int]], tmp_path: Path
) -> None:
    incident_id, _ = committed

    printed = run_postmortem(database_url, f"#{incident_id}")
    missing = run_postmortem(database_url, "INC-424242", "--inline-images", "--out", str(tmp_path))
    blocked_by = tmp_path / "a-file"
    blocked_by.write_text("in the way")
    blocked = run_postmortem(database_url, str(incident_id), "--out", str(blocked_by))

    assert printed.returncode == 0
    assert printed.stdout.startswith(f"# INC-{incident_id} (SEV2, resolved): Checkout is failing\n")
    # Without PUBLIC_URL the screenshots are listed, not linked.
    assert "![" not in printed.stdout and "- graph.png · " in printed.stdout
    assert (missing.returncode, missing.stderr.strip()) == (1, "There is no incident INC-424242.")
    assert list(tmp_path.iterdir()) == [blocked_by]
    assert blocked.returncode == 1 and "Can't write the post-mortem" in blocked.stderr
