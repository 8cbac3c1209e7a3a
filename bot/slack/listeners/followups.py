"""Follow-ups and the review from Slack: `/incident followup|followups|review`, the "Add as
follow-up" message shortcut, the Done, Add follow-up, Export and Review buttons, and their
forms. Parse, call one domain function, render."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import incidents
from bot.delivery import queue_tell
from bot.incidents import IncidentError, followups, review
from bot.incidents.followups import FollowUpDraft, FollowUpQuery
from bot.slack import blocks, ids
from bot.slack.blocks import followups as fu_blocks
from bot.slack.grammar import Command
from bot.slack.services import Services
from db.models import FollowUpStatus, Incident, ReviewStatus

from .common import (
    BUSY,
    Refusal,
    _where,
    as_dict,
    bind,
    deliver_later,
    element,
    integer,
    later,
    modal_errors,
    permalink_of,
    press,
    read_metadata,
    read_value,
    save,
    selected_value,
    string,
    tell_user,
    text_value,
    unescaped,
)
from .coordination import _told_here
from .events import publish_home

log = logging.getLogger(__name__)

COMMANDS = frozenset({"followup", "followup_edit", "followups", "review"})
STALE_FORM = "This form's data is not valid any more. Close it and start again."
# The domain's field names, as the follow-up form's blocks name them.
_FOLLOWUP_FIELDS = {
    "title": ids.TITLE_BLOCK,
    "owner": ids.OWNER_BLOCK,
    "due": ids.DUE_BLOCK,
    "due_on": ids.DUE_BLOCK,
    "priority": ids.PRIORITY_BLOCK,
    "incident": ids.INCIDENT_BLOCK,
}


def today(services: Services) -> date:
    return datetime.now(services.settings.timezone).date()


def _rules(services: Services) -> followups.FollowUpRules:
    return services.settings.followup_rules


def _added(followup: Any) -> str:
    owner = f", owner {blocks.user(followup.owner)}" if followup.owner else ""
    due = f", due {followup.due_on.isoformat()}" if followup.due_on else ""
    return (
        f"Added {fu_blocks.fu_ref(followup)} to "
        f"{incidents.format_incident_id(followup.incident_id)}: "
        f"{blocks.clip(followup.title, 300)}{owner}{due}."
    )


# --- /incident followup | followups | review --------------------------------------------------


def command(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    client: WebClient,
    respond: Respond,
    command: Command,
) -> None:
    user_id, channel_id = body["user_id"], body.get("channel_id")
    if command.name == "followup":
        actor = services.actor(user_id)

        def add(session: Session) -> tuple[str, int]:
            due = followups.parse_due(command.due, today(services)) if command.due else None
            draft = FollowUpDraft(title=command.text, owner=command.user, due_on=due)
            followup = followups.add_followup(
                session, command.incident or "", draft, actor, _rules(services)
            )
            return _added(followup), followup.incident_id

        try:
            reply, incident_id = save(services, add)
        except Refusal as refusal:
            ack(text=blocks.escape(str(refusal)))
            return
        ack(text=reply)
        deliver_later(services, client, incident_id, user_id, channel_id)
        return
    if command.name == "followup_edit":
        _edit(services, ack, body, client, command)
        return
    if command.name == "review":
        job: Any = open_review_modal
        args: tuple[Any, ...] = (body["trigger_id"], command.incident, user_id, channel_id)
    else:
        job, args = list_followups, (respond, command, user_id)
    ack() if later(services, client, user_id, channel_id, job, *args) else ack(text=BUSY)


def _edit(
    services: Services, ack: Ack, body: dict[str, Any], client: WebClient, command: Command
) -> None:
    """`/incident followup FU-3 [done|wontdo|reopen] [@owner] [due X]`: triage from Slack."""
    user_id, channel_id = body["user_id"], body.get("channel_id")
    actor = services.actor(user_id)

    def change(session: Session) -> tuple[str, int]:
        ref = command.followup or ""
        if command.user or command.due:
            due = followups.parse_due(command.due, today(services)) if command.due else None
            values: dict[str, Any] = {"owner": command.user} if command.user else {}
            if due is not None:
                values["due_on"] = due
            followups.change_followup(session, ref, actor, _rules(services), **values)
        if command.text:
            followups.set_followup_status(session, ref, command.text, actor)
        followup = followups.get_followup(session, ref)
        owner = blocks.user(followup.owner) if followup.owner else "nobody"
        due_on = followup.due_on.isoformat() if followup.due_on else "no due date"
        state = followups.STATUS_LABELS[followup.status]
        return (
            f"{fu_blocks.fu_ref(followup)} of "
            f"{incidents.format_incident_id(followup.incident_id)}: owner {owner}, "
            f"due {due_on}, {state}."
        ), followup.incident_id

    try:
        reply, incident_id = save(services, change)
    except Refusal as refusal:
        ack(text=blocks.escape(str(refusal)))
        return
    ack(text=reply)
    deliver_later(services, client, incident_id, user_id, channel_id)


def list_followups(
    services: Services, client: WebClient, respond: Respond, command: Command, user_id: str
) -> None:
    """`/incident followups [mine|overdue|<id>]`: ephemeral, Done beside each open one."""
    query = FollowUpQuery(limit=fu_blocks.LIST_FOLLOWUPS, today=today(services))
    words = []
    if command.mine:
        query.owner = user_id
        words.append("Your")
    if command.overdue:
        query.overdue = True
        words.append("overdue")
    try:
        with services.sessions() as session:
            if command.incident:
                query.incident_id = incidents.get_incident(session, command.incident).id
            elif not command.overdue:
                query.status = FollowUpStatus.OPEN
                words.append("open")
            page = followups.list_followups(session, query)
            heading = " ".join(words).capitalize() if words else "Follow-ups"
            heading += " follow-ups" if words else ""
            if command.incident:
                heading += f" of {incidents.format_incident_id(query.incident_id or 0)}"
            text, rendered = fu_blocks.followup_list(page.items, page.total, heading, query.today)
    except IncidentError as error:
        respond(text=blocks.escape(str(error)))
        return
    respond(text=text, blocks=rendered)


# --- The follow-up form ------------------------------------------------------------------------


def shortcut(services: Services, ack: Ack, body: dict[str, Any], client: WebClient):
    """ "Add as follow-up" on a message: its text and link, the incident of its channel or of
    the card whose thread it is in."""
    ack()
    message = as_dict(body.get("message"))
    channel_id = string(as_dict(body.get("channel")), "id")
    user_id = body["user"]["id"]
    later(
        services,
        client,
        user_id,
        None,
        open_followup_from_message,
        body["trigger_id"],
        unescaped(string(message, "text")),
        channel_id,
        string(message, "ts"),
        string(message, "thread_ts"),
        user_id,
    )


def open_followup_from_message(
    services: Services,
    client: WebClient,
    trigger_id: str,
    text: str,
    channel_id: str | None,
    ts: str | None,
    thread_ts: str | None,
    user_id: str,
) -> None:
    with services.sessions() as session:
        incident = _incident_of_message(session, channel_id, thread_ts)
        permalink = permalink_of(client, channel_id, ts)
        view = fu_blocks.followup_modal(
            rules=_rules(services), title=text, permalink=permalink, incident=incident
        )
    client.views_open(trigger_id=trigger_id, view=view)


def _incident_of_message(
    session: Session, channel_id: str | None, thread_ts: str | None
) -> Incident | None:
    if not channel_id:
        return None
    number = incidents.incident_in_channel(session, channel_id)
    if number is not None:
        return incidents.get_incident(session, number)
    if thread_ts:
        return incidents.find_by_card(session, channel_id, thread_ts)
    return None


def add_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """ "Add follow-up" on the card or the pinned summary: the form, the incident fixed."""
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    later(
        services,
        client,
        user_id,
        channel_id,
        open_followup_for,
        body["trigger_id"],
        read_value(action).get("id"),
        user_id,
        channel_id,
    )


def open_followup_for(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    user_id: str,
    channel_id: str | None,
) -> None:
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            view = fu_blocks.followup_modal(rules=_rules(services), incident=incident, fixed=True)
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def followup_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    incident_ref = meta.get("id") or selected_value(values, ids.INCIDENT_BLOCK, ids.INCIDENT_PICKER)
    if not incident_ref:
        ack(response_action="errors", errors={ids.INCIDENT_BLOCK: "Pick an incident."})
        return
    picked_date = string(element(values, ids.DUE_BLOCK), "selected_date")
    try:
        due = date.fromisoformat(picked_date) if picked_date else None
    except ValueError:
        ack(response_action="errors", errors={ids.DUE_BLOCK: "Pick a date."})
        return
    link = string(meta, "link")
    draft = FollowUpDraft(
        title=text_value(values, ids.TITLE_BLOCK) or "",
        owner=string(element(values, ids.OWNER_BLOCK), "selected_user"),
        due_on=due,
        priority=selected_value(values, ids.PRIORITY_BLOCK),
        source_permalink=link if link and blocks.safe_url(link) else None,
    )
    actor = services.actor(user_id)

    def add(session: Session) -> int:
        return followups.add_followup(
            session, incident_ref, draft, actor, _rules(services)
        ).incident_id

    try:
        incident_id = save(services, add)
    except Refusal as refusal:
        field = _FOLLOWUP_FIELDS.get(refusal.field or "", refusal.field)
        ack(response_action="errors", errors=modal_errors(view, field, str(refusal)))
        return
    ack()
    deliver_later(services, client, incident_id, user_id, None)


# --- Done and Export ---------------------------------------------------------------------------


def done_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """Done, beside a follow-up: on the card, the summary, a list, a DM, the Home tab."""
    _followup_press(services, ack, body, client, action, done=True)


def export_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    _followup_press(services, ack, body, client, action, done=False)


def _followup_press(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    client: WebClient,
    action: dict[str, Any],
    *,
    done: bool,
) -> None:
    user_id = body["user"]["id"]
    followup_id = integer(read_value(action), "fu")
    actor = services.actor(user_id)
    view = as_dict(body.get("view"))
    on_home = view.get("type") == "home"
    to = _told_here(body)

    def change(session: Session) -> int:
        if done:
            followup = followups.set_followup_status(
                session, followup_id or 0, FollowUpStatus.DONE, actor
            )
            text = f"{fu_blocks.fu_ref(followup)} is done: {blocks.clip(followup.title, 300)}."
        else:
            followup = followups.request_export(session, followup_id or 0, actor, _rules(services))
            tracker = _rules(services).tracker or ""
            name = fu_blocks.TRACKER_NAMES.get(tracker, tracker)
            text = f"Exporting {fu_blocks.fu_ref(followup)} to {name}; its link follows."
        if not on_home:
            queue_tell(session, to, text, incident_id=followup.incident_id)
        return followup.incident_id

    incident_id = press(services, ack, change, to)
    if incident_id is None:
        return
    deliver_later(services, client, incident_id, user_id, to.channel_id)
    if on_home:
        later(services, client, user_id, None, publish_home, user_id)


# --- The review --------------------------------------------------------------------------------


def review_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    later(
        services,
        client,
        user_id,
        channel_id,
        open_review_modal,
        body["trigger_id"],
        read_value(action).get("id"),
        user_id,
        channel_id,
    )


def open_review_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    user_id: str,
    channel_id: str | None,
) -> None:
    try:
        with services.sessions() as session:
            view = fu_blocks.review_modal(incidents.get_incident(session, incident_ref))
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def _picked_time(values: dict[str, Any], block_id: str) -> datetime | None:
    seconds = integer(element(values, block_id), "selected_date_time")
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def review_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    shown = meta.get("fields")
    if not isinstance(shown, list) or not set(shown) <= set(review.REVIEW_FIELDS):
        ack(response_action="errors", errors=modal_errors(view, None, STALE_FORM))
        return
    submitted: dict[str, object] = {}
    for field in shown:
        if field in ("impact_started_at", "impact_ended_at"):
            submitted[field] = _picked_time(values, field)
        elif field == "review_status":
            picked = selected_value(values, field)
            submitted[field] = ReviewStatus(picked) if picked in set(ReviewStatus) else None
        elif field == "reviewer":
            submitted[field] = string(element(values, field), "selected_user")
        else:
            submitted[field] = text_value(values, field)
    if submitted.get("review_status") is None:
        ack(response_action="errors", errors={"review_status": "Pick the review's status."})
        return
    user_id = body["user"]["id"]
    actor = services.actor(user_id)

    def edit(session: Session) -> int:
        incident, _ = review.edit_review(session, meta.get("id"), actor, submitted)
        return incident.id

    try:
        incident_id = save(services, edit)
    except Refusal as refusal:
        ack(response_action="errors", errors=modal_errors(view, refusal.field, str(refusal)))
        return
    ack()
    deliver_later(services, client, incident_id, user_id, None)


def register(app: App, services: Services) -> None:
    app.message_shortcut(ids.FOLLOWUP_SHORTCUT)(bind(services, shortcut))
    app.action(ids.FOLLOWUP_DONE_PATTERN)(bind(services, done_clicked))
    app.action(ids.FOLLOWUP_EXPORT_PATTERN)(bind(services, export_clicked))
    app.action(ids.FOLLOWUP_ADD_ACTION)(bind(services, add_clicked))
    app.action(ids.REVIEW_ACTION)(bind(services, review_clicked))
    app.view(ids.FOLLOWUP_VIEW)(bind(services, followup_submitted))
    app.view(ids.REVIEW_VIEW)(bind(services, review_submitted))
