"""Coordination's forms and answers: the update form (which grows the resolution fields when the
status picked resolves), the lead handoff, and the subscribe / unsubscribe replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InputBlock,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot import incidents
from bot.slack import ids
from db.models import Incident, Status

from .modals import _modal, _text_input
from .text import INPUT_MAX, STATUS_EMOJI, _context, _mrkdwn, clip, metadata, ref, truncate, user

# The "next update in" menu's value for no promise (the severity's reminders come back).
NO_PROMISE = "none"


def interval_label(interval: timedelta) -> str:
    """`15 min`, `1 hour`, `4 hours`, `1 day`; `5 sec` for the short ones tests use."""
    seconds = int(interval.total_seconds())
    for size, one, many in ((86_400, "day", "days"), (3_600, "hour", "hours")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {one if count == 1 else many}"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} sec"


def interval_value(interval: timedelta | None) -> str:
    return NO_PROMISE if interval is None else str(int(interval.total_seconds()))


def _interval_option(interval: timedelta | None) -> Option:
    label = "No promise (none)" if interval is None else interval_label(interval)
    return Option(value=interval_value(interval), text=label)


def _status_option(current: Status, status: Status) -> Option:
    label = f"{STATUS_EMOJI[status]} {status.value.capitalize()}"
    if status == current:
        label += " (no change)"
    return Option(value=status.value, text=label)


@dataclass
class UpdateForm:
    """What the update form shows: typed so far (when rebuilt), or the starting values."""

    status: Status | None = None
    summary: str | None = None
    impact: str | None = None
    next_update: str | None = None
    resolution: str | None = None
    cause: str | None = None
    # Said above the fields (e.g. why the resolution fields appeared).
    note: str | None = None


def update_modal(
    incident: Incident,
    *,
    is_admin: bool,
    intervals: Sequence[timedelta],
    form: UpdateForm | None = None,
    status: Status | None = None,
) -> View:
    """The structured update. The status menu (`dispatch_action`) holds the current status and
    the workflow's allowed moves; picking one that resolves adds Resolution (required) and
    Cause, which `views.update` takes away again when another is picked.

    `status`: the status the form was first drawn with (a rebuilt form keeps it, so a change
    made meanwhile is refused on submit rather than overwritten); the incident's by default."""
    form = form or UpdateForm()
    current = status or incident.status
    picked = form.status or current
    choices = [current, *incidents.allowed_next_statuses(current, is_admin=is_admin)]
    if picked not in choices:
        picked = current
    status_options = [_status_option(current, s) for s in choices]
    blocks: list[Block] = [_context(f"*{ref(incident)}* {clip(incident.title, 200)}")]
    if form.note:
        blocks.append(_context(clip(form.note, 500)))
    blocks.append(
        InputBlock(
            block_id=ids.STATUS_BLOCK,
            label="Status",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=ids.UPDATE_STATUS_ACTION,
                options=status_options,
                initial_option=status_options[choices.index(picked)],
            ),
            hint="Resolve asks what fixed it." if len(choices) > 1 else None,
        )
    )
    if incidents.resolves(current, picked):
        blocks += [
            _text_input(
                ids.RESOLUTION_BLOCK,
                "Resolution: what fixed it?",
                max_length=incidents.RESOLUTION_MAX,
                initial=_fits(form.resolution or incident.resolution),
                multiline=True,
            ),
            _text_input(
                ids.CAUSE_BLOCK,
                "Cause",
                max_length=incidents.CAUSE_MAX,
                initial=_fits(form.cause or incident.cause),
                multiline=True,
                optional=True,
            ),
        ]
    promises = [*intervals, None]
    next_options = [_interval_option(i) for i in promises]
    chosen = next((o for o in next_options if o.value == form.next_update), None)
    blocks += [
        _text_input(
            ids.SUMMARY_BLOCK,
            "What we know",
            max_length=incidents.SUMMARY_MAX,
            initial=_fits(form.summary),
            multiline=True,
            placeholder="What is happening, what is being done, what comes next",
        ),
        _text_input(
            ids.IMPACT_BLOCK,
            "Customer impact",
            max_length=incidents.IMPACT_MAX,
            initial=_fits(form.impact),
            multiline=True,
            optional=True,
            placeholder="Who is affected and how, in customers' words",
        ),
        InputBlock(
            block_id=ids.NEXT_UPDATE_BLOCK,
            label="Next update in",
            element=StaticSelectElement(
                action_id=ids.NEXT_UPDATE_BLOCK,
                options=next_options,
                initial_option=chosen or next_options[0],
            ),
            hint="The lead and the comms role are nudged if it does not come by then.",
        ),
    ]
    return _modal(
        ids.UPDATE_VIEW,
        truncate(f"Update {ref(incident)}", 24),
        "Post update",
        blocks,
        metadata(id=incident.id, status=current.value),
    )


def _fits(text: str | None) -> str | None:
    """A starting value, unless it is longer than a Slack input takes (never cut it short)."""
    return text if text and len(text) <= INPUT_MAX else None


def handoff_modal(incident: Incident, new_lead: str, private_metadata: str) -> View:
    blocks: list[Block] = [
        _context(f"*{ref(incident)}* {clip(incident.title, 200)}"),
        SectionBlock(
            text=_mrkdwn(
                f"{user(incident.owner)} leads {ref(incident)} now; {user(new_lead)} takes over."
            )
        ),
        _text_input(
            ids.HANDOFF_BLOCK,
            "Handoff for the new lead",
            max_length=incidents.HANDOFF_MAX,
            optional=True,
            placeholder="Where things stand, and what is next",
            hint="One line, posted in the incident's channel and thread.",
        ),
    ]
    return _modal(
        ids.HANDOFF_VIEW,
        truncate(f"Hand off {ref(incident)}", 24),
        "Hand off",
        blocks,
        private_metadata,
    )


def subscription_reply(number: int, subscribed: bool, changed: bool) -> tuple[str, list[Block]]:
    """The answer to Subscribe or Unsubscribe, with the button that undoes it."""
    rid = incidents.format_incident_id(number)
    if subscribed:
        text = (
            f"You're subscribed to {rid}: you'll get its updates by DM."
            if changed
            else f"You're already subscribed to {rid}: its updates come to you by DM."
        )
        button = ButtonElement(
            text="Unsubscribe", action_id=ids.UNSUBSCRIBE_ACTION, value=metadata(id=number)
        )
    else:
        text = (
            f"You're unsubscribed from {rid}: no more DMs about it."
            if changed
            else f"You weren't subscribed to {rid}."
        )
        button = ButtonElement(
            text="Subscribe", action_id=ids.SUBSCRIBE_ACTION, value=metadata(id=number)
        )
    return text, [
        SectionBlock(text=_mrkdwn(text)),
        ActionsBlock(block_id="subscription", elements=[button]),
    ]
