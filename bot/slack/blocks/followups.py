"""Follow-ups in Slack: their lines and Done buttons (the card's and summary's section, lists,
the Home tab), the follow-up form, the owners' DMs, the review form and the close override."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    InputBlock,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import (
    DatePickerElement,
    DateTimePickerElement,
    ExternalDataSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.incidents import followups, format_incident_id, review
from bot.slack import ids
from db.models import FollowUp, FollowUpStatus, Incident, ReviewStatus

from .modals import _modal, _text_input, incident_option
from .text import INPUT_MAX, _context, _mrkdwn, clip, metadata, ref, safe_url, truncate, user

# The card and the pinned summary list this many (open first); the rest is "and N more".
CARD_FOLLOWUPS = 8
# Export buttons on a card, at most (an actions block holds 25 elements).
CARD_EXPORTS = 5
HOME_FOLLOWUPS = 8
LIST_FOLLOWUPS = 20
DIGEST_FOLLOWUPS = 20
TRACKER_NAMES = {"github": "GitHub", "jira": "Jira"}
PRIORITY_EMOJI = {"high": "🔺", "medium": "🔸", "low": "🔹"}
REVIEW_STATUS_LABELS = {
    ReviewStatus.DRAFT: "Draft",
    ReviewStatus.IN_REVIEW: "In review",
    ReviewStatus.DONE: "Done",
}
REVIEW_TEXTS = (
    ("customer_impact", "Customer impact", "What customers saw, and how many"),
    ("contributing_factors", "Contributing factors", "Why it happened, and why then"),
    ("went_well", "What went well", None),
    ("went_badly", "What went badly", None),
)


def fu_ref(followup: FollowUp) -> str:
    return followups.format_followup_id(followup.id)


def _due_text(followup: FollowUp, today: date) -> str:
    if followup.due_on is None:
        return "no due date"
    text = f"due {followup.due_on.isoformat()}"
    return f"⚠️ *overdue*, {text}" if followups.is_overdue(followup, today) else text


def _ticket(followup: FollowUp) -> str | None:
    if not followup.ticket_key:
        return None
    key = clip(followup.ticket_key, 100)
    url = followup.ticket_url
    return f"<{url}|{key}>" if url and safe_url(url) else key


def followup_line(followup: FollowUp, today: date, *, with_incident: bool = False) -> str:
    """`*FU-3* Add an alert · @ann · due 2026-12-20 · 🔺 high · open · <…|OPS-12>`."""
    status = followups.STATUS_LABELS.get(followup.status, str(followup.status))
    mark = "✅ " if followup.status == FollowUpStatus.DONE else ""
    if followup.status == FollowUpStatus.WONT_DO:
        mark = "🚫 "
    head = f"{mark}*{fu_ref(followup)}*"
    if with_incident:
        head += f" ({followups_incident(followup)})"
    parts = [
        f"{head} {clip(followup.title, 300)}",
        user(followup.owner) if followup.owner else "_no owner_",
        _due_text(followup, today),
        f"{PRIORITY_EMOJI.get(followup.priority, '▫️')} {clip(followup.priority, 40)}",
        status,
    ]
    ticket = _ticket(followup)
    if ticket:
        parts.append(ticket)
    return " · ".join(parts)


def followups_incident(followup: FollowUp) -> str:
    return format_incident_id(followup.incident_id)


def done_button(followup: FollowUp) -> ButtonElement:
    return ButtonElement(
        text="Done",
        action_id=f"{ids.FOLLOWUP_DONE_ACTION}:{followup.id}",
        value=metadata(fu=followup.id),
        style="primary",
    )


def _row(followup: FollowUp, today: date, *, with_incident: bool = False) -> SectionBlock:
    open_ = followup.status == FollowUpStatus.OPEN
    return SectionBlock(
        text=_mrkdwn(truncate(followup_line(followup, today, with_incident=with_incident), 2_900)),
        accessory=done_button(followup) if open_ else None,
    )


def card_section(
    incident: Incident,
    items: Sequence[FollowUp],
    *,
    tracker: str | None,
    today: date | None = None,
) -> list[Block]:
    """The card's and the pinned summary's "Follow-ups": each with its owner, due date,
    priority, status and ticket, Done on open ones; Add follow-up, Review, and Export for
    those without a ticket when a tracker is configured."""
    today = today or datetime.now(UTC).date()
    open_count = sum(1 for f in items if f.status == FollowUpStatus.OPEN)
    heading = (
        f"*Follow-ups* ({open_count} open of {len(items)})" if items else "*Follow-ups*: none yet"
    )
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(heading))]
    for followup in items[:CARD_FOLLOWUPS]:
        blocks.append(_row(followup, today))
    if len(items) > CARD_FOLLOWUPS:
        more = len(items) - CARD_FOLLOWUPS
        blocks.append(_context(f"…and {more} more: `/incident followups {ref(incident)}`"))
    value = metadata(id=incident.id)
    buttons = [
        ButtonElement(text="Add follow-up", action_id=ids.FOLLOWUP_ADD_ACTION, value=value),
        ButtonElement(text="Review", action_id=ids.REVIEW_ACTION, value=value),
    ]
    if tracker:
        exportable = [
            f
            for f in items[:CARD_FOLLOWUPS]
            if f.status == FollowUpStatus.OPEN and not f.ticket_key and not f.export_requested_at
        ]
        name = TRACKER_NAMES.get(tracker, tracker)
        buttons += [
            ButtonElement(
                text=truncate(f"Export {fu_ref(f)} to {name}", 75),
                action_id=f"{ids.FOLLOWUP_EXPORT_ACTION}:{f.id}",
                value=metadata(fu=f.id),
            )
            for f in exportable[:CARD_EXPORTS]
        ]
    blocks.append(ActionsBlock(block_id="followup_actions", elements=buttons))
    return blocks


def followup_list(
    items: Sequence[FollowUp], total: int, heading: str, today: date
) -> tuple[str, list[Block]]:
    """`/incident followups`: the list, a Done button beside each open one."""
    text = f"{heading}: {total}" if total else f"{heading}: none."
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(f"*{heading}* ({total})"))]
    if not items:
        blocks.append(_context("Nothing here."))
    for followup in items[:LIST_FOLLOWUPS]:
        blocks.append(_row(followup, today, with_incident=True))
    if total > min(len(items), LIST_FOLLOWUPS):
        blocks.append(_context(f"…and {total - min(len(items), LIST_FOLLOWUPS)} more."))
    return text, blocks


def home_section(items: Sequence[FollowUp], total: int, today: date) -> list[Block]:
    """The Home tab's "Your follow-ups": open, yours, the overdue marked."""
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(f"*Your follow-ups* ({total} open)"))]
    if not items:
        blocks.append(_context("None open. Follow-ups assigned to you show here."))
    for followup in items[:HOME_FOLLOWUPS]:
        blocks.append(_row(followup, today, with_incident=True))
    if total > min(len(items), HOME_FOLLOWUPS):
        more = total - min(len(items), HOME_FOLLOWUPS)
        blocks.append(_context(f"…and {more} more: `/incident followups mine`"))
    blocks.append(DividerBlock())
    return blocks


# --- The follow-up form ----------------------------------------------------------------------


def _priority_option(priority: str) -> Option:
    return Option(value=priority, text=truncate(priority.capitalize(), 75))


def followup_modal(
    *,
    rules: followups.FollowUpRules,
    title: str = "",
    permalink: str | None = None,
    incident: Incident | None = None,
    fixed: bool = False,
    owner: str | None = None,
) -> View:
    """Add a follow-up: to `incident` (`fixed`: no picker), or to the one picked (prefilled
    with `incident` when known), from a message (its `permalink`) or from scratch."""
    blocks: list[Block] = []
    if fixed and incident is not None:
        blocks.append(_context(f"*{ref(incident)}* {clip(incident.title, 200)}"))
    else:
        blocks.append(
            InputBlock(
                block_id=ids.INCIDENT_BLOCK,
                label="Incident",
                element=ExternalDataSelectElement(
                    action_id=ids.INCIDENT_PICKER,
                    placeholder="Type to search active incidents",
                    min_query_length=0,
                    initial_option=incident_option(incident) if incident is not None else None,
                ),
            )
        )
    blocks += [
        _text_input(
            ids.TITLE_BLOCK,
            "Follow-up",
            max_length=followups.TITLE_MAX,
            initial=truncate(" ".join(title.split()), followups.TITLE_MAX),
            placeholder="What should be done so it doesn't happen again?",
        ),
        InputBlock(
            block_id=ids.OWNER_BLOCK,
            label="Owner",
            optional=True,
            element=UserSelectElement(action_id=ids.OWNER_BLOCK, initial_user=owner),
        ),
        InputBlock(
            block_id=ids.DUE_BLOCK,
            label="Due date",
            optional=True,
            element=DatePickerElement(action_id=ids.DUE_BLOCK),
        ),
        InputBlock(
            block_id=ids.PRIORITY_BLOCK,
            label="Priority",
            element=StaticSelectElement(
                action_id=ids.PRIORITY_BLOCK,
                options=[_priority_option(p) for p in rules.priorities],
                initial_option=_priority_option(rules.default_priority),
            ),
        ),
    ]
    if permalink and safe_url(permalink):
        blocks.append(_context(f"From <{permalink}|this message>; the follow-up links to it."))
    meta = metadata(
        id=incident.id if fixed and incident is not None else None,
        link=permalink if permalink and safe_url(permalink) else None,
    )
    return _modal(ids.FOLLOWUP_VIEW, "Add a follow-up", "Add", blocks, meta)


# --- DMs to owners ---------------------------------------------------------------------------


def followup_assigned_dm(
    followup: FollowUp, incident: Incident, today: date, page: str | None = None
) -> tuple[str, list[Block]]:
    """ "You own FU-3 of INC-12", with its due date, priority, a Done button and links."""
    head = f"You own {fu_ref(followup)} of {ref(incident)}: {clip(followup.title, 300)}"
    details = [
        f"*{fu_ref(followup)}* {clip(followup.title, 300)}",
        f"Incident: *{ref(incident)}* {clip(incident.title, 200)}",
        f"Due: {followup.due_on.isoformat() if followup.due_on else 'no due date yet'}"
        + (" (⚠️ overdue)" if followups.is_overdue(followup, today) else ""),
        f"Priority: {clip(followup.priority, 40)}",
    ]
    links = []
    ticket = _ticket(followup)
    if ticket:
        links.append(f"Ticket: {ticket}")
    if followup.source_permalink and safe_url(followup.source_permalink):
        links.append(f"<{followup.source_permalink}|The message it came from>")
    if page:
        links.append(f"<{page}|The incident on the web>")
    blocks: list[Block] = [
        SectionBlock(text=_mrkdwn(f"👋 You own a follow-up of *{ref(incident)}*")),
        SectionBlock(text=_mrkdwn(truncate("\n".join(details), 2_900))),
    ]
    if links:
        blocks.append(_context(truncate(" · ".join(links), 2_900)))
    if followup.status == FollowUpStatus.OPEN:
        blocks.append(
            ActionsBlock(block_id="followup_dm_actions", elements=[done_button(followup)])
        )
    return truncate(head, 3_000), blocks


def followup_digest_dm(items: Sequence[FollowUp], today: date) -> tuple[str, list[Block]]:
    """The weekly DM: the owner's overdue follow-ups, Done beside each."""
    count = len(items)
    head = f"You have {count} overdue follow-up{'s' if count != 1 else ''} this week"
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(f"⏰ *{head}*"))]
    for followup in items[:DIGEST_FOLLOWUPS]:
        blocks.append(_row(followup, today, with_incident=True))
    if count > DIGEST_FOLLOWUPS:
        blocks.append(_context(f"…and {count - DIGEST_FOLLOWUPS} more: `/incident followups mine`"))
    return head + ".", blocks


# --- The review form and the close override --------------------------------------------------


def _review_status_option(status: ReviewStatus) -> Option:
    return Option(value=status.value, text=REVIEW_STATUS_LABELS[status])


def _moment(block_id: str, label: str, value: datetime | None, hint: str) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True,
        hint=hint,
        element=DateTimePickerElement(
            action_id=block_id,
            initial_date_time=int(value.timestamp()) if value is not None else None,
        ),
    )


def review_modal(incident: Incident) -> View:
    """The review's fields (also for a closed incident: closed freezes the incident, not the
    review). A text longer than Slack's input is left out, and kept."""
    blocks: list[Block] = [_context(f"*{ref(incident)}* {clip(incident.title, 200)}")]
    blocks.append(
        _moment(
            "impact_started_at",
            "Impact started",
            incident.impact_started_at,
            "Empty: from when the incident was declared.",
        )
    )
    blocks.append(
        _moment(
            "impact_ended_at",
            "Impact ended",
            incident.impact_ended_at,
            "Empty: until it was resolved.",
        )
    )
    shown = ["impact_started_at", "impact_ended_at"]
    too_long = []
    for field, label, placeholder in REVIEW_TEXTS:
        value = getattr(incident, field)
        if value and len(value) > INPUT_MAX:
            too_long.append(label.lower())
            continue
        shown.append(field)
        blocks.append(
            _text_input(
                field,
                label,
                max_length=review.REVIEW_TEXT_MAX,
                initial=value,
                multiline=True,
                optional=True,
                placeholder=placeholder,
            )
        )
    current = incident.review_status or ReviewStatus.DRAFT
    blocks.append(
        InputBlock(
            block_id="review_status",
            label="Review status",
            element=StaticSelectElement(
                action_id="review_status",
                options=[_review_status_option(s) for s in ReviewStatus],
                initial_option=_review_status_option(ReviewStatus(current)),
            ),
        )
    )
    blocks.append(
        InputBlock(
            block_id="reviewer",
            label="Reviewer",
            optional=True,
            element=UserSelectElement(action_id="reviewer", initial_user=incident.reviewer),
        )
    )
    shown += ["review_status", "reviewer"]
    if too_long:
        blocks.append(
            _context(
                f"The {', '.join(too_long)} is longer than Slack's 3,000-character input, so it "
                "is not editable here and stays as it is."
            )
        )
    return _modal(
        ids.REVIEW_VIEW,
        truncate(f"Review {ref(incident)}", 24),
        "Save",
        blocks,
        metadata(id=incident.id, fields=shown),
    )


def close_refused(incident: Incident, sentence: str, *, offer_override: bool) -> list[Block]:
    """The close rule's refusal, with "Close anyway" for an incident admin."""
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(clip(sentence, 2_900)))]
    if offer_override:
        blocks.append(
            ActionsBlock(
                block_id="close_override",
                elements=[
                    ButtonElement(
                        text="Close anyway",
                        action_id=ids.CLOSE_ANYWAY_ACTION,
                        value=metadata(id=incident.id, status=incident.status.value),
                        style="danger",
                    )
                ],
            )
        )
    return blocks


def close_override_modal(incident: Incident, sentence: str) -> View:
    blocks: list[Block] = [
        _context(f"*{ref(incident)}* {clip(incident.title, 200)}"),
        SectionBlock(text=_mrkdwn(clip(sentence, 2_900))),
        _text_input(
            ids.OVERRIDE_BLOCK,
            "Why close it anyway?",
            max_length=1_000,
            multiline=True,
            hint="Recorded in the timeline with your name.",
        ),
    ]
    return _modal(
        ids.CLOSE_OVERRIDE_VIEW,
        truncate(f"Close {ref(incident)}", 24),
        "Close",
        blocks,
        metadata(id=incident.id, status=incident.status.value),
    )
