"""Jira Cloud's REST API (v3) for follow-ups: an issue per follow-up, found again by its label.

- Create: POST /rest/api/3/issue, the description in Atlassian Document Format, the label
  `incident-bot-fu-12`, the due date when there is one. Basic auth with JIRA_EMAIL and
  JIRA_API_TOKEN.
- After an unknown outcome: JQL `labels = "incident-bot-fu-12"` (POST /rest/api/3/search/jql),
  no sooner than a minute after the attempt. Jira's search is eventually consistent (and entity
  properties can't be searched by a token-only client): an issue still unindexed after that
  minute is not found, and is made a second time. Rare, and said so in the README.
- 429 (and a 503 naming Retry-After) waits; 400, 401, 403 and 404 end the export.
"""

from __future__ import annotations

import base64
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from bot.settings_followups import JiraSettings
from db.models import FollowUpStatus

from .trackers import (
    TRACKER_TIMEOUT,
    Answer,
    ExportDraft,
    Ticket,
    TrackerFailure,
    connection_failure,
    request,
)

PERMANENT = frozenset({400, 401, 403, 404})
# Jira's search may not list an issue this soon after it was made.
SEARCH_GRACE = timedelta(seconds=60)
WONT_DO_RESOLUTIONS = frozenset({"won't do", "won't fix", "wont do", "wont fix"})


def label(followup_id: int) -> str:
    return f"incident-bot-fu-{followup_id}"


def document(lines: list[str]) -> dict[str, Any]:
    """Atlassian Document Format: a paragraph per line."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines
        ],
    }


def issue_status(fields: dict[str, Any]) -> FollowUpStatus:
    """An issue's status category as a follow-up's status: done (won't do by its resolution)."""
    status = fields.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key")
    if category != "done":
        return FollowUpStatus.OPEN
    resolution = str((fields.get("resolution") or {}).get("name") or "").strip().lower()
    resolution = resolution.replace("\u2019", "'")
    return FollowUpStatus.WONT_DO if resolution in WONT_DO_RESOLUTIONS else FollowUpStatus.DONE


def retry_after(answer: Answer) -> int | None:
    header = answer.header("Retry-After")
    if answer.status == 429:
        return max(int(header), 1) if header and header.strip().isdigit() else 10
    if answer.status == 503 and header and header.strip().isdigit():
        return max(int(header), 1)
    return None


class Jira:
    name = "jira"
    look_grace = SEARCH_GRACE

    def __init__(self, settings: JiraSettings, timeout: float = TRACKER_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        pair = f"{settings.email}:{settings.api_token}".encode()
        self._auth = "Basic " + base64.b64encode(pair).decode()

    def _call(
        self, method: str, path: str, body: object = None, *, creating: bool = False
    ) -> Answer:
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        try:
            answer = request(
                method, self.settings.url + path, headers=headers, timeout=self.timeout, body=body
            )
        except OSError as error:
            raise connection_failure(error, unknown=creating) from error
        if 200 <= answer.status < 300:
            return answer
        code, reason = f"jira_{answer.status}", answer.reason()
        wait = retry_after(answer)
        if wait is not None:
            raise TrackerFailure(code, reason, retry_after=wait)
        if answer.status in PERMANENT:
            raise TrackerFailure(code, reason or "refused", permanent=True)
        raise TrackerFailure(code, reason, unknown=creating and answer.status >= 500)

    def create(self, draft: ExportDraft) -> Ticket:
        fields: dict[str, Any] = {
            "project": {"key": self.settings.project},
            "summary": draft.title,
            "issuetype": {"name": self.settings.issue_type},
            "labels": [label(draft.followup_id)],
            "description": document(draft.lines()),
        }
        if draft.due_on is not None:
            fields["duedate"] = draft.due_on.isoformat()
        answer = self._call("POST", "/rest/api/3/issue", {"fields": fields}, creating=True)
        key = (answer.body or {}).get("key") if isinstance(answer.body, dict) else None
        if not key:
            raise TrackerFailure("jira_answer", "the answer names no issue", unknown=True)
        return self.ticket(str(key))

    def find(self, draft: ExportDraft, since: datetime) -> Ticket | None:
        """The follow-up's issue by its label, if Jira's search lists it yet (the oldest, if a
        lagging search made two)."""
        query = {
            "jql": f'labels = "{label(draft.followup_id)}" ORDER BY created ASC',
            "fields": ["summary", "labels"],
            "maxResults": 10,
        }
        answer = self._call("POST", "/rest/api/3/search/jql", query)
        issues = (answer.body or {}).get("issues") if isinstance(answer.body, dict) else None
        for issue in issues or []:
            if issue.get("key"):
                return self.ticket(str(issue["key"]))
        return None

    def state(self, key: str) -> FollowUpStatus:
        path = f"/rest/api/3/issue/{urllib.parse.quote(key)}?fields=status,resolution"
        answer = self._call("GET", path)
        issue = answer.body if isinstance(answer.body, dict) else {}
        return issue_status(issue.get("fields") or {})

    def ticket(self, key: str) -> Ticket:
        return Ticket(key, f"{self.settings.url}/browse/{key}")
