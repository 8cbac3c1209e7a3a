"""What the trackers (GitHub, Jira) have in common for the outbox: a small JSON client over
urllib, the ticket a follow-up becomes, and how a refusal is read (retry, wait, give up).

Nothing here retries by itself: an issue created twice is a duplicate ticket, so only the outbox
decides, after looking for the first one (bot.delivery.exports)."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import Message
from typing import Any, Protocol

from db.models import FollowUpStatus

log = logging.getLogger(__name__)

# Each call to a tracker; an export's lease covers a create and a lookup of a few pages.
TRACKER_TIMEOUT = 10.0
USER_AGENT = "incident-tracker-bot"
# How much of a refusal's body is kept as its reason (logged, shown with the row).
REASON_CHARS = 200


@dataclass(frozen=True)
class Ticket:
    key: str  # "owner/repo#12", "OPS-12"
    url: str


@dataclass(frozen=True)
class ExportDraft:
    """What a follow-up's ticket says, read from the follow-up when its row is sent."""

    followup_id: int
    ref: str  # FU-12
    title: str
    incident_ref: str  # INC-3
    incident_title: str
    incident_url: str | None
    owner: str | None
    due_on: date | None
    priority: str
    source_permalink: str | None = None

    def lines(self) -> list[str]:
        """The ticket's description, a line each (the marker is the tracker's own)."""
        incident = f"{self.incident_ref}: {self.incident_title}"
        lines = [f"Follow-up {self.ref} of incident {incident}"]
        if self.incident_url:
            lines.append(f"Incident: {self.incident_url}")
        lines.append(f"Owner: {f'Slack user {self.owner}' if self.owner else 'nobody yet'}")
        lines.append(f"Due: {self.due_on.isoformat() if self.due_on else 'no date'}")
        lines.append(f"Priority: {self.priority}")
        if self.source_permalink:
            lines.append(f"From the Slack message: {self.source_permalink}")
        lines.append("Made by the incident bot: closing this ticket marks the follow-up done.")
        return lines


class TrackerFailure(Exception):
    """A call the tracker did not answer with success.

    `unknown`: the call may have taken effect (a timeout, a dropped connection, a 5xx after a
    create); `permanent`: retrying the same call can't succeed; `retry_after`: a rate limit, in
    seconds."""

    def __init__(
        self,
        code: str,
        reason: str = "",
        *,
        permanent: bool = False,
        unknown: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {reason}" if reason else code)
        self.code = code
        self.reason = reason
        self.permanent = permanent
        self.unknown = unknown
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None


class Tracker(Protocol):
    name: str
    # A ticket made a moment ago may not be listed yet: look for it no sooner than this.
    look_grace: timedelta

    def create(self, draft: ExportDraft) -> Ticket: ...

    def find(self, draft: ExportDraft, since: Any) -> Ticket | None: ...

    def state(self, key: str) -> FollowUpStatus: ...


@dataclass
class Answer:
    status: int
    headers: Message
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def reason(self) -> str:
        """What the tracker said was wrong, short (GitHub's message, Jira's errors)."""
        body = self.body
        if not isinstance(body, dict):
            return str(body or "")[:REASON_CHARS]
        parts = [str(body["message"])] if body.get("message") else []
        parts += [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors")
        if isinstance(errors, dict):  # Jira: field -> message
            parts += [f"{field}: {message}" for field, message in errors.items()]
        elif isinstance(errors, list):  # GitHub: what failed validation
            parts += [
                str(e.get("message") or f"{e.get('field')} {e.get('code')}")
                if isinstance(e, dict)
                else str(e)
                for e in errors
            ]
        text = "; ".join(parts)
        return text[:REASON_CHARS]


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    timeout: float,
    body: Any = None,
) -> Answer:
    """One HTTP call; any HTTP status is an Answer. A connection that fails, times out or drops
    before the whole answer came raises OSError (TimeoutError is one)."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"User-Agent": USER_AGENT, **headers}
    if data is not None:
        sent["Content-Type"] = "application/json"
    outgoing = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        try:
            with urllib.request.urlopen(outgoing, timeout=timeout) as response:
                status, answer_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, error.headers, error.read()
    except http.client.HTTPException as error:  # an answer cut short, a garbled status line
        raise ConnectionError(f"{type(error).__name__}: {error}") from error
    except urllib.error.URLError as error:
        reason = error.reason
        raise reason if isinstance(reason, OSError) else ConnectionError(str(reason)) from error
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, answer_headers, parsed)


def connection_failure(error: OSError, *, unknown: bool) -> TrackerFailure:
    return TrackerFailure("connection", f"{type(error).__name__}: {error}", unknown=unknown)
