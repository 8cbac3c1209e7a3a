"""No request without its form's CSRF token changes anything: every route of the web app (pages
and API), every method, from a signed-in admin's browser. GET, HEAD and OPTIONS are safe by
definition, and Flask answers HEAD with the GET view, so a view must tell them from POST itself."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image
from sqlalchemy import text

from bot import incidents
from bot.incidents import Actor, followups, screenshots
from db.models import Base
from tests.slackbot import ADMIN_ID, Bot, sign_in_client

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
ADMIN = Actor.of(ADMIN_ID, [ADMIN_ID])
# What a person's records are made of; follow-ups too once they have a table.
RECORD_TABLES = (
    "incidents",
    "incident_events",
    "incident_roles",
    "incident_subscribers",
    "screenshots",
    "deliveries",
)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, "PNG")
    return out.getvalue()


def _records(bot: Bot) -> dict[str, list[Any]]:
    tables = [*RECORD_TABLES, *(t for t in Base.metadata.tables if "follow" in t)]
    with bot.sessions() as session:
        return {
            table: list(session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")))
            for table in tables
        }


def _paths(bot: Bot, values: dict[str, int | str]) -> list[str]:
    """Every rule's path, its ids those of real records (a static file's name made up)."""

    def value(argument: re.Match[str]) -> str:
        name = argument.group(1)
        assert name in values or name == "filename", f"a route needs a value for {name}"
        return str(values.get(name, "x"))

    return [
        re.sub(r"<(?:[^:>]+:)?([^>]+)>", value, rule.rule) for rule in bot.web.url_map.iter_rules()
    ]


def test_no_request_without_a_csrf_token_changes_any_record(slackbot: Bot):
    with slackbot.sessions.begin() as session:
        draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV2")
        incident_id = incidents.declare(session, draft, ADMIN).id
        note_id = incidents.add_note(session, incident_id, ADMIN, "rolled back the deploy").id
        image = screenshots.validate_image("graph.png", _png())
        screenshot_id = screenshots.attach_image(session, incident_id, ADMIN, image)
        followup = followups.FollowUpDraft(title="Alert on the error rate")
        rules = followups.FollowUpRules(tracker="github")
        followup_id = followups.add_followup(session, incident_id, followup, ADMIN, rules).id
    values: dict[str, int | str] = {
        "incident_id": incident_id,
        "note_id": note_id,
        "screenshot_id": screenshot_id,
        "role": "comms",
        "followup_id": followup_id,
    }
    paths = _paths(slackbot, values)
    assert f"/incidents/{incident_id}/delete" in paths and "/api/v1/incidents" in paths
    assert f"/followups/{followup_id}/status" in paths and "/api/v1/followups" in paths
    before = _records(slackbot)
    client = slackbot.web.test_client()
    sign_in_client(client, ADMIN_ID, csrf_token="the-token-no-request-here-sends")
    form = {
        "status": "resolved",
        "resolution": "rolled back",
        "severity": "SEV1",
        "title": "Changed by a forged request",
        "text": "a forged note",
        "summary": "a forged update",
        "person": ADMIN_ID,
        "user": ADMIN_ID,
        "next_update": "900",
        "followup_title": "a forged follow-up",
        "owner": ADMIN_ID,
        "due": "in 2w",
        "customer_impact": "forged",
        "seen_customer_impact": "",
    }

    for path in paths:
        for method in METHODS:
            answer = client.open(path, method=method, data=form)
            assert answer.status_code < 500, (method, path, answer.get_data(as_text=True)[:500])
            assert _records(slackbot) == before, f"{method} {path} changed a record"
            assert client.get("/api/v1/incidents").status_code == 200  # still signed in
