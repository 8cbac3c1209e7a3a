"""What the pages show, worked out from the domain's rows: the list's filters, an incident's
facts, milestones and timeline, and the re-rendering of a page after a refusal. No routes here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from flask import render_template, request
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, followups, progress, screenshots
from bot.web import schemas
from bot.web.api import incident_query
from bot.web.auth import services
from bot.web.errors import domain_error
from bot.web.pages_followups_view import followups_view
from bot.web.pages_people import name_of, people_view
from db.models import EventKind, FollowUpStatus, Incident, IncidentEvent, Severity, Status

PAGE_SIZE = 20
LIST_FIELDS = ("status", "severity", "service", "category", "owner", "q", "sort", "page")
FIELD_LABELS = {name: name.capitalize() for name in LIST_FIELDS} | {"q": "Search", "owner": "Lead"}
SORTS = (
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-updated", "Recently changed"),
    ("-severity", "Most severe first"),
    ("status", "Status, open first"),
    ("title", "Title, A to Z"),
)
STATUS_BUTTON = {
    Status.OPEN: "Reopen",
    Status.INVESTIGATING: "Investigating",
    Status.MITIGATED: "Mitigated",
    Status.RESOLVED: "Resolve",
    Status.CLOSED: "Close",
}
MILESTONES = (
    ("Acknowledged", "acknowledged_at"),
    ("Mitigated", "mitigated_at"),
    ("Resolved", "resolved_at"),
    ("Closed", "closed_at"),
)


# --- The list ----------------------------------------------------------------------------------


def list_form() -> dict[str, str]:
    """The list's query string as the form shows it: repeated fields joined by commas (the API's
    spelling), and "active" when no status was asked for, so the first visit shows those."""
    form = {
        name: ",".join(request.args.getlist(name)) for name in LIST_FIELDS if name in request.args
    }
    form.setdefault("status", "active")
    return form


def list_page(form: Mapping[str, str]) -> incidents.Page:
    """The page of incidents the form asks for; a bad value is the domain's InvalidInput."""
    try:
        args = schemas.IncidentListQuery().load({**form, "limit": PAGE_SIZE})
    except ValidationError as error:
        raise incidents.InvalidInput(_validation_message(error.messages)) from None
    query = incident_query(args)
    with services().read() as session:
        return incidents.list_incidents(session, query)


def _validation_message(messages: Any) -> str:
    if isinstance(messages, dict):
        return " ".join(
            f"{FIELD_LABELS.get(name, name)}: {_validation_message(problem)}"
            for name, problem in messages.items()
        )
    if isinstance(messages, list):
        return " ".join(str(m) for m in messages)
    return str(messages)


def page_link(form: Mapping[str, str], page: int) -> str:
    """The list's URL for another page of the same filters, search and sort. Blank fields are
    left out but the status: a blank status is "any", and none at all is "active"."""
    kept = {
        name: value
        for name, value in form.items()
        if (value or name == "status") and name != "page"
    }
    return "?" + urlencode({**kept, "page": page})


# --- An incident -------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    zone = services().settings.timezone
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + str(zone)


def duration(span: timedelta) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`: how long a milestone took, at a glance."""
    seconds = max(0, int(span.total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return f"{seconds} s"
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def who(actor_id: str | None) -> str:
    """A person's Slack user id as stored, or the name of a machine ("API token alertmanager")."""
    if not actor_id:
        return "nobody"
    return incidents.actor_label(actor_id) or actor_id


def milestones(incident: Incident) -> list[tuple[str, str, str]]:
    """(label, when, how long after declaring) for each milestone reached."""
    reached = []
    for label, column in MILESTONES:
        moment = getattr(incident, column)
        if moment is not None:
            reached.append((label, when(moment), duration(moment - incident.created_at)))
    return reached


def slack_links(incident: Incident) -> list[tuple[str, str]]:
    """Links into Slack: the card, the channel it is in, and the incident's own channel."""
    api = urlsplit(services().settings.slack_api_url)
    # On the host of SLACK_API_URL, so GovSlack's people land in their own workspace.
    slack = f"{api.scheme}://{api.netloc}"
    team = incident.slack_team_id or services().team_id or ""
    links = []
    if incident.slack_channel_id and incident.card_ts:
        ts = incident.card_ts.replace(".", "")
        links.append(("The card in Slack", f"{slack}/archives/{incident.slack_channel_id}/p{ts}"))
    for label, channel in (
        ("The card's channel", incident.slack_channel_id),
        ("The incident's channel", incident.own_channel_id),
    ):
        if channel:
            query = urlencode({"team": team, "channel": channel} if team else {"channel": channel})
            links.append((label, f"{slack}/app_redirect?{query}"))
    return links


class TimelineEntry(NamedTuple):
    when: str
    who: str
    summary: str
    # What was typed (a note, a new value, a cause), shown as written.
    body: str | None
    # Further lines: a resolution, files not kept, ...
    extra: list[str]
    source_url: str | None
    # Set on a note the viewer may delete.
    deletable_note: int | None


def timeline(events: list[IncidentEvent], viewer: Actor) -> list[TimelineEntry]:
    return [_entry(event, viewer) for event in events]


def _entry(event: IncidentEvent, viewer: Actor) -> TimelineEntry:
    body, extra, deletable = event.text, [], None
    source = event.details.get("source_url")
    match event.kind:
        case EventKind.CREATED:
            summary = f"declared it as {event.to_value}"
        case EventKind.STATUS_CHANGED:
            summary = f"changed the status: {event.from_value} → {event.to_value}"
            extra = [
                f"{label.capitalize()}: {event.details[label]}"
                for label in ("cause", "resolution")
                if event.details.get(label)
            ]
        case EventKind.SEVERITY_CHANGED:
            summary = f"changed the severity: {event.from_value} → {event.to_value}"
        case EventKind.FIELD_CHANGED:
            cleared = event.to_value is None
            name = FIELD_NAMES.get(event.field or "", event.field)
            summary = f"cleared the {name}" if cleared else f"changed the {name}"
            body = _shown_value(event.field, event.to_value)
        case EventKind.FOLLOWUP_ADDED:
            ref = followups.format_followup_id(int(event.details.get("followup_id", 0)))
            summary = f"added the follow-up {ref}"
            extra = _followup_lines(event.details)
        case EventKind.FOLLOWUP_CHANGED:
            ref = followups.format_followup_id(int(event.details.get("followup_id", 0)))
            summary = _followup_change(ref, event)
            body = None
        case EventKind.FOLLOWUP_EXPORTED:
            ref = followups.format_followup_id(int(event.details.get("followup_id", 0)))
            summary = f"exported {ref} as {event.details.get('key', 'a ticket')}"
            body = event.to_value
        case EventKind.ASSIGNED if event.field == "owner" and event.to_value is None:
            summary = f"left the incident without a lead ({name_of(event.from_value)} was)"
        case EventKind.ASSIGNED if event.field == "owner":
            summary = f"made {name_of(event.to_value)} the lead"
            handoff = event.details.get("handoff")
            extra = [f"Handoff: {handoff}"] if handoff else []
        case EventKind.ASSIGNED if event.to_value is None:
            summary = f"unassigned the {event.field} ({who(event.from_value)})"
        case EventKind.ASSIGNED:
            summary = f"set the {event.field} to {who(event.to_value)}"
        case EventKind.ROLE_ASSIGNED if event.to_value is None:
            summary = f"left the {event.field} role to nobody ({name_of(event.from_value)} had it)"
        case EventKind.ROLE_ASSIGNED:
            summary = f"gave the {event.field} role to {name_of(event.to_value)}"
        case EventKind.STATUS_UPDATE:
            summary = "posted an update"
            if event.field == "status":
                summary += f": {event.from_value} → {event.to_value}"
            extra = _update_lines(event.details)
        case EventKind.UPDATE_OVERDUE:
            summary = "the promised update is late: the lead and comms were nudged"
        case EventKind.LEAD_REMINDER:
            summary = "reminded the channel: this incident has no lead"
        case EventKind.NOTE if event.deleted_at is not None:
            summary = f"added a note, deleted by {who(event.deleted_by)} {when(event.deleted_at)}"
        case EventKind.NOTE:
            summary = "added a note"
            deletable = event.id if viewer.may_remove(event.actor) else None
        case EventKind.NOTE_DELETED:
            summary = "deleted a note"
        case EventKind.SCREENSHOT_ADDED:
            stored = len(event.details.get("stored", []))
            summary = f"attached {stored} screenshot{'' if stored == 1 else 's'}"
            extra = [f"Already there: {name}" for name in event.details.get("duplicates", [])]
            extra += [
                f"Not kept: {item.get('name')} ({item.get('reason')})"
                for item in event.details.get("refused", [])
            ]
        case EventKind.SCREENSHOT_DELETED:
            summary = f"deleted the screenshot {event.details.get('name', '')}"
        case EventKind.REMINDER:
            silent = duration(timedelta(minutes=int(event.details.get("silent_minutes", 0))))
            summary = f"reminded {who(event.details.get('who'))}: no update for {silent}"
        case EventKind.REMINDERS_SNOOZED:
            until = datetime.fromisoformat(event.to_value) if event.to_value else None
            summary = "snoozed reminders" + (f" until {when(until)}" if until else "")
        case _:
            summary = event.kind.value.replace("_", " ")
    return TimelineEntry(
        when=when(event.occurred_at),
        who=who(event.actor),
        summary=summary,
        body=body,
        extra=extra,
        source_url=source if isinstance(source, str) and _is_web_link(source) else None,
        deletable_note=deletable,
    )


FIELD_NAMES = {
    "impact_started_at": "impact start",
    "impact_ended_at": "impact end",
    "customer_impact": "customer impact",
    "contributing_factors": "contributing factors",
    "went_well": "what went well",
    "went_badly": "what went badly",
    "review_status": "review status",
}


def _shown_value(field: str | None, value: str | None) -> str | None:
    """A changed field's new value as people read it (a moment in TIMEZONE, a person by name)."""
    if value and field in ("impact_started_at", "impact_ended_at"):
        return when(datetime.fromisoformat(value))
    if value and field == "reviewer":
        return name_of(value)
    if value and field == "review_status":
        return value.replace("_", " ")
    return value


def _followup_lines(details: dict[str, Any]) -> list[str]:
    owner, due = details.get("owner"), details.get("due_on")
    lines = [str(details.get("title", ""))]
    lines.append(f"Owner: {name_of(owner)}" if owner else "No owner yet")
    if due:
        lines.append(f"Due {due}")
    return lines


def _followup_change(ref: str, event: IncidentEvent) -> str:
    field, new = event.field, event.to_value
    if field == "status" and new is not None:
        label = followups.STATUS_LABELS.get(FollowUpStatus(new), new)
        return f"marked {ref} {label}" if new != "open" else f"reopened {ref}"
    if field == "owner":
        return f"gave {ref} to {name_of(new)}" if new else f"left {ref} without an owner"
    if field == "due_on":
        return f"set {ref} due {new}" if new else f"cleared the due date of {ref}"
    return f"changed the {field} of {ref}: {new}"


def _update_lines(details: dict[str, Any]) -> list[str]:
    lines = [f"Impact: {details['impact']}"] if details.get("impact") else []
    lines += [
        f"{label.capitalize()}: {details[label]}"
        for label in ("cause", "resolution")
        if details.get(label)
    ]
    seconds = details.get("next_update_in")
    if isinstance(seconds, int | float) and seconds > 0:
        lines.append(f"Next update in {progress.span(timedelta(seconds=seconds))}")
    return lines


def _is_web_link(url: str) -> bool:
    # A stored link is shown as a link only when it can't run script (javascript:, data:).
    return urlsplit(url).scheme in ("http", "https")


def render_incident(
    incident_id: str, viewer: Actor, *, problem: incidents.IncidentError | None = None
) -> tuple[str, int, dict[str, str]]:
    """The incident's page; after a refusal, with its message and what the person typed."""
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        next_statuses = incidents.allowed_next_statuses(incident.status, is_admin=viewer.is_admin)
        html = render_template(
            "incident.html",
            incident=incident,
            ref=incidents.format_incident_id(incident.id),
            may_edit=incidents.may_edit(incident, viewer),
            next_statuses=[s for s in next_statuses if s != Status.RESOLVED],
            may_resolve=Status.RESOLVED in next_statuses,
            may_delete=_may_delete(session, incident, viewer),
            status_button=STATUS_BUTTON,
            severities=list(Severity),
            milestones=milestones(incident),
            links=slack_links(incident),
            timeline=timeline(incidents.timeline(session, incident.id), viewer),
            screenshots=screenshots.list_screenshots(session, incident.id),
            when=when,
            who=who,
            problem=str(problem) if problem else None,
            **people_view(session, incident, viewer),
            **followups_view(session, incident, viewer),
            form=request.form if problem else {},
        )
    return html, *(refusal(problem) if problem else (200, {}))


def _may_delete(session: Session, incident: Incident, viewer: Actor) -> bool:
    try:
        incidents.check_can_delete(session, incident.id, viewer)
    except incidents.PermissionDenied:
        return False
    return True


def refusal(error: incidents.IncidentError) -> tuple[int, dict[str, str]]:
    """The status and headers (a busy incident's Retry-After) the app gives this refusal
    everywhere, so a page that shows the refusal itself answers with the same."""
    http = domain_error(error)
    return http.status_code, dict(http.headers or {})
