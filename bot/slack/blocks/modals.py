"""Modals: declare, edit, note, resolve, attach, and the incident picker."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import (
    CheckboxesElement,
    ConversationFilter,
    ConversationSelectElement,
    ExternalDataSelectElement,
    FileInputElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot import incidents
from bot.incidents import ChannelRules, IncidentRow
from bot.slack import ids
from db.models import Incident, Severity, Status

from .text import (
    INPUT_MAX,
    _context,
    clip,
    metadata,
    ref,
    severity_label,
    truncate,
)

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
    channel_rules: ChannelRules | None = None,
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
            label="Lead (runs the incident)",
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
    if channel_rules is not None and channel_rules.offered:
        blocks.append(_open_channel_input(channel_rules))
    return _modal(
        ids.DECLARE_VIEW, "Declare an incident", "Declare", blocks, metadata(origin=origin_channel)
    )


def _open_channel_input(rules: ChannelRules) -> InputBlock:
    choice = Option(value="yes", text="Open an incident channel")
    always = rules.mode == "always"
    return InputBlock(
        block_id=ids.OPEN_CHANNEL_BLOCK,
        label="Incident channel",
        optional=True,
        element=CheckboxesElement(
            action_id=ids.OPEN_CHANNEL_BLOCK,
            options=[choice],
            initial_options=[choice] if always else None,
        ),
        hint=None if always else "SEV1 and SEV2 incidents always get one.",
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
        hashes[field] = incidents.fingerprint(value)
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
    hashes[ids.CATEGORY_BLOCK] = incidents.fingerprint(shown)
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


def resolve_modal(incident: Incident, target: Status, *, offer_override: bool = False) -> View:
    """Resolve (or close) with what fixed it; an incident admin closing may also give a reason
    to close despite CLOSE_REQUIRES (`offer_override`)."""
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
    if offer_override and target == Status.CLOSED:
        blocks.append(
            _text_input(
                ids.OVERRIDE_BLOCK,
                "Close anyway, because…",
                max_length=1_000,
                optional=True,
                hint="Admins only: closes even if follow-ups or the review aren't ready.",
            )
        )
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


def incident_option(incident: Incident | IncidentRow) -> Option:
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
