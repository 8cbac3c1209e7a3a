"""The update form and the lead handoff form: opened after the ack, grown and shrunk as the
status menu moves (`views.update` with the view's hash), saved before the ack that closes them
or refused inline."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot import incidents
from bot.incidents import IncidentError, UpdateDraft
from bot.slack import blocks, ids
from bot.slack.blocks.forms import (
    NO_PROMISE,
    UpdateForm,
    handoff_modal,
    interval_value,
    update_modal,
)
from bot.slack.services import Services
from db.models import Incident, Status

from .common import (
    Refusal,
    as_dict,
    bind,
    deliver_later,
    integer,
    known_status,
    later,
    modal_errors,
    read_metadata,
    save,
    selected_value,
    string,
    tell_user,
    text_value,
)

log = logging.getLogger(__name__)

STALE_FORM = "This form's data is not valid any more. Close it and start again."
RESOLVE_NOTE = "Resolving: say what fixed it (and, if known, the cause)."


# --- The update form -------------------------------------------------------------------------


def open_update_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    user_id: str,
    channel_id: str | None,
    summary: str = "",
) -> None:
    """The update form, with the last update's impact and promise to start from."""
    actor = services.actor(user_id)
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            if not incidents.may_edit(incident, actor):
                raise incidents.PermissionDenied(
                    f"{blocks.ref(incident)} is closed; only an incident admin can change it."
                )
            latest = incidents.latest_update(session, incident.id)
            details = as_dict(latest.details) if latest is not None else {}
            form = UpdateForm(
                summary=summary or None,
                impact=string(details, "impact"),
                next_update=_promised(details) if latest is not None else None,
            )
            view = _update_view(services, incident, user_id, form)
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def _promised(details: dict[str, Any]) -> str:
    seconds = integer(details, "next_update_in")
    return interval_value(timedelta(seconds=seconds) if seconds else None)


def _update_view(
    services: Services,
    incident: Incident,
    user_id: str,
    form: UpdateForm,
    shown: Status | None = None,
) -> View:
    return update_modal(
        incident,
        is_admin=services.actor(user_id).is_admin,
        intervals=services.settings.update_intervals,
        form=form,
        status=shown,
    )


def _typed(view: dict[str, Any], picked: Status | None, note: str | None = None) -> UpdateForm:
    """What the person has typed in the form so far, to carry into the rebuilt one."""
    values = as_dict(as_dict(view.get("state")).get("values"))
    return UpdateForm(
        status=picked,
        summary=text_value(values, ids.SUMMARY_BLOCK),
        impact=text_value(values, ids.IMPACT_BLOCK),
        next_update=selected_value(values, ids.NEXT_UPDATE_BLOCK),
        resolution=text_value(values, ids.RESOLUTION_BLOCK),
        cause=text_value(values, ids.CAUSE_BLOCK),
        note=note,
    )


def _input_blocks(view: dict[str, Any]) -> set[str]:
    found = view.get("blocks") if isinstance(view.get("blocks"), list) else []
    return {
        block_id
        for block in map(as_dict, found)
        if block.get("type") == "input" and (block_id := string(block, "block_id"))
    }


def _needs_resolution_fields(view: dict[str, Any], picked: Status | None) -> bool | None:
    """Whether the form must grow (True) or shrink (False) for `picked`; None: it is right."""
    shown = known_status(string(read_metadata(view), "status"))
    want = shown is not None and picked is not None and incidents.resolves(shown, picked)
    has = ids.RESOLUTION_BLOCK in _input_blocks(view)
    return None if want == has else want


def update_status_picked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """The status menu moved (dispatch_action): Resolve grows the form, another pick shrinks it."""
    ack()
    view = as_dict(body.get("view"))
    picked = known_status(string(as_dict(action.get("selected_option")), "value"))
    grow = _needs_resolution_fields(view, picked)
    if grow is None or not string(view, "id"):
        return
    user_id = body["user"]["id"]
    later(services, client, user_id, None, regrow_update_modal, view, picked, user_id)


def regrow_update_modal(
    services: Services, client: WebClient, view: dict[str, Any], picked: Status, user_id: str
) -> None:
    meta = read_metadata(view)
    shown = known_status(string(meta, "status"))
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, meta.get("id"))
            rebuilt = _update_view(services, incident, user_id, _typed(view, picked), shown)
    except IncidentError as error:
        log.info("the update form of %s was not rebuilt: %s", meta.get("id"), error)
        return
    try:
        client.views_update(view_id=view["id"], hash=string(view, "hash"), view=rebuilt)
    except SlackApiError as error:
        # hash_conflict: the form changed again since (a later pick rebuilds it); not_found:
        # it was closed. Neither is the person's problem.
        log.info("the update form was not rebuilt: %s", error.response.get("error"))


def update_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    values = view["state"]["values"]
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    shown = known_status(string(meta, "status"))
    picked = known_status(selected_value(values, ids.STATUS_BLOCK, ids.UPDATE_STATUS_ACTION))
    if shown is None:
        ack(response_action="errors", errors=modal_errors(view, None, STALE_FORM))
        return
    if _needs_resolution_fields(view, picked):
        # A client that did not send the menu's action: grow the form now, keeping what was typed.
        try:
            with services.sessions() as session:
                incident = incidents.get_incident(session, meta.get("id"))
                form = _typed(view, picked, RESOLVE_NOTE)
                rebuilt = _update_view(services, incident, user_id, form, shown)
        except IncidentError as error:
            ack(response_action="errors", errors=modal_errors(view, None, str(error)))
            return
        ack(response_action="update", view=rebuilt)
        return
    promise = selected_value(values, ids.NEXT_UPDATE_BLOCK)
    seconds = integer({"s": promise}, "s")
    if promise != NO_PROMISE and (seconds is None or seconds <= 0):
        ack(
            response_action="errors",
            errors={ids.NEXT_UPDATE_BLOCK: "Pick when the next update comes (or none)."},
        )
        return
    has_resolution = ids.RESOLUTION_BLOCK in _input_blocks(view)
    draft = UpdateDraft(
        summary=text_value(values, ids.SUMMARY_BLOCK) or "",
        impact=text_value(values, ids.IMPACT_BLOCK),
        status=picked,
        next_update_in=timedelta(seconds=seconds) if seconds else None,
        resolution=text_value(values, ids.RESOLUTION_BLOCK) if has_resolution else None,
        cause=text_value(values, ids.CAUSE_BLOCK) if has_resolution else None,
    )
    try:
        incident_id = save(
            services,
            lambda session: (
                incidents.post_update(
                    session,
                    meta.get("id"),
                    draft,
                    services.actor(user_id),
                    intervals=services.settings.update_intervals,
                    expected_status=shown,
                    followup_rules=services.settings.followup_rules,
                ).incident_id
            ),
        )
    except Refusal as refusal:
        field = ids.STATUS_BLOCK if refusal.field in (None, "status") else refusal.field
        ack(response_action="errors", errors=modal_errors(view, field, str(refusal)))
        return
    ack()
    deliver_later(services, client, incident_id, user_id, None)


# --- The lead handoff ------------------------------------------------------------------------


def open_handoff_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_id: int,
    new_lead: str,
    user_id: str,
    channel_id: str | None,
) -> None:
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_id)
            view = handoff_modal(
                incident,
                new_lead,
                blocks.metadata(id=incident.id, to=new_lead, channel=channel_id),
            )
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def handoff_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    new_lead = string(meta, "to")
    if not new_lead:
        ack(response_action="errors", errors=modal_errors(view, None, STALE_FORM))
        return
    summary = (text_value(view["state"]["values"], ids.HANDOFF_BLOCK) or "").strip() or None

    def hand_off(session: Any) -> int:
        incident = incidents.lock_incident(session, meta.get("id"))
        # Handed to or taken by someone else since the form opened: no one to hand off from.
        handoff = summary if incident.owner not in (None, new_lead) else None
        return incidents.assign_role(
            session,
            incident.id,
            "lead",
            new_lead,
            services.actor(user_id),
            rules=services.settings.role_rules,
            handoff=handoff,
        ).id

    try:
        incident_id = save(services, hand_off)
    except Refusal as refusal:
        ack(response_action="errors", errors=modal_errors(view, refusal.field, str(refusal)))
        return
    ack()
    deliver_later(services, client, incident_id, user_id, string(meta, "channel"))


def register(app: App, services: Services) -> None:
    app.action(ids.UPDATE_STATUS_ACTION)(bind(services, update_status_picked))
    app.view(ids.UPDATE_VIEW)(bind(services, update_submitted))
    app.view(ids.HANDOFF_VIEW)(bind(services, handoff_submitted))
