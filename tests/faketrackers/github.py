"""A fake GitHub (REST v3) on loopback: issues of repositories, the token's user, the list's
filters (state, creator, since, pages with a Link header), and the webhook a closed issue sends.

    with FakeGitHub() as github:  # GITHUB_API_URL=github.url, GITHUB_TOKEN=github.token
        github.drop_after("create")  # stores the issue, then closes the connection
        github.rate_limit("create", seconds=30)  # 403, X-RateLimit-Remaining: 0
        github.close(number, "not_planned")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from .base import Answer, Call, FakeService, Fault

TOKEN = "ghp_faketoken0000000000000000000000000000"
LOGIN = "incident-bot"
REPO = "acme/ops"
_ISSUE = r"/repos/(?P<repo>[^/]+/[^/]+)/issues"


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signature(secret: str, body: bytes) -> str:
    """X-Hub-Signature-256 (and Jira's X-Hub-Signature): sha256=<hex HMAC of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeGitHub(FakeService):
    def __init__(self, token: str = TOKEN, login: str = LOGIN, repos: tuple[str, ...] = (REPO,)):
        super().__init__()
        self.token, self.login = token, login
        self.issues: dict[str, list[dict[str, Any]]] = {repo: [] for repo in repos}
        self.route("GET", "/user", "user", self._user)
        self.route("POST", _ISSUE, "create", self._create)
        self.route("GET", _ISSUE, "list", self._list)
        self.route("GET", _ISSUE + r"/(?P<number>[0-9]+)", "get", self._get)

    def authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    # --- the tests' side ------------------------------------------------------------------------

    def rate_limit(self, route: str, seconds: int, *, primary: bool = True) -> Fault:
        """A primary limit (403, X-RateLimit-Remaining: 0, X-RateLimit-Reset) or a secondary
        one (429, Retry-After)."""
        if primary:
            headers = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + seconds),
            }
            return self.fail(route, 403, {"message": "API rate limit exceeded"}, headers=headers)
        body = {"message": "You have exceeded a secondary rate limit."}
        return self.fail(route, 429, body, headers={"Retry-After": str(seconds)})

    def all_issues(self, repo: str = REPO) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.issues[repo])

    def close(self, number: int, reason: str = "completed", repo: str = REPO) -> dict[str, Any]:
        with self.lock:
            issue = self._issue(repo, number)
            assert issue is not None
            issue.update(state="closed", state_reason=reason, updated_at=iso(time.time()))
            return dict(issue)

    def webhook(self, action: str, issue: dict[str, Any], repo: str = REPO) -> bytes:
        """An `issues` event's body, as GitHub sends it."""
        payload = {
            "action": action,
            "issue": issue,
            "repository": {"full_name": repo, "name": repo.split("/")[1]},
            "sender": {"login": "octocat"},
        }
        return json.dumps(payload).encode()

    # --- the API --------------------------------------------------------------------------------

    def _user(self, call: Call, match: re.Match[str]) -> Answer:
        return 200, {"login": self.login, "id": 1, "type": "Bot"}, {}

    def _create(self, call: Call, match: re.Match[str]) -> Answer:
        repo = match.group("repo")
        if repo not in self.issues:
            return 404, {"message": "Not Found"}, {}
        body = call.body if isinstance(call.body, dict) else {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            errors = [{"resource": "Issue", "field": "title", "code": "missing_field"}]
            return 422, {"message": "Validation Failed", "errors": errors}, {}
        number = sum(len(v) for v in self.issues.values()) + 1
        now = iso(time.time())
        issue = {
            "number": number,
            "title": title,
            "body": body.get("body"),
            "state": "open",
            "state_reason": None,
            "user": {"login": self.login},
            "created_at": now,
            "updated_at": now,
            "html_url": f"https://github.example/{repo}/issues/{number}",
            "labels": [],
        }
        self.issues[repo].append(issue)
        return 201, dict(issue), {}

    def _list(self, call: Call, match: re.Match[str]) -> Answer:
        repo = match.group("repo")
        if repo not in self.issues:
            return 404, {"message": "Not Found"}, {}
        state = call.arg("state") or "open"
        creator, since = call.arg("creator"), call.arg("since")
        found = [
            i
            for i in self.issues[repo]
            if (state == "all" or i["state"] == state)
            and (creator is None or i["user"]["login"] == creator)
            and (since is None or i["updated_at"] >= since)
        ]
        if call.arg("direction") != "asc":
            found.reverse()  # newest first, GitHub's default
        per_page = min(int(call.arg("per_page") or 30), 100)
        page = int(call.arg("page") or 1)
        shown = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(found):
            query = {k: v[0] for k, v in call.query.items()}
            query["page"] = str(page + 1)
            link = self.url + call.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, [dict(i) for i in shown], headers

    def _get(self, call: Call, match: re.Match[str]) -> Answer:
        issue = self._issue(match.group("repo"), int(match.group("number")))
        if issue is None:
            return 404, {"message": "Not Found"}, {}
        return 200, dict(issue), {}

    def _issue(self, repo: str, number: int) -> dict[str, Any] | None:
        return next((i for i in self.issues.get(repo, []) if i["number"] == number), None)
