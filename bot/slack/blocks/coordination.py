"""Running an incident: the structured update's layout, roles and their lines, the incident
channel's welcome message, and the DMs (a role's duties, a subscriber's update, a nudge)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    HeaderBlock,
    PlainTextObject,
    SectionBlock,
)

from bot.incidents.roles import LEAD, Role, RoleRules
from bot.incidents.vocabulary import InvalidInput, format_incident_id
from bot.incidents.workflow import ACTIVE_STATUSES
from bot.slack import ids
from db.models import EventKind, Incident, IncidentEvent, Status

from .text import (
    SEVERITY_EMOJI,
    STATUS_EMOJI,
    _context,
    _mrkdwn,
    _quote,
    channel,
    clip,
    metadata,
    ref,
    safe_url,
    severity_label,
    status_label,
    truncate,
    user,
    when,
)

Holders = Sequence[tuple[Role, str | None]]
# The welcome message's links block; CARD_LINK_MARK stands for the card's permalink until the
# outbox looks it up (bot.delivery.channels.link_card).
WELCOME_LINKS = "welcome_links"
CARD_LINK_MARK = "\u2063card\u2063"
# Slack allows 50 blocks a message: the welcome lists at most this many roles.
WELCOME_ROLES = 30


def web_page(public_url: str | None, incident_id: int, tail: str = "") -> str | None:
    """The incident's page (or its post-mortem, `tail="/postmortem"`), when PUBLIC_URL is set."""
    page = f"{public_url}/incidents/{incident_id}{tail}"
    return page if public_url and safe_url(page) else None


def role_of(rules: RoleRules | None, key: str | None) -> Role:
    """The role named `key`; one no longer configured keeps its key as its name."""
    key = key or "?"
    if key in ("lead", "owner"):
        return LEAD
    try:
        return (rules or RoleRules()).get(key)
    except InvalidInput:
        return Role(key, key, "")


def _due(event: IncidentEvent) -> datetime | None:
    raw = (event.details or {}).get("next_update_at")
    try:
        return datetime.fromisoformat(raw) if raw else None
    except (TypeError, ValueError):
        return None


# --- Lines of the timeline --------------------------------------------------------------------


def role_line(event: IncidentEvent, rules: RoleRules | None) -> str:
    """ROLE_ASSIGNED, and the lead's ASSIGNED (with its handoff): who holds the role now."""
    lead = event.kind == EventKind.ASSIGNED
    role = LEAD if lead else role_of(rules, event.field)
    name = "the incident lead" if lead else role.name
    mark = "👤" if lead else "🎭"
    given = event.actor and event.actor not in (event.to_value, event.from_value)
    by = f" (by {user(event.actor)})" if given else ""
    if event.to_value is None:
        if event.from_value and event.actor == event.from_value:
            line = f"{mark} {user(event.from_value)} stepped down as {name}; nobody is, now"
        else:
            line = f"{mark} Nobody is {name} now ({user(event.from_value)} was){by}"
    else:
        line = f"{mark} {user(event.to_value)} is now {name}"
        if event.from_value:
            line += f", taking over from {user(event.from_value)}"
        line += by
    handoff = (event.details or {}).get("handoff")
    if handoff:
        line += f"\n*Handoff from {user(event.from_value or event.actor)}:*\n"
        line += _quote(str(handoff), 1_000)
    return line


def status_line(event: IncidentEvent) -> str:
    """A status change (STATUS_CHANGED), with the cause and resolution it was given."""
    new = Status(event.to_value)
    who = user(event.actor)
    line = f"{STATUS_EMOJI[new]} {who} changed the status: *{event.from_value} → {new.value}*"
    for label in ("cause", "resolution"):
        if (event.details or {}).get(label):
            line += f"\n*{label.capitalize()}:* {clip(event.details[label], 1_000)}"
    return line


def lead_reminder_line(event: IncidentEvent) -> str:
    """A SEV1 or SEV2 that has had no lead for a while (the I'll lead button goes with it)."""
    minutes = (event.details or {}).get("leaderless_minutes")
    span = f" for {_minutes(int(minutes))}" if minutes is not None else ""
    rid = format_incident_id(event.incident_id)
    about = f"{event.incident.severity.value} {rid}" if event.incident is not None else rid
    return (
        f"🚨 {about} has had no lead{span}. Who leads it? Click *I'll lead*, or "
        f"`/incident role {rid} lead me`."
    )


def _minutes(minutes: int) -> str:
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _status_move(event: IncidentEvent, incident: Incident | None) -> str | None:
    if event.field == "status" and event.to_value:
        new = status_label(Status(event.to_value))
        if event.from_value:
            return f"*Status:* {status_label(Status(event.from_value))} → *{new}*"
        return f"*Status:* *{new}*"
    if incident is not None:
        return f"*Status:* {status_label(incident.status)} (unchanged)"
    return None


def _next_line(event: IncidentEvent) -> str:
    due = _due(event)
    if due is None:
        return "*Next update:* no further updates promised"
    return f"*Next update:* by {when(due)}"


def update_parts(event: IncidentEvent, incident: Incident | None) -> list[str]:
    """A structured update, each part a block of its own (each within 3,000 characters)."""
    details = event.details or {}
    head = f"📣 *Update* from {user(event.actor)} · {when(event.occurred_at)}"
    move = _status_move(event, incident)
    parts = [head + (f"\n{move}" if move else "")]
    parts.append(f"*What we know*\n{_quote(event.text or '-', 2_500)}")
    if details.get("impact"):
        parts.append(f"*Customer impact*\n{_quote(str(details['impact']), 1_000)}")
    for label in ("resolution", "cause"):
        if details.get(label):
            parts.append(f"*{label.capitalize()}*\n{_quote(str(details[label]), 1_000)}")
    parts.append(_next_line(event))
    return parts


def update_line(event: IncidentEvent, incident: Incident | None = None) -> str:
    return "\n".join(update_parts(event, incident))


def update_blocks(event: IncidentEvent, incident: Incident | None) -> list[Block]:
    *body, due = update_parts(event, incident)
    return [*(SectionBlock(text=_mrkdwn(part)) for part in body), _context(due)]


# --- The incident channel's welcome -----------------------------------------------------------


def welcome_links(incident: Incident, public_url: str | None, card_link: str | None) -> str:
    """The card (by its permalink when known, else its channel), the web page, the post-mortem
    draft (those two only with PUBLIC_URL)."""
    links: list[str] = []
    if card_link:
        links.append(f"<{card_link}|The card>")
    elif incident.slack_channel_id:
        links.append(f"The card in {channel(incident.slack_channel_id)}")
    page = web_page(public_url, incident.id)
    if page:
        links.append(f"<{page}|Web page>")
    draft = web_page(public_url, incident.id, "/postmortem")
    if draft:
        links.append(f"<{draft}|Post-mortem draft>")
    return "*Links*\n" + (" · ".join(links) if links else f"`/incident show {incident.id}`")


def _take_button(incident: Incident, role: Role) -> ButtonElement:
    if role.key == LEAD.key:
        return ButtonElement(
            text="I'll lead",
            action_id=ids.TAKE_LEAD_ACTION,
            value=metadata(id=incident.id),
            style="primary",
        )
    return ButtonElement(
        text=truncate(f"Take {role.name}", 75),
        action_id=f"{ids.TAKE_ROLE_ACTION}:{role.key}",
        value=metadata(id=incident.id, role=role.key),
    )


def welcome(
    incident: Incident, holders: Holders, *, public_url: str | None = None
) -> tuple[str, list[Block]]:
    """The channel's first message: what happened, who does what (a Take button for each empty
    role), what to do first, the links. Edited as roles are taken."""
    rid = ref(incident)
    text = truncate(f"{rid} is being handled here: {clip(incident.title, 200)}", 3_000)
    header = f"{SEVERITY_EMOJI[incident.severity]} {rid}: {incident.title}"
    what = (
        f"*What happened*\n{clip(incident.title, 500)}\n"
        f"{severity_label(incident.severity)} · {status_label(incident.status)} · declared "
        f"{when(incident.created_at)} by {user(incident.reporter)}"
    )
    if incident.service:
        what += f" · service {clip(incident.service, 200)}"
    if incident.description:
        what += f"\n{_quote(incident.description, 1_000)}"
    shown: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(header, 150), emoji=True)),
        SectionBlock(text=_mrkdwn(what)),
        SectionBlock(text=_mrkdwn("*Who does what*")),
    ]
    active = incident.status in ACTIVE_STATUSES
    for role, holder in list(holders)[:WELCOME_ROLES]:
        duties = f"\n_{clip(role.duties, 300)}_" if role.duties else ""
        line = f"*{clip(role.name, 100)}*: {user(holder) if holder else 'nobody yet'}{duties}"
        take = _take_button(incident, role) if holder is None and active else None
        shown.append(
            SectionBlock(block_id=f"welcome_role:{role.key}", text=_mrkdwn(line), accessory=take)
        )
    if len(holders) > WELCOME_ROLES:
        shown.append(_context(f"…and {len(holders) - WELCOME_ROLES} more roles"))
    example = next((r.key for r, _ in holders if r.key != LEAD.key), LEAD.key)
    first = (
        "*What to do first* (here the incident's id can be left out)\n"
        "• `/incident update`: post an update: what is known, the customers' impact, when the "
        "next one comes\n"
        f"• `/incident role {example} me`: take a role (`me`, `@someone` or `nobody`)\n"
        "• `/incident status mitigated`: move the status on\n"
        "• `/incident note <text>`: add to the timeline\n"
        "• `/incident subscribe`: get every update by DM"
    )
    shown.append(SectionBlock(text=_mrkdwn(first)))
    value = metadata(id=incident.id)
    if active:
        shown.append(
            ActionsBlock(
                block_id="welcome_actions",
                elements=[
                    ButtonElement(
                        text="Update", action_id=ids.UPDATE_ACTION, value=value, style="primary"
                    ),
                    ButtonElement(text="Subscribe", action_id=ids.SUBSCRIBE_ACTION, value=value),
                ],
            )
        )
    links = welcome_links(incident, public_url, None)
    shown.append(SectionBlock(block_id=WELCOME_LINKS, text=_mrkdwn(links)))
    return text, shown


# --- DMs ---------------------------------------------------------------------------------------


def _about(incident: Incident) -> str:
    return (
        f"{SEVERITY_EMOJI[incident.severity]} *{ref(incident)}*: {clip(incident.title, 300)}\n"
        f"{severity_label(incident.severity)} · {status_label(incident.status)} · lead "
        f"{user(incident.owner)}"
    )


def _where(incident: Incident, public_url: str | None) -> str:
    places = []
    if incident.own_channel_id and incident.own_channel_archived_at is None:
        places.append(f"Channel: {channel(incident.own_channel_id)}")
    if incident.slack_channel_id:
        places.append(f"Card: in {channel(incident.slack_channel_id)}")
    page = web_page(public_url, incident.id)
    if page:
        places.append(f"<{page}|Web page>")
    places.append(f"`/incident show {incident.id}`")
    return " · ".join(places)


def _button(text: str, action_id: str, incident: Incident, style: str | None = None) -> Any:
    return ButtonElement(
        text=text, action_id=action_id, value=metadata(id=incident.id), style=style
    )


def role_dm(
    incident: Incident, event: IncidentEvent, rules: RoleRules, public_url: str | None
) -> tuple[str, list[Block]]:
    """To whoever was given a role: its name and duties, the incident, where it is run, and the
    handoff summary when the lead was handed over."""
    lead = event.kind == EventKind.ASSIGNED
    role = LEAD if lead else role_of(rules, event.field)
    text = truncate(
        f"You are now {role.name} of {ref(incident)}: {clip(incident.title, 200)}", 3_000
    )
    given = f", given by {user(event.actor)}" if event.actor != event.to_value else ""
    parts = [
        f"🎭 You are now *{clip(role.name, 100)}* of {ref(incident)}{given}.",
        f"*Your duties*\n{clip(role.duties or 'As agreed in the channel.', 1_000)}",
        _about(incident),
    ]
    handoff = (event.details or {}).get("handoff")
    if handoff:
        parts.append(
            f"*Handoff from {user(event.from_value or event.actor)}*\n{_quote(str(handoff), 1_000)}"
        )
    shown: list[Block] = [SectionBlock(text=_mrkdwn(part)) for part in parts]
    shown.append(_context(_where(incident, public_url)))
    if incident.status in ACTIVE_STATUSES:
        shown.append(
            ActionsBlock(
                block_id="role_actions",
                elements=[_button("Update", ids.UPDATE_ACTION, incident, "primary")],
            )
        )
    return text, shown


def subscriber_dm(
    incident: Incident, events: Sequence[IncidentEvent], public_url: str | None
) -> tuple[str, list[Block]] | None:
    """A subscriber's copy of one change (an update, a status change, the resolution), with an
    Unsubscribe button; None when the change is none of those."""
    told = [e for e in events if e.kind in (EventKind.STATUS_UPDATE, EventKind.STATUS_CHANGED)]
    if not told:
        return None
    resolved = any(e.field == "status" and e.to_value == Status.RESOLVED.value for e in told)
    what = "is resolved" if resolved else "has an update"
    text = truncate(f"{ref(incident)} {what}: {clip(incident.title, 200)}", 3_000)
    shown: list[Block] = [SectionBlock(text=_mrkdwn(_about(incident)))]
    for event in told[:5]:
        if event.kind == EventKind.STATUS_UPDATE:
            shown += update_blocks(event, None)
        else:
            shown.append(SectionBlock(text=_mrkdwn(truncate(status_line(event), 2_900))))
    shown.append(_context(f"You are subscribed to {ref(incident)}. {_where(incident, public_url)}"))
    shown.append(
        ActionsBlock(
            block_id="subscriber_actions",
            elements=[_button("Unsubscribe", ids.UNSUBSCRIBE_ACTION, incident)],
        )
    )
    return text, shown


def nudge_dm(incident: Incident, due: datetime | None) -> tuple[str, list[Block]]:
    """To the lead and the comms role when the promised update is late: an Update button."""
    promised = f" was promised for {when(due)}" if due else " is overdue"
    line = f"⏰ The next update on {ref(incident)}{promised}."
    text = truncate(f"{line} {clip(incident.title, 200)}", 3_000)
    shown: list[Block] = [
        SectionBlock(
            text=_mrkdwn(
                f"{line}\nPost it now: what is known, the customers' impact, and when the next "
                "one comes.\n" + _about(incident)
            )
        ),
        ActionsBlock(
            block_id="nudge_actions",
            elements=[_button("Update", ids.UPDATE_ACTION, incident, "primary")],
        ),
    ]
    return text, shown
