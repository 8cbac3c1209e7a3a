"""Events API: the Home tab, and noting when the app is removed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from sqlalchemy.orm import Session

from bot import inbox, incidents
from bot.incidents import Conflict, IncidentQuery, IncidentRow, NotFound, followups, screenshots
from bot.incidents.followups import FollowUpQuery
from bot.incidents.screenshots import CAPTION_MAX
from bot.slack import blocks
from bot.slack.blocks import followups as fu_blocks
from bot.slack.services import Services
from db.models import FollowUpStatus, Severity, Status

from .attach import attach_files
from .common import as_dict, bind, deliver_and_report, later, permalink_of, string

log = logging.getLogger(__name__)

HOME_MINE = 10
HOME_OTHERS = 30
HOME_SUBSCRIPTIONS = 20


def publish_home(
    services: Services,
    client: WebClient,
    user_id: str,
    *,
    severity: str | None = None,
    status: str = "active",
) -> None:
    """Active incidents by severity, the person's own first, under their chosen filters."""
    if status not in blocks.HOME_STATUS_CHOICES:
        status = "active"
    if severity not in {s.value for s in Severity}:
        severity = None
    query = IncidentQuery(
        active=status == "active",
        statuses=[Status(status)] if status in set(Status) else [],
        severities=[Severity(severity)] if severity else [],
        sort="severity",
    )
    with services.sessions() as session:
        mine = incidents.find_incidents(
            session, replace(query, involving=user_id, page_size=HOME_MINE)
        )
        everyone = incidents.find_incidents(
            session, replace(query, page_size=HOME_OTHERS + HOME_MINE)
        )
        others = [i for i in everyone if i not in mine][:HOME_OTHERS]
        view = blocks.home(
            user_id,
            mine,
            others,
            severity=severity,
            status=status,
            subscriptions=_subscriptions(session, user_id),
            followups=_your_followups(session, services, user_id),
        )
    client.views_publish(user_id=user_id, view=view)


def _your_followups(session: Session, services: Services, user_id: str) -> list[Block]:
    """The Home tab's "Your follow-ups": open, overdue first."""
    today = datetime.now(services.settings.timezone).date()
    query = FollowUpQuery(
        owner=user_id, status=FollowUpStatus.OPEN, today=today, limit=fu_blocks.HOME_FOLLOWUPS
    )
    page = followups.list_followups(session, query)
    return fu_blocks.home_section(page.items, page.total, today)


def _subscriptions(session: Session, user_id: str) -> list[IncidentRow]:
    """The person's active subscriptions, newest first, as the Home tab lists them."""
    rows = []
    for number in incidents.subscriptions(session, user_id)[:HOME_SUBSCRIPTIONS]:
        try:
            incident = incidents.get_incident(session, number)
        except NotFound:  # deleted meanwhile
            continue
        rows.append(
            IncidentRow(
                id=incident.id,
                title=incident.title,
                severity=incident.severity,
                status=incident.status,
                service=incident.service,
                owner=incident.owner,
                assignee=incident.assignee,
                created_at=incident.created_at,
                updated_at=incident.updated_at,
                own_channel_id=incident.own_channel_id,
            )
        )
    return rows


def once_per_event(
    services: Services, body: dict[str, Any], next: Callable[[], BoltResponse]
) -> BoltResponse:
    """Slack redelivers events (HTTP retries, Socket Mode reconnects): act on each once."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and event_id:
        with services.sessions.begin() as session:
            first = inbox.first_time(session, str(event_id))
        if not first:
            log.info("event %s was already handled; Slack's redelivery is ignored", event_id)
            return BoltResponse(status=200, body="")
    return next()


# Slack never redelivers an event it saw acked, so handling that fails after the ack (Slack
# answering 500, the database restarting) is tried again here, this many seconds apart.
EVENT_RETRIES = (2.0, 10.0, 60.0)


def handle_later(
    services: Services,
    client: WebClient,
    user_id: str,
    channel: str | None,
    job: Callable[..., Any],
    *args: Any,
    retries: tuple[float, ...] = EVENT_RETRIES,
) -> None:
    """`later()`, with the event's handling tried again when it fails; the last failure is
    logged and told like any other."""

    def attempt(services: Services, client: WebClient, *args: Any) -> None:
        try:
            job(services, client, *args)
        except Exception as error:
            if not retries:
                raise
            log.warning("%s failed (%r); trying again in %g s", job.__name__, error, retries[0])
            again = threading.Timer(
                retries[0],
                handle_later,
                (services, client, user_id, channel, job, *args),
                {"retries": retries[1:]},
            )
            again.daemon = True
            again.start()

    attempt.__name__ = job.__name__
    later(services, client, user_id, channel, attempt, *args)


def home_opened(services: Services, event: dict[str, Any], client: WebClient):
    user_id = string(event, "user")
    if event.get("tab", "home") != "home" or not user_id:
        return
    handle_later(services, client, user_id, None, publish_home, user_id)


def file_posted(services: Services, event: dict[str, Any], client: WebClient):
    """Files posted as a reply under an incident's card are attached (ATTACH_THREAD_FILES)."""
    thread_ts, channel = string(event, "thread_ts"), string(event, "channel")
    user_id = string(event, "user")
    if not services.settings.attach_thread_files or not thread_ts or not channel or not user_id:
        return
    handle_later(
        services,
        client,
        user_id,
        channel,
        attach_thread_files,
        event,
        user_id,
        channel,
        thread_ts,
    )


def member_joined(services: Services, event: dict[str, Any], context: dict[str, Any]):
    """The bot was let into a channel: the updates that waited for that go out now."""
    channel = string(event, "channel")
    if channel and string(event, "user") == context.get("bot_user_id"):
        services.deliverer.channel_joined(channel)


# 📌 on a message in an incident's channel makes it a timeline note.
PIN_REACTIONS = frozenset({"pushpin", "round_pushpin"})


def reaction_added(services: Services, event: dict[str, Any], client: WebClient):
    item = as_dict(event.get("item"))
    channel, ts, user_id = string(item, "channel"), string(item, "ts"), string(event, "user")
    pinned = event.get("reaction") in PIN_REACTIONS and item.get("type") == "message"
    if pinned and channel and ts and user_id:
        handle_later(services, client, user_id, channel, pin_to_timeline, user_id, channel, ts)


def pin_to_timeline(
    services: Services, client: WebClient, user_id: str, channel: str, ts: str
) -> None:
    """The pinned message becomes a note of the channel's incident, at its own time, once."""
    with services.sessions() as session:
        incident_id = incidents.incident_in_channel(session, channel)
    message = fetch_message(client, channel, ts) if incident_id is not None else None
    if incident_id is None or message is None:
        return
    try:
        with services.sessions.begin() as session:
            incidents.add_note(
                session,
                incident_id,
                services.actor(user_id),
                blocks.unescape(string(message, "text") or "") or "(a message with no text)",
                occurred_at=datetime.fromtimestamp(float(ts), UTC),
                source=f"{channel}/{ts}",
                source_url=permalink_of(client, channel, ts),
            )
    except Conflict:  # pinned before: once is enough
        log.info("INC-%d: %s/%s is a note already (%s)", incident_id, channel, ts, user_id)
        return
    deliver_and_report(services, client, incident_id, user_id, channel)


def fetch_message(client: WebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """One message by its ts: in the channel's history, or else in a thread."""
    for page in (
        client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1),
        client.conversations_replies(channel=channel, ts=ts, limit=1),
    ):
        found = [m for m in page.get("messages") or [] if m.get("ts") == ts]
        if found:
            return found[0]
    return None


def app_removed(services: Services, event: dict[str, Any], body: dict[str, Any]):
    log.warning(
        "Slack says %s for team %s: the bot can no longer post until it is reinstalled",
        event.get("type"),
        body.get("team_id"),
    )


def register(app: App, services: Services) -> None:
    # Events are acked when their listener returns; their work follows on the work queue.
    app.middleware(bind(services, once_per_event))
    app.event("app_home_opened")(bind(services, home_opened))
    app.event({"type": "message", "subtype": "file_share"})(bind(services, file_posted))
    app.event("member_joined_channel")(bind(services, member_joined))
    app.event("reaction_added")(bind(services, reaction_added))
    app.event("app_uninstalled")(bind(services, app_removed))
    app.event("tokens_revoked")(bind(services, app_removed))


def attach_thread_files(
    services: Services,
    client: WebClient,
    event: dict[str, Any],
    user_id: str,
    channel: str,
    thread_ts: str,
) -> None:
    """Files posted as a reply under an incident's card are attached (ATTACH_THREAD_FILES)."""
    with services.sessions() as session:
        incident = incidents.find_by_card(session, channel, thread_ts)
        if incident is None:
            return
        # Slack redelivers events; a file already stored from this message is not news.
        posted = event.get("files") if isinstance(event.get("files"), list) else []
        files = [
            f
            for f in map(as_dict, posted)
            if string(f, "id") and not screenshots.has_slack_file(session, incident.id, f["id"])
        ]
        incident_id = incident.id
    if not files:
        return
    attach_files(
        services,
        client,
        incident_id,
        user_id,
        files,
        # The message is the caption; a long one is cut, never a reason to drop the images.
        caption=blocks.truncate(blocks.unescape(string(event, "text") or ""), CAPTION_MAX) or None,
        source_permalink=permalink_of(client, channel, string(event, "ts")),
        feedback_channel=channel,
    )
