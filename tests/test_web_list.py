"""The incident list's Next and Previous links keep everything the list was asked for: each
filter, the search and the sort, "any status" included (a blank status, unlike no status at all,
is not the active ones)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from bot import incidents
from bot.incidents import Actor
from tests.slackbot import ADMIN_ID, Bot
from tests.test_api import person_caller

ADMIN = Actor.of(ADMIN_ID, [ADMIN_ID])
OWNER = "U0OWNER001"
# As a browser sends the filters form: every field, the blank ones too.
ASKED = {
    "status": "",
    "severity": "SEV2",
    "service": "api",
    "category": "outage",
    "owner": OWNER,
    "sort": "-title",
    "q": "checkout",
}


def titles(page: str) -> list[str]:
    return re.findall(r'<td class="title"><a href="/incidents/\d+">(.*?)</a></td>', page)


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def test_next_and_previous_keep_every_filter_the_search_and_the_sort(slackbot: Bot):
    matching = [f"Checkout failure {n:02}" for n in range(25)]
    with slackbot.sessions.begin() as session:
        for n, title in enumerate(matching):
            draft = incidents.IncidentDraft(
                title=title, severity="SEV2", service="api", category="outage", owner=OWNER
            )
            incident = incidents.declare(session, draft, ADMIN)
            if n % 2:  # half of them resolved: "any status" must keep showing them
                incidents.change_status(session, incident.id, "resolved", ADMIN, resolution="ok")
        # One that each filter leaves out.
        for other in [
            {"severity": "SEV3"},
            {"service": "db"},
            {"category": "security"},
            {"owner": "U0SOMEONE1"},
            {"title": "Login failure 99"},
        ]:
            fields = {
                "title": "Checkout failure 99",
                "severity": "SEV2",
                "service": "api",
                "category": "outage",
                "owner": OWNER,
                **other,
            }
            incidents.declare(session, incidents.IncidentDraft(**fields), ADMIN)
    client = person_caller(slackbot).client
    expected = sorted(matching, reverse=True)

    first = client.get("/incidents", query_string=ASKED).get_data(as_text=True)
    assert titles(first) == expected[:20]
    next_link = link(first, "next")
    assert next_link is not None
    query = parse_qs(urlsplit(next_link).query, keep_blank_values=True)
    assert query == {**{name: [value] for name, value in ASKED.items()}, "page": ["2"]}

    second = client.get("/incidents" + next_link).get_data(as_text=True)
    assert titles(second) == expected[20:]
    assert link(second, "next") is None
    previous = link(second, "prev")
    assert previous is not None
    assert titles(client.get("/incidents" + previous).get_data(as_text=True)) == expected[:20]
