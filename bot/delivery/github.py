"""GitHub's REST API (v3) for follow-ups: an issue per follow-up, found again by a hidden marker.

- Create: POST /repos/{owner}/{repo}/issues. The body carries a hidden marker line,
  `<!-- incident-bot-followup:FU-12 -->` (labels would be dropped without push access).
- After an unknown outcome (a timeout, a dropped connection, a 5xx), before creating again: the
  repository's issues by the bot's user (GET /user, once) since the attempt, `state=all`, every
  page, are searched for the marker (the search API lags; the list does not).
- A rate limit (403 or 429 with Retry-After, X-RateLimit-Remaining: 0 and X-RateLimit-Reset, or
  a secondary limit's message) waits; 401, 404, 410 and 422 end the export, with GitHub's reason.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from datetime import datetime, timedelta

from bot.settings_followups import GitHubSettings
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

API_VERSION = "2022-11-28"
PERMANENT = frozenset({401, 404, 410, 422})
# How far before an attempt its issue is looked for (clocks differ a little).
LOOKUP_MARGIN = timedelta(minutes=2)
LOOKUP_PAGES = 10
# GitHub's advice for a secondary rate limit that names no time: wait at least a minute.
SECONDARY_WAIT = 60
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_KEY = re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#([0-9]+)$")


def marker(ref: str) -> str:
    return f"<!-- incident-bot-followup:{ref} -->"


def body(draft: ExportDraft) -> str:
    return "\n".join([marker(draft.ref), *(f"{line}  " for line in draft.lines())]).rstrip()


def issue_status(issue: dict) -> FollowUpStatus:
    """An issue's state as a follow-up's status: closed as not planned is won't do."""
    if issue.get("state") != "closed":
        return FollowUpStatus.OPEN
    if issue.get("state_reason") == "not_planned":
        return FollowUpStatus.WONT_DO
    return FollowUpStatus.DONE


def issue_key(repo: str, number: object) -> str:
    return f"{repo}#{number}"


def retry_after(answer: Answer, now: float | None = None) -> int | None:
    """Seconds to wait if `answer` is a rate limit, else None."""
    if answer.status not in (403, 429):
        return None
    header = answer.header("Retry-After")
    if header and header.strip().isdigit():
        return max(int(header), 1)
    reset = answer.header("X-RateLimit-Reset")
    if answer.header("X-RateLimit-Remaining") == "0" and reset and reset.strip().isdigit():
        return max(int(int(reset) - (now or time.time())) + 1, 1)
    if answer.status == 429 or "rate limit" in answer.reason().lower():
        return SECONDARY_WAIT
    return None


class GitHub:
    name = "github"
    # GitHub lists a new issue at once; a few seconds for a replica's clock.
    look_grace = timedelta(seconds=5)

    def __init__(self, settings: GitHubSettings, timeout: float = TRACKER_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._login: str | None = None
        self._lock = threading.Lock()

    # --- calls ----------------------------------------------------------------------------------

    def _call(
        self, method: str, path_or_url: str, body: object = None, *, creating: bool = False
    ) -> Answer:
        url = path_or_url
        if not url.startswith(("http://", "https://")):
            url = self.settings.api_url + path_or_url
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        try:
            answer = request(method, url, headers=headers, timeout=self.timeout, body=body)
        except OSError as error:
            raise connection_failure(error, unknown=creating) from error
        if 200 <= answer.status < 300:
            return answer
        code, reason = f"github_{answer.status}", answer.reason()
        wait = retry_after(answer)
        if wait is not None:
            raise TrackerFailure(code, reason, retry_after=wait)
        if answer.status in PERMANENT or answer.status == 403:
            raise TrackerFailure(code, reason or "refused", permanent=True)
        raise TrackerFailure(code, reason, unknown=creating and answer.status >= 500)

    # --- the ticket -----------------------------------------------------------------------------

    def create(self, draft: ExportDraft) -> Ticket:
        owner_repo = self.settings.repo
        answer = self._call(
            "POST",
            f"/repos/{owner_repo}/issues",
            {"title": draft.title, "body": body(draft)},
            creating=True,
        )
        issue = answer.body if isinstance(answer.body, dict) else {}
        if "number" not in issue:
            raise TrackerFailure("github_answer", "the answer names no issue", unknown=True)
        return self._ticket(issue)

    def find(self, draft: ExportDraft, since: datetime) -> Ticket | None:
        """The follow-up's issue, made by the bot since `since`, if GitHub has it."""
        query = {
            "state": "all",
            "since": (since - LOOKUP_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "per_page": "100",
            "sort": "created",
            "direction": "desc",
        }
        login = self.login()
        if login:
            query["creator"] = login
        url: str | None = f"/repos/{self.settings.repo}/issues?{urllib.parse.urlencode(query)}"
        mark = marker(draft.ref)
        for _ in range(LOOKUP_PAGES):
            if url is None:
                return None
            answer = self._call("GET", url)
            for issue in answer.body if isinstance(answer.body, list) else []:
                if "pull_request" not in issue and mark in (issue.get("body") or ""):
                    return self._ticket(issue)
            found = _NEXT.search(answer.header("Link") or "")
            url = found.group(1) if found else None
        return None

    def login(self) -> str | None:
        """The bot's own login (cached); None for a token that can't say (a GitHub App's
        installation token), whose lookups then list everyone's issues."""
        with self._lock:
            if self._login is None:
                try:
                    user = self._call("GET", "/user").body
                except TrackerFailure as failure:
                    if not failure.permanent:
                        raise
                    self._login = ""
                else:
                    self._login = str((user or {}).get("login") or "")
            return self._login or None

    def state(self, key: str) -> FollowUpStatus:
        repo, number = parse_key(key)
        return issue_status(self._call("GET", f"/repos/{repo}/issues/{number}").body or {})

    def _ticket(self, issue: dict) -> Ticket:
        key = issue_key(self.settings.repo, issue["number"])
        url = (
            issue.get("html_url")
            or f"https://github.com/{self.settings.repo}/issues/{issue['number']}"
        )
        return Ticket(key, str(url))


def parse_key(key: str) -> tuple[str, str]:
    found = _KEY.match(key)
    if not found:
        raise TrackerFailure("github_key", f"not an issue key: {key!r}", permanent=True)
    return found.group(1), found.group(2)
