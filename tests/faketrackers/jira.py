"""A fake Jira Cloud (REST v3) on loopback: issues of one project made with basic auth, their
descriptions checked as Atlassian Document Format, a JQL search by label that may lag (Jira's
search is eventually consistent), status changes, and the webhook an update sends.

    with FakeJira() as jira:  # JIRA_URL=jira.url, JIRA_EMAIL/JIRA_API_TOKEN as below
        jira.search_lag = 5.0  # the search lists an issue only 5 s after it was made
        jira.drop_after("create")
        jira.resolve("OPS-1", "Won't Do")
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from typing import Any

from .base import Answer, Call, FakeService

EMAIL = "bot@example.com"
API_TOKEN = "jira-fake-token"
PROJECT = "OPS"
ISSUE_TYPES = ("Task", "Bug")
_LABEL_JQL = re.compile(r'^\s*labels\s*=\s*"([^"]+)"(\s+ORDER BY .*)?$', re.IGNORECASE)
_KEY = r"(?P<key>[A-Z][A-Z0-9_]*-[0-9]+)"
OPEN = {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}
DONE = {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}


def is_adf(doc: Any) -> bool:
    """A document node of version 1 whose blocks hold text nodes (what the bot writes)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return False
    blocks = doc.get("content")
    return isinstance(blocks, list) and all(
        isinstance(b, dict)
        and b.get("type") == "paragraph"
        and all(
            isinstance(t, dict)
            and t.get("type") == "text"
            and isinstance(t.get("text"), str)
            and t["text"] != ""
            for t in b.get("content") or []
        )
        for b in blocks
    )


class FakeJira(FakeService):
    def __init__(self, email: str = EMAIL, api_token: str = API_TOKEN, project: str = PROJECT):
        super().__init__()
        self.email, self.api_token, self.project = email, api_token, project
        self.issues: list[dict[str, Any]] = []
        # Seconds after its creation before the search lists an issue.
        self.search_lag = 0.0
        self.route("POST", "/rest/api/3/issue", "create", self._create)
        self.route("POST", "/rest/api/3/search/jql", "search", self._search)
        self.route("GET", "/rest/api/3/search/jql", "search", self._search)
        self.route("GET", f"/rest/api/3/issue/{_KEY}", "get", self._get)

    def authorized(self, headers: dict[str, str]) -> bool:
        pair = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return hmac.compare_digest(
            headers.get("authorization", "").encode(), f"Basic {pair}".encode()
        )

    def unauthorized(self) -> Answer:
        return 401, {"errorMessages": ["You are not authenticated."], "errors": {}}, {}

    # --- the tests' side ------------------------------------------------------------------------

    def all_issues(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(i) for i in self.issues]

    def issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            return next(i for i in self.issues if i["key"] == key)

    def add_issue(self, summary: str, labels: tuple[str, ...] = ()) -> str:
        """An issue made in Jira itself (not by the bot); returns its key."""
        fields = {"project": {"key": self.project}, "issuetype": {"name": "Task"}}
        call = Call(
            "POST",
            "",
            {},
            {},
            {"fields": {**fields, "summary": summary, "labels": list(labels)}},
            None,
        )
        with self.lock:
            status, body, _ = self._create(call, None)  # type: ignore[arg-type]
        assert status == 201, body
        return str(body["key"])

    def resolve(self, key: str, resolution: str | None = "Done") -> dict[str, Any]:
        """Move the issue to a done status, with `resolution` (None: reopened, To Do)."""
        with self.lock:
            issue = self.issue(key)
            issue["fields"]["status"] = DONE if resolution else OPEN
            issue["fields"]["resolution"] = {"name": resolution} if resolution else None
            return issue

    def webhook(self, key: str, event: str = "jira:issue_updated") -> bytes:
        issue = self.issue(key)
        payload = {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": "issue_generic",
            "issue": {"id": issue["id"], "key": key, "fields": issue["fields"]},
            "user": {"displayName": "Jira Admin"},
        }
        return json.dumps(payload).encode()

    # --- the API --------------------------------------------------------------------------------

    def _create(self, call: Call, match: re.Match[str]) -> Answer:
        fields = (call.body or {}).get("fields") if isinstance(call.body, dict) else None
        if not isinstance(fields, dict):
            return 400, {"errorMessages": ["No fields"], "errors": {}}, {}
        errors: dict[str, str] = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip() or len(summary) > 255:
            errors["summary"] = "You must specify a summary of the issue."
        if "description" in fields and not is_adf(fields["description"]):
            errors["description"] = "Operation value must be an Atlassian Document."
        labels = fields.get("labels") or []
        if any(not isinstance(x, str) or " " in x for x in labels):
            errors["labels"] = "The label can't contain spaces."
        due = fields.get("duedate")
        if due is not None and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", str(due)):
            errors["duedate"] = "Error parsing date string"
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        number = len(self.issues) + 1
        key = f"{self.project}-{number}"
        issue = {
            "id": str(10000 + number),
            "key": key,
            "self": f"{self.url}/rest/api/3/issue/{10000 + number}",
            "created": time.time(),
            "fields": {**fields, "status": OPEN, "resolution": None},
        }
        self.issues.append(issue)
        return 201, {"id": issue["id"], "key": key, "self": issue["self"]}, {}

    def _search(self, call: Call, match: re.Match[str]) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        jql = body.get("jql") or call.arg("jql") or ""
        found = _LABEL_JQL.match(jql)
        if not found:
            return 400, {"errorMessages": [f"Unsupported JQL: {jql}"], "errors": {}}, {}
        listed_before = time.time() - self.search_lag
        issues = [
            {"id": i["id"], "key": i["key"], "fields": {"labels": i["fields"].get("labels")}}
            for i in self.issues
            if found.group(1) in (i["fields"].get("labels") or []) and i["created"] <= listed_before
        ]
        return 200, {"issues": issues, "isLast": True}, {}

    def _get(self, call: Call, match: re.Match[str]) -> Answer:
        key = match.group("key")
        issue = next((i for i in self.issues if i["key"] == key), None)
        if issue is None:
            return 404, {"errorMessages": ["Issue does not exist"], "errors": {}}, {}
        wanted = (call.arg("fields") or "").split(",")
        fields = {k: v for k, v in issue["fields"].items() if not wanted[0] or k in wanted}
        return 200, {"id": issue["id"], "key": key, "fields": fields}, {}
