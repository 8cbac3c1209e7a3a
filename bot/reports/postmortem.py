"""An incident's post-mortem as Markdown, ready to paste into a wiki, in the shape teams run a
review from: the facts, summary, impact (from the review's impact window), milestones,
timeline, roles, contributing factors, what went well and badly, the follow-ups as a checklist,
cause, resolution, screenshots and where the review stands.

Everything people typed is shown literally (bot.reports.markdown). The output depends only on
the incident's rows and the links and names handed in, so the same incident always gives the
same document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import followups, roles, screenshots
from db.models import EventKind, FollowUp, Incident, IncidentEvent, Screenshot

from . import review, work_events
from .markdown import at as _at
from .markdown import inline, paragraphs
from .numbers import duration, size

# A person's name for a Slack user id, when the surface can tell (None: the id is shown).
Names = Callable[[str], str | None]


def filename(incident_id: int) -> str:
    return f"{incidents.format_incident_id(incident_id)}-postmortem.md"


@dataclass(frozen=True)
class PostmortemFacts:
    """What a post-mortem is written from: read in one session, rendered after it closed."""

    incident: Incident
    events: list[IncidentEvent]
    screenshots: list[Screenshot]
    # Every role (the lead first) and who holds it now.
    roles: list[tuple[roles.Role, str | None]]
    # Its follow-ups, open first, then by due date.
    followups: list[FollowUp]


def postmortem_facts(
    session: Session, incident_ref: object, *, rules: roles.RoleRules | None = None
) -> PostmortemFacts:
    """`rules`: INCIDENT_ROLES (Settings.role_rules); the default roles when not given."""
    incident = incidents.get_incident(session, incident_ref)
    return PostmortemFacts(
        incident,
        incidents.timeline(session, incident.id),
        screenshots.list_screenshots(session, incident.id),
        roles.holders(session, incident, rules or roles.RoleRules()),
        followups.followups_of(session, incident.id),
    )


@dataclass(frozen=True)
class _Writer:
    name: Names | None

    def person(self, user_id: str | None) -> str:
        if not user_id:
            return "nobody"
        label = incidents.actor_label(user_id)
        if label is not None:
            return inline(label)
        shown = self.name(user_id) if self.name and incidents.USER_ID.match(user_id) else None
        return f"{inline(shown)} ({inline(user_id)})" if shown else inline(user_id)

    def what(self, event: IncidentEvent) -> tuple[str, str | None]:
        """What an event did, and the text to quote under it."""
        details = event.details or {}
        before, after = inline(event.from_value or ""), inline(event.to_value or "")
        work = (
            work_events.review_change(event, self.person)
            if event.kind == EventKind.FIELD_CHANGED
            else work_events.followup_event(event, self.person)
        )
        if work is not None:
            return work
        match event.kind:
            case EventKind.CREATED:
                return f"declared the incident as {after}", event.text
            case EventKind.STATUS_CHANGED:
                return f"changed the status: {before} → {after}", event.text
            case EventKind.SEVERITY_CHANGED:
                return f"changed the severity: {before} → {after}", event.text
            case EventKind.FIELD_CHANGED if event.to_value is None:
                return f"cleared the {inline(event.field or '')}", None
            case EventKind.FIELD_CHANGED:
                return f"changed the {inline(event.field or '')} to:", event.to_value
            case EventKind.ASSIGNED if event.field == "owner" and event.to_value is None:
                return f"left the incident without a lead ({self.person(event.from_value)})", None
            case EventKind.ASSIGNED if event.field == "owner":
                handoff = details.get("handoff")
                quoted = f"Handoff: {handoff}" if isinstance(handoff, str) and handoff else None
                return f"made {self.person(event.to_value)} the lead", quoted
            case EventKind.ASSIGNED if event.to_value is None:
                field, who = inline(event.field or ""), self.person(event.from_value)
                return f"unassigned the {field} ({who})", None
            case EventKind.ROLE_ASSIGNED if event.to_value is None:
                role, who = inline(event.field or ""), self.person(event.from_value)
                return f"left the {role} role to nobody ({who} had it)", None
            case EventKind.ROLE_ASSIGNED:
                role, who = inline(event.field or ""), self.person(event.to_value)
                return f"gave the {role} role to {who}", None
            case EventKind.STATUS_UPDATE:
                return self.update(event)
            case EventKind.UPDATE_OVERDUE:
                nudged = ", ".join(self.person(p) for p in details.get("who") or []) or "nobody"
                return f"the promised update was late: nudged {nudged}", None
            case EventKind.LEAD_REMINDER:
                return "reminded the channel that the incident has no lead", None
            case EventKind.ASSIGNED:
                field, who = inline(event.field or ""), self.person(event.to_value)
                return f"set the {field} to {who}", None
            case EventKind.NOTE:
                return "added a note:", event.text
            case EventKind.SCREENSHOT_ADDED:
                count = len(details.get("stored") or [])
                return f"attached {count} screenshot{'' if count == 1 else 's'}", event.text
            case EventKind.SCREENSHOT_DELETED:
                return f"deleted the screenshot {inline(str(details.get('name', '')))}", None
            case EventKind.REMINDER:
                silent = duration(timedelta(minutes=int(details.get("silent_minutes", 0))))
                return f"reminded {self.person(details.get('who'))}: no update for {silent}", None
            case EventKind.REMINDERS_SNOOZED if event.to_value:
                until = _at(datetime.fromisoformat(event.to_value))
                return f"snoozed the reminders until {until}", None
        return inline(event.kind.value.replace("_", " ")), event.text

    def update(self, event: IncidentEvent) -> tuple[str, str | None]:
        """A structured update: the status it moved, the promise, and its summary and impact
        quoted."""
        details = event.details or {}
        what = "posted an update"
        if event.field == "status":
            what += f" and changed the status: {inline(event.from_value or '')} → "
            what += inline(event.to_value or "")
        seconds = details.get("next_update_in")
        if isinstance(seconds, int) and seconds > 0:
            what += f"; next update promised in {duration(timedelta(seconds=seconds))}"
        quoted = event.text or ""
        impact = details.get("impact")
        if isinstance(impact, str) and impact.strip():
            quoted += f"\n\nImpact: {impact}"
        return what, quoted

    def roles(self, facts: PostmortemFacts) -> list[str]:
        """Each role, who held it and from when, from the timeline (its holder now last)."""
        incident = facts.incident
        held: dict[str, list[tuple[str | None, datetime]]] = {}
        leads = [e for e in facts.events if e.kind == EventKind.ASSIGNED and e.field == "owner"]
        # Whoever was declared the lead, until the first change (or still).
        first_lead = leads[0].from_value if leads else incident.owner
        if first_lead:
            held["lead"] = [(first_lead, incident.created_at)]
        for event in facts.events:
            key = "lead" if event in leads else event.field
            if event in leads or (event.kind == EventKind.ROLE_ASSIGNED and key):
                held.setdefault(key or "", []).append((event.to_value, event.occurred_at))
        lines = []
        for role, holder in facts.roles:
            spans = held.get(role.key) or ([(holder, incident.created_at)] if holder else [])
            while spans and spans[0][0] is None:
                spans.pop(0)
            shown = [
                f"{self.person(user) if user else 'nobody'} (from {_at(since)})"
                for user, since in spans
            ]
            lines.append(f"- {inline(role.name)}: {', then '.join(shown) or 'nobody'}")
        return lines

    def timeline(self, events: list[IncidentEvent]) -> list[str]:
        lines = []
        for event in events:
            # Deleted notes stay out of a document meant to be shared.
            if event.kind == EventKind.NOTE_DELETED or (
                event.kind == EventKind.NOTE and event.deleted_at is not None
            ):
                continue
            what, quoted = self.what(event)
            lines.append(f"- {_at(event.occurred_at)} · {self.person(event.actor)} · {what}")
            if quoted and quoted.strip():
                lines += [f"  > {line}".rstrip() for line in paragraphs(quoted)]
        return lines or ["Nothing was recorded."]


def _milestones(incident: Incident) -> list[str]:
    rows = [f"| Declared | {_at(incident.created_at)} | |"]
    for label, reached in (
        ("Acknowledged (MTTA)", incident.acknowledged_at),
        ("Mitigated (MTTM)", incident.mitigated_at),
        ("Resolved (MTTR)", incident.resolved_at),
        ("Closed", incident.closed_at),
    ):
        if reached is None:
            rows.append(f"| {label} | not yet | |")
        else:
            rows.append(f"| {label} | {_at(reached)} | {duration(reached - incident.created_at)} |")
    return ["| Milestone | Time (UTC) | Since declared |", "|---|---|---|", *rows]


def _screenshots(
    writer: _Writer,
    shots: list[Screenshot],
    screenshot_url: Callable[[int, int], str] | None,
) -> list[str]:
    lines = []
    for shot in shots:
        caption = f' · "{inline(shot.caption)}"' if shot.caption else ""
        lines.append(
            f"- {inline(shot.filename)}{caption} · {size(shot.size_bytes)} · "
            f"{shot.width}x{shot.height} px · added by {writer.person(shot.uploaded_by)} "
            f"at {_at(shot.created_at)} UTC"
        )
        if screenshot_url is not None:
            alt = inline(shot.caption or shot.filename)
            lines.append(f"  ![{alt}]({screenshot_url(shot.incident_id, shot.id)})")
    return lines or ["None."]


def postmortem_markdown(
    facts: PostmortemFacts,
    *,
    name: Names | None = None,
    page_url: str | None = None,
    screenshot_url: Callable[[int, int], str] | None = None,
) -> str:
    """The document. `screenshot_url(incident_id, screenshot_id)` links each screenshot (shown
    inline by wikis); without it they are listed by name."""
    incident = facts.incident
    writer = _Writer(name)
    ref = incidents.format_incident_id(incident.id)
    lines = [f"# {ref} ({incident.severity.value}, {incident.status.value}): "]
    lines[0] += inline(incident.title)
    lines += ["", *review.facts(incident, writer.person)]
    if page_url:
        lines.append(f"- Incident page: <{page_url}>")
    sections: list[tuple[str, list[str]]] = [
        ("Summary", paragraphs(incident.description or "") or ["No description."]),
        ("Impact", review.impact(incident)),
        ("Milestones", _milestones(incident)),
        ("Timeline (UTC)", writer.timeline(facts.events)),
        ("Roles (times in UTC)", writer.roles(facts)),
        ("Contributing factors", review.text(incident.contributing_factors)),
        ("What went well", review.text(incident.went_well)),
        ("What went badly", review.text(incident.went_badly)),
        ("Follow-ups", review.followup_list(facts.followups, writer.person)),
        ("Cause", paragraphs(incident.cause or "") or ["Not recorded."]),
        ("Resolution", paragraphs(incident.resolution or "") or ["Not recorded."]),
        ("Screenshots", _screenshots(writer, facts.screenshots, screenshot_url)),
        ("Review", review.review_status(incident, writer.person)),
    ]
    for heading, body in sections:
        lines += ["", f"## {heading}", "", *body]
    return "\n".join(lines) + "\n"
