"""Messages in channels: the incident card, its thread replies, the daily digest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    HeaderBlock,
    PlainTextObject,
    SectionBlock,
)

from bot import incidents
from bot.incidents import progress
from bot.incidents.roles import RoleRules
from bot.slack import ids
from db.models import (
    EventKind,
    FollowUp,
    Incident,
    IncidentEvent,
    Screenshot,
    Severity,
    Status,
)

from .coordination import (
    Holders,
    lead_reminder_line,
    role_line,
    status_line,
    update_blocks,
    update_line,
    web_page,
)
from .followups import card_section as followup_section
from .text import (
    SEVERITY_EMOJI,
    STATUS_VERB,
    _context,
    _mrkdwn,
    _quote,
    channel,
    clip,
    escape,
    metadata,
    ref,
    safe_url,
    severity_label,
    status_label,
    truncate,
    user,
    when,
)

# ephemeral.py's name for it.
_safe_url = safe_url

# --- The incident card -------------------------------------------------------------------------


def card_text(incident: Incident) -> str:
    """Notification and fallback text of the card (chat.update allows 4,000 characters)."""
    return truncate(
        f"{SEVERITY_EMOJI[incident.severity]} {ref(incident)} [{incident.severity.value}, "
        f"{incident.status.value}] {escape(incident.title)}",
        3_000,
    )


def channel_line(incident: Incident, said: dict[str, Any]) -> str:
    """The bot's own lines in an incident's channel, from what the domain says happened."""
    rid = ref(incident)
    match said.get("say"):
        case "opened":
            return f"This is {rid}'s channel."
        case "archived":
            return (
                f"{rid} is closed, so this channel is archived. Its record stays: the card in "
                f"{channel(incident.slack_channel_id or '')} and `/incident show {rid}`."
            )
        case "reopened":
            return (
                f"{rid} was reopened. Its earlier channel, {channel(str(said.get('previous')))}, "
                "is archived and keeps what was said there."
            )
        case "not_invited":
            who = ", ".join(
                f"{_someone(str(person))} ({escape(str(why))})"
                for person, why in said.get("skipped") or []
            )
            return f"Not invited: {who}."
    return escape(str(said.get("say")))


def _someone(user_or_group: str) -> str:
    if user_or_group.startswith("S"):
        return f"the group <!subteam^{escape(user_or_group)}>"
    return user(user_or_group)


def channel_topic(incident: Incident) -> str:
    """`SEV1 · investigating · lead @x`: what an incident's channel is about, at a glance."""
    lead = f"lead {user(incident.owner)}" if incident.owner else "no lead"
    return f"{incident.severity.value} · {incident.status.value} · {lead}"


def card(
    incident: Incident,
    screenshots: Sequence[Screenshot] = (),
    *,
    offer_channel: bool = False,
    public_url: str | None = None,
    roles: Holders | None = None,
    latest: IncidentEvent | None = None,
    now: datetime | None = None,
    followups: Sequence[FollowUp] | None = None,
    tracker: str | None = None,
) -> list[Block]:
    """The incident card: its fields, the lead and the other roles, the latest update and when
    the next is due (or overdue), and its buttons; its follow-ups when given (the card and the
    pinned summary), with Export buttons when a tracker is configured."""
    header = f"{SEVERITY_EMOJI[incident.severity]} {ref(incident)}: {incident.title}"
    fields = [
        f"*Status*\n{status_label(incident.status)}",
        f"*Severity*\n{severity_label(incident.severity)}",
        f"*Service*\n{clip(incident.service or '-', 200)}",
        f"*Category*\n{escape(incident.category or '-')}",
        f"*Lead*\n{user(incident.owner)}",
        f"*Assignee*\n{user(incident.assignee)}",
        f"*Reporter*\n{user(incident.reporter)}",
        f"*Declared*\n{when(incident.created_at)}",
    ]
    if incident.own_channel_id:
        fields.append(f"*Channel*\n{channel(incident.own_channel_id)}")
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(header, 150), emoji=True)),
        SectionBlock(fields=[_mrkdwn(f) for f in fields]),
    ]
    others = [(role, holder) for role, holder in roles or () if role.key != "lead"]
    if others:
        held = " · ".join(f"*{clip(role.name, 80)}* {user(holder)}" for role, holder in others[:20])
        blocks.append(_context(truncate(held, 2_900)))
    if incident.description:
        blocks.append(SectionBlock(text=_mrkdwn(clip(incident.description, 2_500))))
    if latest is not None:
        said = f"*Latest update* ({when(latest.occurred_at)}, {user(latest.actor)})\n"
        said += _quote(latest.text or "-", 1_500)
        impact = (latest.details or {}).get("impact")
        if impact:
            said += f"\n*Customer impact:* {clip(str(impact), 500)}"
        blocks.append(SectionBlock(text=_mrkdwn(said)))
    due = _next_update(incident, latest, now or datetime.now(UTC))
    if due:
        blocks.append(_context(due))
    for label, value in (("Cause", incident.cause), ("Resolution", incident.resolution)):
        if value:
            blocks.append(SectionBlock(text=_mrkdwn(f"*{label}*\n{clip(value, 1_000)}")))
    buttons = [
        ButtonElement(
            text=STATUS_VERB[status],
            action_id=f"{ids.STATUS_ACTION}:{status.value}",
            value=metadata(id=incident.id, status=incident.status.value),
            style="primary" if status == Status.RESOLVED else None,
        )
        for status in incidents.allowed_next_statuses(incident.status)
    ]
    value = metadata(id=incident.id)
    if incident.status in incidents.ACTIVE_STATUSES:
        buttons.append(ButtonElement(text="Update", action_id=ids.UPDATE_ACTION, value=value))
    buttons += [
        ButtonElement(text="Add note", action_id=ids.ADD_NOTE_ACTION, value=value),
        ButtonElement(text="Edit", action_id=ids.EDIT_ACTION, value=value),
        ButtonElement(text="Attach screenshot", action_id=ids.ATTACH_ACTION, value=value),
    ]
    if incident.owner is None and incident.status in incidents.ACTIVE_STATUSES:
        buttons.append(ButtonElement(text="I'll lead", action_id=ids.TAKE_LEAD_ACTION, value=value))
    buttons.append(ButtonElement(text="Subscribe", action_id=ids.SUBSCRIBE_ACTION, value=value))
    if offer_channel and not incident.wants_own_channel:
        buttons.append(
            ButtonElement(text="Open channel", action_id=ids.OPEN_CHANNEL_ACTION, value=value)
        )
    if screenshots:
        buttons.append(
            ButtonElement(
                text=f"Screenshots ({len(screenshots)})",
                action_id=ids.SCREENSHOTS_ACTION,
                value=value,
            )
        )
        blocks.append(_context(screenshot_summary(screenshots, limit=CARD_SCREENSHOTS)))
    blocks.append(ActionsBlock(block_id="card_actions", elements=buttons))
    if followups is not None:
        today = (now or datetime.now(UTC)).date()
        blocks += followup_section(incident, followups, tracker=tracker, today=today)
    footer = f"Last change {when(incident.updated_at)} · `/incident show {incident.id}`"
    page = web_page(public_url, incident.id)
    if page:
        footer += f" · <{page}|Open on the web>"
    blocks.append(_context(footer))
    return blocks


CARD_SCREENSHOTS = 5


def _next_update(incident: Incident, latest: IncidentEvent | None, now: datetime) -> str | None:
    """When the promised next update is due, or since when it is overdue (active incidents)."""
    if incident.status not in incidents.ACTIVE_STATUSES:
        return None
    due = incident.next_update_at
    if due is None:
        return "No further updates promised" if latest is not None else None
    if progress.is_overdue(due, now):
        return f":warning: *Update overdue* since {when(due)}"
    return f"Next update due {when(due)}"


def size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n_bytes < 1024 or unit == "MB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def screenshot_line(shot: Screenshot) -> str:
    return (
        f"🖼️ {clip(shot.filename, 80)} · {size(shot.size_bytes)} · "
        f"{shot.width}x{shot.height} · {user(shot.uploaded_by)} · {when(shot.created_at)}"
    )


def screenshot_summary(screenshots: Sequence[Screenshot], *, limit: int) -> str:
    lines = [screenshot_line(s) for s in screenshots[-limit:]]
    if len(screenshots) > limit:
        lines.insert(0, f"{len(screenshots) - limit} earlier screenshots not shown")
    return truncate("\n".join(lines), 2_900)


# --- Thread replies ----------------------------------------------------------------------------


def _event_line(event: IncidentEvent, rules: RoleRules | None = None) -> str:
    who = user(event.actor)
    match event.kind:
        case EventKind.STATUS_UPDATE:
            return update_line(event)
        case EventKind.ROLE_ASSIGNED:
            return role_line(event, rules)
        case EventKind.ASSIGNED if event.field == "owner" or event.details.get("role") == "lead":
            return role_line(event, rules)
        case EventKind.LEAD_REMINDER:
            return lead_reminder_line(event)
        case EventKind.UPDATE_OVERDUE:
            due = event.details.get("next_update_at")
            at = f" (promised for {when(datetime.fromisoformat(due))})" if due else ""
            return f"⏰ The next update is overdue{at}"
        case EventKind.CREATED:
            line = f"🚨 {who} declared the incident as {event.to_value}"
        case EventKind.STATUS_CHANGED:
            line = status_line(event)
        case EventKind.SEVERITY_CHANGED:
            new_severity = Severity(event.to_value)
            line = (
                f"{SEVERITY_EMOJI[new_severity]} {who} changed the severity: "
                f"*{event.from_value} → {event.to_value}*"
            )
        case EventKind.FIELD_CHANGED:
            if event.to_value is None:
                line = f"✏️ {who} cleared the {event.field}"
            else:
                line = f"✏️ {who} changed the {event.field}:\n{_quote(event.to_value, 500)}"
        case EventKind.ASSIGNED:
            if event.to_value is None:
                line = f"👤 {who} unassigned the {event.field} ({user(event.from_value)})"
            else:
                line = f"👤 {who} set the {event.field} to {user(event.to_value)}"
        case EventKind.NOTE:
            source = event.details.get("source_url")
            origin = f" (<{source}|from a message>)" if source and safe_url(source) else ""
            return f"📝 {who} added a note{origin}:\n{_quote(event.text or '', 2_800)}"
        case EventKind.NOTE_DELETED:
            line = f"🗑️ {who} deleted a note"
        case EventKind.SCREENSHOT_ADDED:
            line = _attachment_line(who, event.details)
        case EventKind.REMINDER:
            minutes = int(event.details.get("silent_minutes", 0))
            silent = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
            line = (
                f"⏰ {user(event.details.get('who'))}, no update for {silent}. "
                "What's the latest? Post an update, or snooze these reminders."
            )
        case EventKind.REMINDERS_SNOOZED:
            until = datetime.fromisoformat(event.to_value) if event.to_value else None
            line = f"⏸️ {who} snoozed reminders" + (f" until {when(until)}" if until else "")
        case EventKind.SCREENSHOT_DELETED:
            name = clip(str(event.details.get("name", "")), 80)
            line = f"🗑️ {who} deleted the screenshot {name}"
        case _:
            line = f"{who} {event.kind.value.replace('_', ' ')}"
    if event.text:
        line += f"\n{_quote(event.text, 2_800)}"
    return line


def _attachment_line(who: str, details: dict[str, Any]) -> str:
    stored, duplicates = details.get("stored", []), details.get("duplicates", [])
    refused = details.get("refused", [])
    source = details.get("source_url")
    origin = f" from <{source}|a message>" if source and safe_url(source) else ""
    count = f"{len(stored)} screenshot{'s' if len(stored) != 1 else ''}"
    line = f"📎 {who} attached {count}{origin}"
    if duplicates:
        names = ", ".join(clip(n, 60) for n in duplicates[:10])
        line += f"\nAlready there: {names}"
    for item in refused[:10]:
        name = clip(str(item.get("name", "")), 60)
        line += f"\nNot kept: {name} ({clip(str(item.get('reason', '')), 200)})"
    return line


# Kept in the timeline, never posted in the thread or the channel (the card shows it).
NOT_POSTED = frozenset({EventKind.UPDATE_OVERDUE})


def posted(events: Sequence[IncidentEvent]) -> list[IncidentEvent]:
    """The events a thread or channel reply shows."""
    return [e for e in events if e.kind not in NOT_POSTED]


def thread_text(events: Sequence[IncidentEvent], rules: RoleRules | None = None) -> str:
    return truncate("\n".join(_event_line(e, rules) for e in events), 12_000)


SNOOZE_CHOICES = ((60, "Snooze 1 h"), (240, "Snooze 4 h"))
# Replies laid out in blocks: a structured update, and those with buttons.
_IN_BLOCKS = frozenset({EventKind.REMINDER, EventKind.STATUS_UPDATE, EventKind.LEAD_REMINDER})


def thread_blocks(
    incident: Incident, events: Sequence[IncidentEvent], rules: RoleRules | None = None
) -> list[Block] | None:
    """Blocks for replies that need buttons (reminders) or a layout (updates); plain text for
    the rest."""
    kinds = {e.kind for e in events}
    if not kinds & _IN_BLOCKS:
        return None
    shown: list[Block] = []
    lines: list[str] = []
    for event in events[:10]:
        if event.kind == EventKind.STATUS_UPDATE:
            if lines:
                shown.append(SectionBlock(text=_mrkdwn(truncate("\n".join(lines), 2_900))))
                lines = []
            shown += update_blocks(event, incident)
        else:
            lines.append(_event_line(event, rules))
    if lines:
        shown.append(SectionBlock(text=_mrkdwn(truncate("\n".join(lines), 2_900))))
    value = metadata(id=incident.id)
    if EventKind.REMINDER in kinds:
        buttons = [
            ButtonElement(
                text="Post update", action_id=ids.ADD_NOTE_ACTION, value=value, style="primary"
            ),
            *[
                ButtonElement(
                    text=label,
                    action_id=f"{ids.SNOOZE_ACTION}:{minutes}",
                    value=metadata(id=incident.id, minutes=minutes),
                )
                for minutes, label in SNOOZE_CHOICES
            ],
        ]
        shown.append(ActionsBlock(block_id="reminder_actions", elements=buttons))
    if EventKind.LEAD_REMINDER in kinds:
        lead = ButtonElement(
            text="I'll lead", action_id=ids.TAKE_LEAD_ACTION, value=value, style="primary"
        )
        shown.append(ActionsBlock(block_id="lead_reminder_actions", elements=[lead]))
    return shown


def digest(
    day: str,
    active: Sequence[Incident],
    resolved: Sequence[Incident],
    stale: Sequence[Incident],
) -> tuple[str, list[Block]]:
    """The daily digest: active incidents by severity, resolved in the last day, stale ones."""
    text = (
        f"Incident digest for {day}: {len(active)} active, {len(resolved)} resolved in the last "
        f"day, {len(stale)} without a recent update"
    )
    blocks: list[Block] = [HeaderBlock(text=truncate(f"Incident digest, {day}", 150))]

    def listing(heading: str, items: Sequence[Incident], limit: int = 10) -> None:
        blocks.append(SectionBlock(text=_mrkdwn(f"*{heading}* ({len(items)})")))
        if not items:
            blocks.append(_context("None."))
            return
        lines = [
            f"{SEVERITY_EMOJI[i.severity]} *{ref(i)}* {i.severity.value} · {i.status.value} · "
            f"{clip(i.title, 100)} · lead {user(i.owner)}"
            for i in items[:limit]
        ]
        if len(items) > limit:
            lines.append(f"…and {len(items) - limit} more: `/incident list`")
        blocks.append(SectionBlock(text=_mrkdwn(truncate("\n".join(lines), 2_900))))

    listing("Active, most severe first", active)
    listing("Resolved in the last day", resolved)
    listing("No update for longer than their reminder cadence", stale)
    return text, blocks
