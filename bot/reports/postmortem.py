"""An incident's post-mortem as Markdown, ready to paste into a wiki: summary, impact,
milestones, people, who held each role, the timeline (structured updates included), cause,
resolution and screenshots.

Everything people typed is shown literally: Markdown's markup characters are escaped, so a title
such as `# hi | x` or a note holding `[link](javascript:...)` can't add headings, tables or
links to the document. The output depends only on the incident's rows and the links and names
handed in, so the same incident always gives the same document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import SEVERITY_LABELS, roles, screenshots
from db.models import EventKind, Incident, IncidentEvent, Screenshot

from .numbers import duration, size

# A person's name for a Slack user id, when the surface can tell (None: the id is shown).
Names = Callable[[str], str | None]

_MARKUP = re.compile(r"([\\`*_\[\]#|<>])")
# What, at the start of a line, would open a list or a code fence, or make a rule or a heading
# of the line before.
_BLOCK_MARKER = re.compile(r"^(?:[-+=](?:\s|$)|[-=][-=\s]*$|~)")
_ORDERED_MARKER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def escape(text: str) -> str:
    """Text shown as typed. Parentheses are left alone: with `[` and `]` escaped they can't
    form a link, and escaping them would make every aside unreadable in the raw file."""
    return _MARKUP.sub(r"\\\1", text)


def inline(text: str) -> str:
    """User text on one line (a title, a name, a caption)."""
    return escape(" ".join(text.split()))


def _escape_line(line: str) -> str:
    # Stripped: four leading spaces would make the line code.
    escaped = escape(line.strip())
    if _BLOCK_MARKER.match(escaped):
        return "\\" + escaped
    ordered = _ORDERED_MARKER.match(escaped)
    if ordered:
        return f"{ordered.group(1)}\\{ordered.group(2)}{escaped[ordered.end() :]}"
    return escaped


def paragraphs(text: str) -> list[str]:
    """Multi-line user text as lines of Markdown: its line breaks kept (a trailing backslash is
    CommonMark's hard break), runs of blank lines as one paragraph break."""
    lines: list[str] = []
    for raw in text.strip().splitlines():
        line = _escape_line(raw)
        if line:
            if lines and lines[-1]:
                lines[-1] += "\\"
            lines.append(line)
        elif lines and lines[-1]:
            lines.append("")
    return lines


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


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


def _impact(incident: Incident) -> list[str]:
    if incident.resolved_at is not None:
        lasted = duration(incident.resolved_at - incident.created_at)
        span = f"{lasted}, from declaration to resolution"
    else:
        span = f"ongoing (declared {_at(incident.created_at)} UTC)"
    return [
        f"- Severity: {incident.severity.value} ({SEVERITY_LABELS[incident.severity]})",
        f"- Service: {inline(incident.service) if incident.service else 'not recorded'}",
        f"- Category: {inline(incident.category) if incident.category else 'not recorded'}",
        f"- Duration: {span}",
    ]


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
    if page_url:
        lines += ["", f"Incident page: <{page_url}>"]
    sections: list[tuple[str, list[str]]] = [
        ("Summary", paragraphs(incident.description or "") or ["No description."]),
        ("Impact", _impact(incident)),
        ("Milestones", _milestones(incident)),
        (
            "People",
            [
                f"- Reporter: {writer.person(incident.reporter)}",
                f"- Lead: {writer.person(incident.owner)}",
                f"- Assignee: {writer.person(incident.assignee)}",
            ],
        ),
        ("Roles (times in UTC)", writer.roles(facts)),
        ("Timeline (UTC)", writer.timeline(facts.events)),
        ("Cause", paragraphs(incident.cause or "") or ["Not recorded."]),
        ("Resolution", paragraphs(incident.resolution or "") or ["Not recorded."]),
        ("Screenshots", _screenshots(writer, facts.screenshots, screenshot_url)),
    ]
    for heading, body in sections:
        lines += ["", f"## {heading}", "", *body]
    return "\n".join(lines) + "\n"
