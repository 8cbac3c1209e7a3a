"""The trackers' word back: GitHub's and Jira's webhooks saying a follow-up's ticket closed or
opened again.

- POST /webhooks/github, signed with GITHUB_WEBHOOK_SECRET: `X-Hub-Signature-256:
  sha256=<hex HMAC-SHA256 of the raw body>`. `issues` events closed (state_reason completed:
  done; not_planned: won't do) and reopened (open); `ping` answers 200.
- POST /webhooks/jira, signed with JIRA_WEBHOOK_SECRET: `X-Hub-Signature: sha256=<hex>`.
  `jira:issue_updated` whose status category is done (done; resolution Won't Do or Won't Fix:
  won't do), or back out of done (open); an update whose changelog names neither the status nor
  the resolution is ignored.

A body whose signature is missing or wrong is refused (401) before it is read as JSON: nothing
is written and nothing of it is logged. Without its secret an endpoint doesn't exist (404); the
scheduler polls the tickets instead (bot.delivery.exports).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from apiflask import APIBlueprint
from flask import request

from bot.delivery import github, jira
from bot.incidents import followups
from bot.web.auth import services
from db.models import FollowUpStatus

log = logging.getLogger(__name__)

bp = APIBlueprint("webhooks", __name__, url_prefix="/webhooks", enable_openapi=False)


def signed(secret: str, header: str | None) -> bool:
    """The header is `sha256=` and the body's HMAC-SHA256 under `secret` (constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), request.get_data(cache=True), hashlib.sha256)
    return hmac.compare_digest(
        header.removeprefix("sha256=").encode(), expected.hexdigest().encode()
    )


def _answer(code: int, message: str, **more: Any) -> tuple[dict[str, Any], int]:
    return {"message": message, **more}, code


def _body() -> dict[str, Any] | None:
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _apply(tracker: str, key: str, status: FollowUpStatus, by: str) -> tuple[dict[str, Any], int]:
    with services().change() as session:
        followup = followups.ticket_state(session, tracker, key, status, by=by)
        ref = followups.format_followup_id(followup.id) if followup else None
        shown = followup.status.value if followup else None
    if ref is None:
        return _answer(200, f"No follow-up has the ticket {key}.", followup=None)
    return _answer(200, f"{ref} is {followups.STATUS_LABELS[status]}.", followup=ref, status=shown)


@bp.post("/github")
def from_github() -> Any:
    settings = services().settings.github
    if settings is None or not settings.webhook_secret:
        return _answer(404, "Not found: GITHUB_WEBHOOK_SECRET is not set.")
    if not signed(settings.webhook_secret, request.headers.get("X-Hub-Signature-256")):
        log.warning("GitHub webhook refused: missing or wrong X-Hub-Signature-256")
        return _answer(401, "The X-Hub-Signature-256 signature is missing or wrong.")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return _answer(200, "pong")
    body = _body()
    if body is None:
        return _answer(400, "The body is not a JSON object.")
    action = body.get("action")
    issue = body.get("issue") if isinstance(body.get("issue"), dict) else None
    repo = (body.get("repository") or {}).get("full_name")
    if event != "issues" or action not in ("closed", "reopened") or not issue or not repo:
        return _answer(200, f"Ignored: {event} {action or ''}".strip())
    if "number" not in issue:
        return _answer(400, "The issue has no number.")
    status = github.issue_status(issue) if action == "closed" else FollowUpStatus.OPEN
    sender = str((body.get("sender") or {}).get("login") or "")
    return _apply("github", github.issue_key(repo, issue["number"]), status, sender)


@bp.post("/jira")
def from_jira() -> Any:
    settings = services().settings.jira
    if settings is None or not settings.webhook_secret:
        return _answer(404, "Not found: JIRA_WEBHOOK_SECRET is not set.")
    if not signed(settings.webhook_secret, request.headers.get("X-Hub-Signature")):
        log.warning("Jira webhook refused: missing or wrong X-Hub-Signature")
        return _answer(401, "The X-Hub-Signature signature is missing or wrong.")
    body = _body()
    if body is None:
        return _answer(400, "The body is not a JSON object.")
    event = body.get("webhookEvent")
    issue = body.get("issue") if isinstance(body.get("issue"), dict) else None
    if event != "jira:issue_updated" or not issue or not issue.get("key"):
        return _answer(200, f"Ignored: {event}")
    items = (body.get("changelog") or {}).get("items")
    if isinstance(items, list) and not any(
        isinstance(i, dict) and i.get("field") in ("status", "resolution") for i in items
    ):  # a comment, a new assignee: not the follow-up's business
        return _answer(200, "Ignored: the status did not change")
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    status = jira.issue_status(fields)
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    return _apply("jira", str(issue["key"]), status, str(user.get("displayName") or ""))
