"""Modal submissions: saved before the ack that closes the form, or refused inline with
`response_action: errors` (nothing changed); what follows (Slack updates, downloads) is work."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import IncidentDraft, IncidentError, screenshots
from bot.slack import blocks, ids
from bot.slack.services import Services

from .attach import attach_files
from .common import (
    BUSY,
    Refusal,
    as_dict,
    bind,
    checked,
    deliver_and_report,
    deliver_later,
    deliver_now,
    element,
    known_status,
    later,
    modal_errors,
    permalink_of,
    read_metadata,
    save,
    selected_value,
    string,
    tell_user,
    text_value,
)

log = logging.getLogger(__name__)

STALE_FORM = "This form's data is not valid any more. Close it and start again."


def declare_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    user_id = body["user"]["id"]
    channel = (
        string(element(values, ids.CHANNEL_BLOCK), "selected_conversation")
        or services.settings.incident_channel
    )
    draft = IncidentDraft(
        title=text_value(values, ids.TITLE_BLOCK) or "",
        severity=selected_value(values, ids.SEVERITY_BLOCK) or "",
        description=text_value(values, ids.DESCRIPTION_BLOCK),
        service=text_value(values, ids.SERVICE_BLOCK),
        category=selected_value(values, ids.CATEGORY_BLOCK),
        owner=string(element(values, ids.OWNER_BLOCK), "selected_user"),
        slack_team_id=string(as_dict(body.get("team")), "id"),
        slack_channel_id=channel,
        needs_card=True,
        open_channel=checked(values, ids.OPEN_CHANNEL_BLOCK),
    )

    def declare(session: Session) -> tuple[int, str]:
        incident = incidents.declare(
            session,
            draft,
            services.actor(user_id),
            categories=services.settings.categories,
            limit=services.settings.declare_limit,
            channels=services.settings.channel_rules,
        )
        return incident.id, blocks.ref(incident)

    try:
        incident_id, ref = save(services, declare)
    except Refusal as refusal:
        ack(response_action="errors", errors=modal_errors(view, refusal.field, str(refusal)))
        return
    ack()
    origin = string(read_metadata(view), "origin")
    later(
        services,
        client,
        user_id,
        origin,
        post_card,
        incident_id,
        ref,
        user_id,
        origin,
        channel,
    )


def edit_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    shown = meta.get("h")
    if not isinstance(shown, dict) or not all(isinstance(v, str) for v in shown.values()):
        ack(response_action="errors", errors=modal_errors(view, None, STALE_FORM))
        return
    submitted = {
        field: (
            selected_value(values, field)
            if field == ids.CATEGORY_BLOCK
            else text_value(values, field)
        )
        for field in shown
    }
    user_id = body["user"]["id"]
    _save_and_deliver(
        services,
        ack,
        view,
        client,
        user_id,
        lambda session: (
            incidents.edit(
                session,
                meta.get("id"),
                services.actor(user_id),
                submitted,
                seen=shown,
                categories=services.settings.categories,
            ).id
        ),
    )


def note_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    user_id = body["user"]["id"]
    note = text_value(view["state"]["values"], ids.NOTE_BLOCK) or ""
    _save_and_deliver(
        services,
        ack,
        view,
        client,
        user_id,
        lambda session: (
            incidents.add_note(
                session, read_metadata(view).get("id"), services.actor(user_id), note
            ).incident_id
        ),
    )


def resolve_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    override = (text_value(values, ids.OVERRIDE_BLOCK) or "").strip() or None

    def move(session: Session) -> int:
        return incidents.change_status(
            session,
            meta.get("id"),
            string(meta, "to") or "",
            services.actor(user_id),
            note=text_value(values, ids.NOTE_BLOCK),
            cause=text_value(values, ids.CAUSE_BLOCK),
            resolution=text_value(values, ids.RESOLUTION_BLOCK),
            expected_status=known_status(string(meta, "status")),
            followup_rules=services.settings.followup_rules,
            override=override,
        ).id

    try:
        incident_id = save(services, move)
    except Refusal as refusal:
        # The close rule's refusal goes on the admin's "Close anyway" reason, when it is there.
        field = ids.OVERRIDE_BLOCK if refusal.field == "status" else refusal.field
        ack(response_action="errors", errors=modal_errors(view, field, str(refusal)))
        return
    ack()
    deliver_later(services, client, incident_id, user_id, None)


def timeline_note_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    picked = selected_value(values, ids.INCIDENT_BLOCK, ids.INCIDENT_PICKER)
    if not picked:
        ack(response_action="errors", errors={ids.INCIDENT_BLOCK: "Pick an incident."})
        return
    ts, channel = string(meta, "ts"), string(meta, "channel")
    said_at = _message_time(ts)
    if ts is not None and said_at is None:
        ack(response_action="errors", errors={ids.NOTE_BLOCK: STALE_FORM})
        return
    note_ids: list[int] = []

    def add(session: Session) -> int:
        event = incidents.add_note(
            session,
            picked,
            services.actor(user_id),
            text_value(values, ids.NOTE_BLOCK) or "",
            occurred_at=said_at,
            # The same message twice (the shortcut, a 📌) makes one note.
            source=f"{channel}/{ts}" if channel and ts else None,
        )
        note_ids.append(event.id)
        return event.incident_id

    incident_id = _run_or_errors(services, ack, view, add)
    if incident_id is not None:
        later(
            services,
            client,
            user_id,
            None,
            link_and_deliver,
            incident_id,
            note_ids[0],
            user_id,
            channel,
            ts,
        )


def check_attach(
    services: Services,
    ack: Ack,
    view: dict[str, Any],
    incident_ref: Any,
    caption: str | None,
    user_id: str,
) -> int | None:
    """Validate what can be checked before downloading; errors go back inline."""
    try:
        with services.sessions() as session:
            return screenshots.check_can_attach(
                session, incident_ref, services.actor(user_id), caption
            )
    except IncidentError as error:
        ack(
            response_action="errors",
            errors=modal_errors(view, getattr(error, "field", None), str(error)),
        )
        return None


def attach_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    files = _files_of(values)
    if not files:
        ack(response_action="errors", errors={ids.FILES_BLOCK: "Add at least one image."})
        return
    caption = text_value(values, ids.CAPTION_BLOCK)
    user_id = body["user"]["id"]
    incident_id = check_attach(services, ack, view, read_metadata(view).get("id"), caption, user_id)
    if incident_id is None:
        return
    queued = later(
        services,
        client,
        user_id,
        None,
        attach_files,
        incident_id,
        user_id,
        files,
        caption=caption,
        source_permalink=None,
        feedback_channel=None,
    )
    ack() if queued else ack(response_action="errors", errors={ids.FILES_BLOCK: BUSY})


def attach_from_message_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    picked = selected_value(values, ids.INCIDENT_BLOCK, ids.INCIDENT_PICKER)
    if not picked:
        ack(response_action="errors", errors={ids.INCIDENT_BLOCK: "Pick an incident."})
        return
    file_ids = meta.get("files")
    if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
        ack(response_action="errors", errors={ids.INCIDENT_BLOCK: STALE_FORM})
        return
    caption = text_value(values, ids.CAPTION_BLOCK)
    user_id = body["user"]["id"]
    incident_id = check_attach(services, ack, view, picked, caption, user_id)
    if incident_id is None:
        return
    queued = later(
        services,
        client,
        user_id,
        None,
        attach_from_message,
        incident_id,
        user_id,
        file_ids,
        caption,
        string(meta, "channel"),
        string(meta, "ts"),
    )
    ack() if queued else ack(response_action="errors", errors={ids.INCIDENT_BLOCK: BUSY})


def register(app: App, services: Services) -> None:
    app.view(ids.DECLARE_VIEW)(bind(services, declare_submitted))
    app.view(ids.EDIT_VIEW)(bind(services, edit_submitted))
    app.view(ids.NOTE_VIEW)(bind(services, note_submitted))
    app.view(ids.RESOLVE_VIEW)(bind(services, resolve_submitted))
    app.view(ids.TIMELINE_NOTE_VIEW)(bind(services, timeline_note_submitted))
    app.view(ids.ATTACH_VIEW)(bind(services, attach_submitted))
    app.view(ids.ATTACH_FROM_MESSAGE_VIEW)(bind(services, attach_from_message_submitted))


def _files_of(values: dict[str, Any]) -> list[dict[str, Any]]:
    # Read as plain dicts: slack_sdk's ViewState cannot parse a file_input value.
    files = element(values, ids.FILES_BLOCK).get("files")
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _save_and_deliver(
    services: Services,
    ack: Ack,
    view: dict[str, Any],
    client: WebClient,
    user_id: str,
    change: Callable[[Session], int],
) -> None:
    """A form's change: saved and acked (or refused inline), then its Slack updates sent."""
    incident_id = _run_or_errors(services, ack, view, change)
    if incident_id is not None:
        deliver_later(services, client, incident_id, user_id, None)


def _run_or_errors(
    services: Services, ack: Ack, view: dict[str, Any], change: Callable[[Session], int]
) -> int | None:
    """Run `change` in a transaction; ack the modal closed, or with the domain's error inline."""
    try:
        incident_id = save(services, change)
    except Refusal as refusal:
        ack(response_action="errors", errors=modal_errors(view, refusal.field, str(refusal)))
        return None
    ack()
    return incident_id


def post_card(
    services: Services,
    client: WebClient,
    incident_id: int,
    ref: str,
    user_id: str,
    origin: str | None,
    channel: str,
) -> None:
    problems = deliver_now(services, incident_id)
    if problems:
        tell_user(services, user_id, origin, problems, incident_id=incident_id)
    elif origin != channel:
        # Declared elsewhere (another channel, a shortcut, the Home tab): say where it went.
        where = f"Declared {ref}; its card is in {blocks.channel(channel)}."
        tell_user(services, user_id, origin, where, incident_id=incident_id)


def link_and_deliver(
    services: Services,
    client: WebClient,
    incident_id: int,
    note_id: int,
    user_id: str,
    channel: str | None,
    ts: str | None,
) -> None:
    """The note's source message link is a Slack call, so it is fetched after the ack; the
    reply is rendered from the database when it is sent, so the link still reaches the thread."""
    permalink = permalink_of(client, channel, ts)
    if permalink:
        with services.sessions.begin() as session:
            incidents.link_note_source(session, note_id, permalink)
    deliver_and_report(services, client, incident_id, user_id, None)


def attach_from_message(
    services: Services,
    client: WebClient,
    incident_id: int,
    user_id: str,
    file_ids: list[str],
    caption: str | None,
    channel: str | None,
    ts: str | None,
) -> None:
    attach_files(
        services,
        client,
        incident_id,
        user_id,
        [{"id": file_id} for file_id in file_ids],
        caption=caption,
        source_permalink=permalink_of(client, channel, ts),
        feedback_channel=None,
    )


# A Slack message ts: Unix seconds and microseconds, e.g. "1700000000.123456".
_MESSAGE_TS = re.compile(r"[0-9]{1,10}\.[0-9]{6}")


def _message_time(ts: str | None) -> datetime | None:
    """When the message was posted; None when `ts` is missing or not a message ts."""
    if ts is None or not _MESSAGE_TS.fullmatch(ts):
        return None
    return datetime.fromtimestamp(float(ts), UTC)
