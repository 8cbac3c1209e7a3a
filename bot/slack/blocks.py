"""All Block Kit rendering: cards, thread replies, modals, lists, the Home tab.

Built with slack_sdk.models, whose `to_dict()` enforces Slack's per-element limits before anything
is sent. User text is truncated for display (never rejected by Slack) and escaped wherever it
lands in mrkdwn, so a title such as `<!channel> db down` pings nobody.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import (
    ConversationFilter,
    ConversationSelectElement,
    ExternalDataSelectElement,
    FileInputElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot import incidents
from bot.incidents import SEVERITY_LABELS, Actor, Page
from bot.slack import ids
from db.models import EventKind, Incident, IncidentEvent, Screenshot, Severity, Status

SEVERITY_EMOJI = {
    Severity.SEV1: "🔴",
    Severity.SEV2: "🟠",
    Severity.SEV3: "🟡",
    Severity.SEV4: "🔵",
}
STATUS_EMOJI = {
    Status.OPEN: "🆕",
    Status.INVESTIGATING: "🔍",
    Status.MITIGATED: "🩹",
    Status.RESOLVED: "✅",
    Status.CLOSED: "📁",
}
STATUS_VERB = {
    Status.OPEN: "Open",
    Status.INVESTIGATING: "Investigating",
    Status.MITIGATED: "Mitigated",
    Status.RESOLVED: "Resolve",
    Status.CLOSED: "Close",
}
# Slack's input elements take at most 3,000 characters, whatever the domain allows.
INPUT_MAX = 3_000
_CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]+$")


# --- Text helpers ------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three mrkdwn control characters (`&` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of inbound text, so it is stored as the person typed it."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip(text: str, limit: int) -> str:
    """Escape, then fit in `limit` characters: escaping can grow text fivefold (`<` to `&lt;`),
    and Slack's limits count what is sent. Never cuts an entity in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut.rstrip() + "…"


def user(user_id: str | None) -> str:
    """A mention for a real user id; anything else is shown as escaped text."""
    if not user_id:
        return "nobody"
    return f"<@{user_id}>" if incidents.USER_ID.match(user_id) else escape(user_id)


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>" if _CONVERSATION_ID.match(channel_id) else escape(channel_id)


def when(moment: datetime) -> str:
    """A date Slack shows in each reader's time zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def ref(incident: Incident) -> str:
    return incidents.format_incident_id(incident.id)


def severity_label(severity: Severity) -> str:
    return f"{SEVERITY_EMOJI[severity]} {severity.value} ({SEVERITY_LABELS[severity]})"


def status_label(status: Status) -> str:
    return f"{STATUS_EMOJI[status]} {status.value.capitalize()}"


def _mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: no auto-linking of #channel names or bare URLs in what people typed.
    return MarkdownTextObject(text=text, verbatim=True)


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[_mrkdwn(text)])


def _quote(text: str, limit: int) -> str:
    return "\n".join(f"> {line}" for line in clip(text, limit).splitlines())


def metadata(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def fingerprint(value: str | None) -> str:
    """Short hash of a field's value, so an edit modal can tell which fields the user changed."""
    return hashlib.sha256((value or "").encode()).hexdigest()[:12]


# --- The incident card -------------------------------------------------------------------------


def card_text(incident: Incident) -> str:
    """Notification and fallback text of the card (chat.update allows 4,000 characters)."""
    return truncate(
        f"{SEVERITY_EMOJI[incident.severity]} {ref(incident)} [{incident.severity.value}, "
        f"{incident.status.value}] {escape(incident.title)}",
        3_000,
    )


def card(incident: Incident, screenshots: Sequence[Screenshot] = ()) -> list[Block]:
    header = f"{SEVERITY_EMOJI[incident.severity]} {ref(incident)}: {incident.title}"
    fields = [
        f"*Status*\n{status_label(incident.status)}",
        f"*Severity*\n{severity_label(incident.severity)}",
        f"*Service*\n{clip(incident.service or '-', 200)}",
        f"*Category*\n{escape(incident.category or '-')}",
        f"*Owner*\n{user(incident.owner)}",
        f"*Assignee*\n{user(incident.assignee)}",
        f"*Reporter*\n{user(incident.reporter)}",
        f"*Declared*\n{when(incident.created_at)}",
    ]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(header, 150), emoji=True)),
        SectionBlock(fields=[_mrkdwn(f) for f in fields]),
    ]
    if incident.description:
        blocks.append(SectionBlock(text=_mrkdwn(clip(incident.description, 2_500))))
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
    buttons += [
        ButtonElement(text="Add note", action_id=ids.ADD_NOTE_ACTION, value=value),
        ButtonElement(text="Edit", action_id=ids.EDIT_ACTION, value=value),
        ButtonElement(text="Attach screenshot", action_id=ids.ATTACH_ACTION, value=value),
    ]
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
    blocks.append(
        _context(f"Last change {when(incident.updated_at)} · `/incident show {incident.id}`")
    )
    return blocks


CARD_SCREENSHOTS = 5


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


def _event_line(event: IncidentEvent) -> str:
    who = user(event.actor)
    match event.kind:
        case EventKind.CREATED:
            line = f"🚨 {who} declared the incident as {event.to_value}"
        case EventKind.STATUS_CHANGED:
            new = Status(event.to_value)
            line = (
                f"{STATUS_EMOJI[new]} {who} changed the status: *{event.from_value} → {new.value}*"
            )
            for label in ("cause", "resolution"):
                if event.details.get(label):
                    line += f"\n*{label.capitalize()}:* {clip(event.details[label], 1_000)}"
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
            origin = f" (<{source}|from a message>)" if source and _safe_url(source) else ""
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
    origin = f" from <{source}|a message>" if source and _safe_url(source) else ""
    count = f"{len(stored)} screenshot{'s' if len(stored) != 1 else ''}"
    line = f"📎 {who} attached {count}{origin}"
    if duplicates:
        names = ", ".join(clip(n, 60) for n in duplicates[:10])
        line += f"\nAlready there: {names}"
    for item in refused[:10]:
        name = clip(str(item.get("name", "")), 60)
        line += f"\nNot kept: {name} ({clip(str(item.get('reason', '')), 200)})"
    return line


def _safe_url(url: str) -> bool:
    # Links we print come from Slack (permalinks); refuse what could break out of <...|...>.
    return url.startswith(("https://", "http://")) and not re.search(r"[\s<>|]", url)


def thread_text(events: Sequence[IncidentEvent]) -> str:
    return truncate("\n".join(_event_line(e) for e in events), 12_000)


SNOOZE_CHOICES = ((60, "Snooze 1 h"), (240, "Snooze 4 h"))


def thread_blocks(incident: Incident, events: Sequence[IncidentEvent]) -> list[Block] | None:
    """Blocks for replies that need buttons (reminders); plain text for the rest."""
    if not any(e.kind == EventKind.REMINDER for e in events):
        return None
    value = metadata(id=incident.id)
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
    return [
        SectionBlock(text=_mrkdwn(thread_text(events)[:2_900])),
        ActionsBlock(block_id="reminder_actions", elements=buttons),
    ]


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
            f"{clip(i.title, 100)} · owner {user(i.owner)}"
            for i in items[:limit]
        ]
        if len(items) > limit:
            lines.append(f"…and {len(items) - limit} more: `/incident list`")
        blocks.append(SectionBlock(text=_mrkdwn(truncate("\n".join(lines), 2_900))))

    listing("Active, most severe first", active)
    listing("Resolved in the last day", resolved)
    listing("No update for longer than their reminder cadence", stale)
    return text, blocks


# --- Modals ------------------------------------------------------------------------------------


def _text_input(
    block_id: str,
    label: str,
    *,
    max_length: int,
    initial: str | None = None,
    multiline: bool = False,
    optional: bool = False,
    placeholder: str | None = None,
    hint: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        hint=hint,
        element=PlainTextInputElement(
            action_id=block_id,
            initial_value=initial or None,
            multiline=multiline,
            max_length=min(max_length, INPUT_MAX),
            placeholder=placeholder,
        ),
    )


def _severity_option(severity: Severity) -> Option:
    return Option(value=severity.value, text=severity_label(severity))


def _category_option(category: str) -> Option:
    return Option(value=category, text=category.capitalize())


def _category_input(categories: Sequence[str], current: str | None = None) -> InputBlock:
    return InputBlock(
        block_id=ids.CATEGORY_BLOCK,
        label="Category",
        optional=True,
        element=StaticSelectElement(
            action_id=ids.CATEGORY_BLOCK,
            options=[_category_option(c) for c in categories],
            initial_option=_category_option(current) if current else None,
        ),
    )


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[Block], private_metadata: str
) -> View:
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        blocks=blocks,
        private_metadata=private_metadata,
    )


def declare_modal(
    *,
    categories: Sequence[str],
    reporter: str,
    channel_id: str | None,
    title: str = "",
    origin_channel: str | None = None,
) -> View:
    channel_element = ConversationSelectElement(
        action_id=ids.CHANNEL_BLOCK,
        initial_conversation=channel_id,
        default_to_current_conversation=channel_id is None,
        filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
    )
    blocks: list[Block] = [
        _text_input(
            ids.TITLE_BLOCK,
            "Title",
            max_length=incidents.TITLE_MAX,
            initial=truncate(title, incidents.TITLE_MAX),
            placeholder="What is broken, for whom?",
        ),
        InputBlock(
            block_id=ids.SEVERITY_BLOCK,
            label="Severity",
            element=StaticSelectElement(
                action_id=ids.SEVERITY_BLOCK,
                placeholder="How bad is it?",
                options=[_severity_option(s) for s in Severity],
            ),
        ),
        _category_input(categories),
        _text_input(ids.SERVICE_BLOCK, "Service", max_length=incidents.SERVICE_MAX, optional=True),
        _text_input(
            ids.DESCRIPTION_BLOCK,
            "Description",
            max_length=incidents.DESCRIPTION_MAX,
            multiline=True,
            optional=True,
        ),
        InputBlock(
            block_id=ids.OWNER_BLOCK,
            label="Owner (incident commander)",
            optional=True,
            element=UserSelectElement(action_id=ids.OWNER_BLOCK, initial_user=reporter),
        ),
        InputBlock(
            block_id=ids.CHANNEL_BLOCK,
            label="Post the incident card in",
            element=channel_element,
            hint="The bot must be a member of private channels.",
        ),
    ]
    return _modal(
        ids.DECLARE_VIEW, "Declare an incident", "Declare", blocks, metadata(origin=origin_channel)
    )


EDIT_FIELDS = (
    (ids.TITLE_BLOCK, "Title", incidents.TITLE_MAX, False, False),
    (ids.SERVICE_BLOCK, "Service", incidents.SERVICE_MAX, False, True),
    (ids.DESCRIPTION_BLOCK, "Description", incidents.DESCRIPTION_MAX, True, True),
    (ids.CAUSE_BLOCK, "Cause", incidents.CAUSE_MAX, True, True),
    (ids.RESOLUTION_BLOCK, "Resolution", incidents.RESOLUTION_MAX, True, True),
)


def edit_modal(incident: Incident, categories: Sequence[str]) -> View:
    blocks: list[Block] = []
    hashes: dict[str, str] = {}
    too_long = []
    for field, label, limit, multiline, optional in EDIT_FIELDS:
        value = getattr(incident, field)
        if value and len(value) > INPUT_MAX:
            # Offering a cut-down copy would truncate it on save; leave the field out instead.
            too_long.append(label.lower())
            continue
        hashes[field] = fingerprint(value)
        blocks.append(
            _text_input(
                field,
                label,
                max_length=limit,
                initial=value,
                multiline=multiline,
                optional=optional,
            )
        )
    # A category since removed from the configured list is not offered; the form then shows
    # none, and leaving it so keeps the old one.
    shown = incident.category if incident.category in categories else None
    hashes[ids.CATEGORY_BLOCK] = fingerprint(shown)
    blocks.insert(2, _category_input(categories, shown))
    if too_long:
        blocks.append(
            _context(
                f"The {', '.join(too_long)} is longer than Slack's 3,000-character input, so it "
                "is not editable here and stays as it is."
            )
        )
    return _modal(
        ids.EDIT_VIEW,
        truncate(f"Edit {ref(incident)}", 24),
        "Save",
        blocks,
        metadata(id=incident.id, h=hashes),
    )


def note_modal(incident: Incident) -> View:
    blocks: list[Block] = [
        _context(f"*{ref(incident)}* {clip(incident.title, 200)}"),
        _text_input(ids.NOTE_BLOCK, "Note", max_length=incidents.NOTE_MAX, multiline=True),
    ]
    return _modal(ids.NOTE_VIEW, "Add a note", "Add note", blocks, metadata(id=incident.id))


def resolve_modal(incident: Incident, target: Status) -> View:
    verb = "Resolve" if target == Status.RESOLVED else "Close"
    blocks: list[Block] = [
        _context(f"*{ref(incident)}* {clip(incident.title, 200)}"),
        _text_input(
            ids.RESOLUTION_BLOCK,
            "Resolution: what fixed it?",
            max_length=incidents.RESOLUTION_MAX,
            initial=incident.resolution
            if incident.resolution and len(incident.resolution) <= INPUT_MAX
            else None,
            multiline=True,
        ),
        _text_input(
            ids.CAUSE_BLOCK,
            "Cause",
            max_length=incidents.CAUSE_MAX,
            initial=incident.cause if incident.cause and len(incident.cause) <= INPUT_MAX else None,
            multiline=True,
            optional=True,
        ),
        _text_input(ids.NOTE_BLOCK, "Note", max_length=incidents.NOTE_MAX, optional=True),
    ]
    return _modal(
        ids.RESOLVE_VIEW,
        f"{verb} {truncate(ref(incident), 16)}",
        verb,
        blocks,
        metadata(id=incident.id, status=incident.status.value, to=target.value),
    )


IMAGE_FILETYPES = ["png", "jpg", "jpeg", "gif", "webp"]


def attach_modal(incident: Incident) -> View:
    blocks: list[Block] = [
        _context(f"*{ref(incident)}* {clip(incident.title, 200)}"),
        InputBlock(
            block_id=ids.FILES_BLOCK,
            label="Screenshots",
            element=FileInputElement(
                action_id=ids.FILES_BLOCK, filetypes=IMAGE_FILETYPES, max_files=10
            ),
            hint="PNG, JPEG, GIF or WebP. A copy is kept with the incident.",
        ),
        _text_input(ids.CAPTION_BLOCK, "Caption", max_length=1_000, optional=True),
    ]
    return _modal(ids.ATTACH_VIEW, "Attach screenshots", "Attach", blocks, metadata(id=incident.id))


def attach_from_message_modal(file_count: int, private_metadata: str) -> View:
    blocks: list[Block] = [
        _context(f"{file_count} file{'s' if file_count != 1 else ''} in this message."),
        _incident_picker(),
        _text_input(ids.CAPTION_BLOCK, "Caption", max_length=1_000, optional=True),
    ]
    return _modal(
        ids.ATTACH_FROM_MESSAGE_VIEW, "Attach to incident", "Attach", blocks, private_metadata
    )


def _incident_picker() -> InputBlock:
    return InputBlock(
        block_id=ids.INCIDENT_BLOCK,
        label="Incident",
        element=ExternalDataSelectElement(
            action_id=ids.INCIDENT_PICKER,
            placeholder="Type to search active incidents",
            min_query_length=0,
        ),
    )


def incident_option(incident: Incident) -> Option:
    label = f"{ref(incident)} {incident.severity.value} {incident.title}"
    return Option(value=str(incident.id), text=truncate(label, 70))


def timeline_note_modal(message_text: str, private_metadata: str) -> View:
    blocks: list[Block] = [
        _incident_picker(),
        _text_input(
            ids.NOTE_BLOCK,
            "Note",
            max_length=incidents.NOTE_MAX,
            initial=truncate(message_text, incidents.NOTE_MAX),
            multiline=True,
            hint="The note keeps the message's time and a link to it.",
        ),
    ]
    return _modal(ids.TIMELINE_NOTE_VIEW, "Add to timeline", "Add note", blocks, private_metadata)


# --- Ephemeral messages: list, detail, help, confirmations -------------------------------------


def _incident_summary(incident: Incident) -> str:
    parts = [
        f"{SEVERITY_EMOJI[incident.severity]} *{ref(incident)}*",
        incident.severity.value,
        f"{STATUS_EMOJI[incident.status]} {incident.status.value}",
    ]
    if incident.service:
        parts.append(f"_{clip(incident.service, 60)}_")
    line = " · ".join(parts)
    return (
        f"{line}\n{clip(incident.title, 150)}\n"
        f"owner {user(incident.owner)} · declared {when(incident.created_at)}"
    )


def incident_list(page: Page, filters: str) -> list[Block]:
    described = f" matching `{clip(filters, 100)}`" if filters else ""
    total = f"{page.total:,}" if page.total_is_exact else f"{page.total:,}+"
    if not page.items:
        return [SectionBlock(text=_mrkdwn(f"No incidents{described}."))]
    of_pages = f" of {page.pages}" if page.pages else ""
    blocks: list[Block] = [
        SectionBlock(text=_mrkdwn(f"*{total} incidents*{described} · page {page.page}{of_pages}"))
    ]
    blocks += [SectionBlock(text=_mrkdwn(_incident_summary(i))) for i in page.items]
    buttons = []
    if page.page > 1:
        buttons.append(
            ButtonElement(
                text="Previous",
                action_id=f"{ids.LIST_PAGE_ACTION}:prev",
                value=metadata(q=truncate(filters, 1_500), page=page.page - 1),
            )
        )
    if page.has_next:
        buttons.append(
            ButtonElement(
                text="Next",
                action_id=f"{ids.LIST_PAGE_ACTION}:next",
                value=metadata(q=truncate(filters, 1_500), page=page.page + 1),
            )
        )
    if buttons:
        blocks.append(ActionsBlock(block_id="list_pages", elements=buttons))
    blocks.append(_context("`/incident show <id>` for details · `/incident help` for filters"))
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
        f"*Owner*\n{user(incident.owner)}",
        f"*Assignee*\n{user(incident.assignee)}",
        f"*Service*\n{clip(incident.service or '-', 200)}",
        f"*Declared*\n{when(incident.created_at)}",
    ]
    blocks.append(SectionBlock(fields=[_mrkdwn(f) for f in fields]))
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
            if shot.uploaded_by == viewer.user_id or viewer.is_admin:
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
        can_delete = event.actor == viewer.user_id or viewer.is_admin
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


HELP = """*`/incident`*: run incidents from Slack
• `/incident` or `/incident <title>`: declare an incident (opens a form)
• `/incident list [filters]`: newest first, 20 a page. Filters combine: a status \
(`open`, `investigating`, `mitigated`, `resolved`, `closed`), `active` (default) or `all`, \
`sev1`..`sev4`, `service:<name>`, `category:<name>`, `mine`, and any words to search for
• `/incident show <id>`: details and the latest timeline
• `/incident status <id> <status> [note]`: e.g. `/incident status 12 mitigated rolled back`
• `/incident sev <id> <severity> [note]`: `sev1`..`sev4`, `critical`, `high`, `medium`, `low`
• `/incident note <id> <text>`
• `/incident assign <id> [owner|assignee] @someone|me|nobody`
• `/incident edit <id>`: edit title, service, description, cause, resolution
• `/incident screenshots <id>`: post the stored screenshots into the incident's thread
• `/incident delete <id>`: admins only
Ids can be written `INC-12`, `#12` or `12`."""


# --- Home tab ----------------------------------------------------------------------------------

HOME_STATUS_CHOICES = ("active", *[s.value for s in Status], "all")


def home(
    viewer: str,
    mine: Sequence[Incident],
    others: Sequence[Incident],
    *,
    severity: str | None,
    status: str,
) -> View:
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
    for heading, items in (("Yours (owner or assignee)", mine), ("Everyone's", others)):
        blocks.append(SectionBlock(text=_mrkdwn(f"*{heading}*")))
        if not items:
            blocks.append(_context("Nothing here."))
        blocks += [SectionBlock(text=_mrkdwn(_incident_summary(i))) for i in items]
        blocks.append(DividerBlock())
    return View(
        type="home",
        blocks=blocks,
        private_metadata=metadata(severity=severity, status=status, user=viewer),
    )
