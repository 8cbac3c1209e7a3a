"""Messages for one person, and the Home tab: lists, details, help, confirmations."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    HeaderBlock,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.incidents import ACTIVE_STATUSES, Actor, IncidentRow, Page
from bot.incidents.roles import DEFAULT_ROLES, LEAD, Role
from bot.slack import ids
from db.models import EventKind, Incident, IncidentEvent, Screenshot, Severity, Status

from .messages import (
    _event_line,
    _safe_url,
    screenshot_line,
    web_page,
)
from .modals import (
    _severity_option,
)
from .text import (
    SEVERITY_EMOJI,
    STATUS_EMOJI,
    _context,
    _mrkdwn,
    channel,
    clip,
    escape,
    metadata,
    ref,
    severity_label,
    status_label,
    truncate,
    user,
    when,
)

# --- Ephemeral messages: list, detail, help, confirmations -------------------------------------


# Lists, page buttons and Home tabs show the same active incidents over and over; a row is an
# immutable tuple of everything its line shows, so a changed incident is a new key.
@functools.lru_cache(maxsize=4_096)
def _incident_summary(incident: IncidentRow) -> str:
    # Severity and Status are StrEnums: formatting one gives its value.
    service = f" · _{clip(incident.service, 60)}_" if incident.service else ""
    if incident.own_channel_id:
        service += f" · {channel(incident.own_channel_id)}"
    return (
        f"{SEVERITY_EMOJI[incident.severity]} *{ref(incident)}* · {incident.severity} · "
        f"{STATUS_EMOJI[incident.status]} {incident.status}{service}\n"
        f"{clip(incident.title, 150)}\n"
        f"owner {user(incident.owner)} · declared {when(incident.created_at)}"
    )


def _section_dict(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _page_button(label: str, direction: str, filters: str, page: int) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "action_id": f"{ids.LIST_PAGE_ACTION}:{direction}",
        "value": metadata(q=truncate(filters, 1_500), page=page),
    }


def incident_count(page: Page) -> str:
    """`1 incident`, `12 incidents`, `200+ incidents`: the list's total, as its text says it."""
    if not page.total_is_exact:
        return f"{page.total:,}+ incidents"
    return f"{page.total:,} incident{'' if page.total == 1 else 's'}"


def incident_list(page: Page, filters: str) -> list[dict[str, Any]]:
    """The list as the dicts Slack takes. Built without slack_sdk's models because it is the
    hottest rendering (their validation cost more than the query); the tests check that these
    dicts are exactly what the models would build and that the models accept them."""
    described = f" matching `{clip(filters, 100)}`" if filters else ""
    if not page.items:
        return [_section_dict(f"No incidents{described}.")]
    of_pages = f" of {page.pages}" if page.pages else ""
    blocks = [_section_dict(f"*{incident_count(page)}*{described} · page {page.page}{of_pages}")]
    blocks += [_section_dict(_incident_summary(i)) for i in page.items]
    buttons = []
    if page.page > 1:
        buttons.append(_page_button("Previous", "prev", filters, page.page - 1))
    if page.has_next:
        buttons.append(_page_button("Next", "next", filters, page.page + 1))
    if buttons:
        blocks.append({"type": "actions", "block_id": "list_pages", "elements": buttons})
    hint = "`/incident show <id>` for details · `/incident help` for filters"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": hint, "verbatim": True}]}
    )
    return blocks


DETAIL_SCREENSHOTS = 10


def incident_detail(
    incident: Incident,
    events: Sequence[IncidentEvent],
    viewer: Actor,
    *,
    card_link: str | None,
    undelivered: Sequence[str] = (),
    screenshots: Sequence[Screenshot] = (),
    public_url: str | None = None,
) -> list[Block]:
    title = f"{SEVERITY_EMOJI[incident.severity]} *{ref(incident)}* {clip(incident.title, 200)}"
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(title))]
    if card_link and _safe_url(card_link):
        blocks[0] = SectionBlock(
            text=_mrkdwn(title),
            accessory=ButtonElement(text="Open card", url=card_link, action_id="open_card"),
        )
    fields = [
        f"*Status*\n{status_label(incident.status)}",
        f"*Severity*\n{severity_label(incident.severity)}",
        f"*Lead*\n{user(incident.owner)}",
        f"*Assignee*\n{user(incident.assignee)}",
        f"*Service*\n{clip(incident.service or '-', 200)}",
        f"*Declared*\n{when(incident.created_at)}",
    ]
    if incident.own_channel_id:
        fields.append(f"*Channel*\n{channel(incident.own_channel_id)}")
    blocks.append(SectionBlock(fields=[_mrkdwn(f) for f in fields]))
    page = web_page(public_url, incident.id)
    if page:
        blocks.append(_context(f"<{page}|Open on the web>"))
    if incident.description:
        blocks.append(SectionBlock(text=_mrkdwn(clip(incident.description, 1_500))))
    if undelivered:
        blocks.append(_context("⚠️ Not delivered to Slack: " + clip("; ".join(undelivered), 500)))
    if screenshots:
        shown = screenshots[-DETAIL_SCREENSHOTS:]
        more = len(screenshots) - len(shown)
        heading = (
            f"*Screenshots* ({len(screenshots)}{f', {more} earlier not shown' if more else ''})"
        )
        blocks.append(_context(heading))
        for shot in shown:
            accessory = None
            if viewer.may_remove(shot.uploaded_by):
                accessory = _delete_button(
                    ids.DELETE_SCREENSHOT_ACTION,
                    metadata(screenshot=shot.id, id=incident.id),
                    "Delete this screenshot?",
                    "The stored copy is removed; the timeline keeps that it was.",
                )
            blocks.append(SectionBlock(text=_mrkdwn(screenshot_line(shot)), accessory=accessory))
    blocks.append(_context(f"*Timeline* (last {len(events)})"))
    for event in events:
        if event.kind == EventKind.NOTE and event.deleted_at is not None:
            text = f"{when(event.occurred_at)}  🗑️ note deleted by {user(event.deleted_by)}"
        else:
            text = f"{when(event.occurred_at)}  {_event_line(event)}"
        accessory = None
        can_delete = viewer.may_remove(event.actor)
        if event.kind == EventKind.NOTE and event.deleted_at is None and can_delete:
            accessory = _delete_button(
                ids.DELETE_NOTE_ACTION,
                metadata(note=event.id, id=incident.id),
                "Delete this note?",
                "The timeline will keep that a note was deleted, and by whom.",
            )
        # Short entries: ten full-length notes would pass Slack's cumulative text limit.
        blocks.append(SectionBlock(text=_mrkdwn(truncate(text, 800)), accessory=accessory))
    return blocks


def _delete_button(
    action_id: str, value: str, question: str, consequence: str, *, label: str = "Delete"
) -> ButtonElement:
    """A danger button that asks Slack's confirmation dialog first."""
    return ButtonElement(
        text=label,
        action_id=action_id,
        value=value,
        style="danger",
        confirm=ConfirmObject(
            title=question, text=consequence, confirm="Delete", deny="Keep", style="danger"
        ),
    )


def delete_confirmation(incident: Incident) -> list[Block]:
    question = (
        f"Delete *{ref(incident)}* {clip(incident.title, 200)} with its whole "
        "timeline? This cannot be undone."
    )
    return [
        SectionBlock(text=_mrkdwn(question)),
        ActionsBlock(
            block_id="delete_incident",
            elements=[
                _delete_button(
                    ids.DELETE_INCIDENT_ACTION,
                    metadata(id=incident.id),
                    "Really delete?",
                    f"{ref(incident)} and its timeline will be gone for everyone.",
                    label=f"Delete {ref(incident)}",
                )
            ],
        ),
    ]


def help_text(roles: Sequence[Role] = (LEAD, *DEFAULT_ROLES)) -> str:
    """`/incident help`, naming the roles there are (INCIDENT_ROLES)."""
    named = ", ".join(f"`{role.key}` ({escape(role.name)})" for role in roles)
    return f"""*`/incident`*: run incidents from Slack
• `/incident` or `/incident <title>`: declare an incident (opens a form)
• `/incident declare <title>`: always declares, even a title that starts with a subcommand \
(`/incident declare update failed`)
• `/incident list [filters]`: newest first, 20 a page. Filters combine: a status \
(`open`, `investigating`, `mitigated`, `resolved`, `closed`), `active` (default) or `all`, \
`sev1`..`sev4`, `service:<name>`, `category:<name>`, `mine`, and words to search for \
(whole words; `cra*` also finds crash)
• `/incident show <id>`: details and the latest timeline
• `/incident update <id> [summary]`: post an update (status, what we know, customer impact, \
when the next one comes); the lead and the comms role are nudged if it is late
• `/incident status <id> <status> [note]`: e.g. `/incident status 12 mitigated rolled back`
• `/incident sev <id> <severity> [note]`: `sev1`..`sev4`, `critical`, `high`, `medium`, `low`
• `/incident note <id> <text>`
• `/incident role <id> <role> @someone|me|nobody`: roles {named}; one person each
• `/incident assign <id> [owner|assignee] @someone|me|nobody`: the owner is the lead
• `/incident subscribe <id>` / `/incident unsubscribe <id>`: its updates by DM, without \
joining its channel
• `/incident edit <id>`: edit title, service, description, cause, resolution
• `/incident screenshots <id>`: post the stored screenshots into the incident's thread
• `/incident postmortem <id>`: the post-mortem as a Markdown file, in the incident's thread
• `/incident stats [weeks]`: counts, MTTA/MTTM/MTTR and weekly charts, here (12 weeks by \
default, up to 104)
• `/incident followup <id> <title> [@owner] [due 2026-12-20|in 2w]`: a follow-up (action \
item); the owner and the due date are read from the end only, so a title may say "due"
• `/incident followup FU-3 [done|wontdo|reopen] [@owner] [due in 2w]`: change a follow-up: \
mark it, give it an owner or a due date
• `/incident followups [mine|overdue|<id>]`: open follow-ups, yours, the overdue ones, or an \
incident's; each with a Done button
• `/incident review <id>`: the review's fields (impact window, customer impact, contributing \
factors, what went well and badly, review status, reviewer), also once closed
• `/incident channel <id>`: give the incident its own channel
• `/incident delete <id>`: admins only
Ids can be written `INC-12`, `#12` or `12`. In an incident's own channel the id can be left \
out (another incident is then named as `INC-12`)."""


HELP = help_text()


# --- Home tab ----------------------------------------------------------------------------------

HOME_STATUS_CHOICES = ("active", *[s.value for s in Status], "all")


def _subscription_button(row: IncidentRow, subscribed: Collection[int]) -> ButtonElement | None:
    """Subscribe, or Unsubscribe, beside an active incident."""
    if row.status not in ACTIVE_STATUSES:
        return None
    if row.id in subscribed:
        return ButtonElement(
            text="Unsubscribe", action_id=ids.UNSUBSCRIBE_ACTION, value=metadata(id=row.id)
        )
    return ButtonElement(
        text="Subscribe", action_id=ids.SUBSCRIBE_ACTION, value=metadata(id=row.id)
    )


def home(
    viewer: str,
    mine: Sequence[IncidentRow],
    others: Sequence[IncidentRow],
    *,
    severity: str | None,
    status: str,
    subscriptions: Sequence[IncidentRow] = (),
    followups: Sequence[Block] = (),
) -> View:
    """The Home tab; `subscriptions`: the viewer's active subscriptions, each listed with an
    Unsubscribe button (and every active incident with Subscribe or Unsubscribe)."""
    subscribed = {row.id for row in subscriptions}
    severity_options = [Option(value="any", text="Any severity")] + [
        _severity_option(s) for s in Severity
    ]
    status_options = [Option(value=s, text=s.capitalize()) for s in HOME_STATUS_CHOICES]
    blocks: list[Block] = [
        HeaderBlock(text="Incidents"),
        ActionsBlock(
            block_id="home_controls",
            elements=[
                ButtonElement(
                    text="Declare incident", action_id=ids.HOME_DECLARE_ACTION, style="danger"
                ),
                StaticSelectElement(
                    action_id=ids.HOME_SEVERITY_FILTER,
                    options=severity_options,
                    initial_option=next(
                        o for o in severity_options if o.value == (severity or "any")
                    ),
                ),
                StaticSelectElement(
                    action_id=ids.HOME_STATUS_FILTER,
                    options=status_options,
                    initial_option=next(o for o in status_options if o.value == status),
                ),
            ],
        ),
    ]
    sections = [
        ("Yours (owner or assignee)", mine, "Nothing here."),
        ("Everyone's", others, "Nothing here."),
        (
            "Your subscriptions: their updates come to you by DM",
            subscriptions,
            "None. Subscribe to an incident to be told of its updates without joining its channel.",
        ),
    ]
    # "Your follow-ups" (bot.slack.blocks.followups.home_section), above the incidents.
    blocks += followups
    for heading, items, empty in sections:
        blocks.append(SectionBlock(text=_mrkdwn(f"*{heading}*")))
        if not items:
            blocks.append(_context(empty))
        blocks += [
            SectionBlock(
                text=_mrkdwn(_incident_summary(i)), accessory=_subscription_button(i, subscribed)
            )
            for i in items
        ]
        blocks.append(DividerBlock())
    return View(
        type="home",
        blocks=blocks,
        private_metadata=metadata(severity=severity, status=status, user=viewer),
    )
