"""The review's parts of a post-mortem: the facts under the title, the impact (its window from
the review, else declared and resolved), the follow-ups as a checklist, and where the review
stands. Each empty part says so in a word rather than disappearing, so a reader can tell "none"
from "forgotten"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from bot.incidents import SEVERITY_LABELS, followups, review
from db.models import FollowUp, FollowUpStatus, Incident, ReviewStatus

from .markdown import at, inline, link, paragraphs
from .numbers import duration

# A person as the document shows them (name and id, a token's label, or "nobody").
Person = Callable[[str | None], str]

REVIEW_STATUS_LABELS = {
    ReviewStatus.DRAFT: "draft",
    ReviewStatus.IN_REVIEW: "in review",
    ReviewStatus.DONE: "done",
}
NOT_RECORDED = "Not recorded."


def facts(incident: Incident, person: Person) -> list[str]:
    """What the incident is, at a glance, under the title."""
    return [
        f"- Severity: {incident.severity.value} ({SEVERITY_LABELS[incident.severity]})",
        f"- Status: {incident.status.value}",
        f"- Service: {inline(incident.service) if incident.service else 'not recorded'}",
        f"- Category: {inline(incident.category) if incident.category else 'not recorded'}",
        f"- Declared: {at(incident.created_at)} UTC by {person(incident.reporter)}",
        f"- Lead: {person(incident.owner)}",
        f"- Assignee: {person(incident.assignee)}",
        f"- Review: {review_line(incident, person)}",
    ]


def review_line(incident: Incident, person: Person) -> str:
    status = REVIEW_STATUS_LABELS[incident.review_status]
    return f"{status}, reviewer {person(incident.reviewer)}"


def impact(incident: Incident) -> list[str]:
    """The impact's window and how long it lasted, from the review's impact times (the
    declaration and the resolution when not recorded), then what customers saw."""
    started, ended = review.impact_window(incident)
    start_note = "" if incident.impact_started_at else " (declared; no impact start recorded)"
    lines = [f"- Started: {at(started)} UTC{start_note}"]
    if ended is None:
        lines += ["- Ended: not yet", "- Duration: ongoing"]
    else:
        end_note = "" if incident.impact_ended_at else " (resolved; no impact end recorded)"
        lines += [f"- Ended: {at(ended)} UTC{end_note}", f"- Duration: {duration(ended - started)}"]
    customers = paragraphs(incident.customer_impact or "") or [NOT_RECORDED]
    return [*lines, "", "### Customer impact", "", *customers]


def text(value: str | None) -> list[str]:
    """A review field people wrote (contributing factors, what went well or badly)."""
    return paragraphs(value or "") or [NOT_RECORDED]


def followup_item(item: FollowUp, person: Person) -> str:
    """One follow-up as a checklist item: `- [x]` once done or dropped (won't do, said so),
    `- [ ]` while open; its owner, due date, priority, ticket and where it came from."""
    ref = followups.format_followup_id(item.id)
    box = "[ ]" if item.status == FollowUpStatus.OPEN else "[x]"
    parts = [f"{ref}: {inline(item.title)}"]
    if item.status != FollowUpStatus.OPEN:
        when = f" on {item.closed_at.astimezone(UTC):%Y-%m-%d}" if item.closed_at else ""
        closer = f" by {person(item.closed_by)}" if item.closed_by else ""
        if item.status == FollowUpStatus.DONE:
            parts.append(f"done{closer}{when}")
        else:
            marked = f" (marked{closer}{when})" if closer or when else ""
            parts.append(f"{followups.STATUS_LABELS[item.status]}{marked}")
    parts.append(f"owner {person(item.owner)}")
    parts.append(f"due {item.due_on:%Y-%m-%d}" if item.due_on else "no due date")
    parts.append(f"priority {inline(item.priority)}")
    if item.ticket_key:
        parts.append(f"ticket {link(inline(item.ticket_key), item.ticket_url)}")
    elif item.export_requested_at is not None:
        parts.append(f"ticket being made in {inline(item.tracker or 'the tracker')}")
    if item.source_permalink:
        parts.append(f"from {link('a Slack message', item.source_permalink)}")
    return f"- {box} " + " · ".join(parts)


def followup_list(items: list[FollowUp], person: Person) -> list[str]:
    if not items:
        return ["None yet."]
    done = sum(1 for item in items if item.status != FollowUpStatus.OPEN)
    return [
        f"{done} of {len(items)} done or dropped.",
        "",
        *(followup_item(item, person) for item in items),
    ]


def review_status(incident: Incident, person: Person) -> list[str]:
    return [
        f"- Status: {REVIEW_STATUS_LABELS[incident.review_status]}",
        f"- Reviewer: {person(incident.reviewer)}",
    ]
