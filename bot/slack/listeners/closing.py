"""The close rule (CLOSE_REQUIRES) in Slack: a refused close says the domain's sentence, and an
incident admin is offered "Close anyway", a form asking the reason, passed as `override`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import IncidentError, followups
from bot.slack import blocks, ids
from bot.slack.blocks import followups as fu_blocks
from bot.slack.services import Services
from db.models import Status

from .common import (
    Refusal,
    _where,
    bind,
    deliver_later,
    known_status,
    later,
    modal_errors,
    read_metadata,
    read_value,
    save,
    string,
    tell_user,
    text_value,
)

log = logging.getLogger(__name__)


def refused_blocks(
    services: Services, user_id: str, incident_ref: object, refusal: Refusal
) -> list[dict[str, Any]] | None:
    """The refusal of a close laid out with "Close anyway", when it is the close rule's and the
    person is an incident admin; None otherwise (the plain sentence says it)."""
    if refusal.field != "status" or not services.actor(user_id).is_admin:
        return None
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            sentence = followups.close_refusal(session, incident, services.settings.followup_rules)
            if sentence is None:
                return None
            shown = fu_blocks.close_refused(incident, str(refusal), offer_override=True)
    except IncidentError:
        return None
    return [block.to_dict() for block in shown]


def close_anyway_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    value = read_value(action)
    later(
        services,
        client,
        user_id,
        channel_id,
        open_override_modal,
        body["trigger_id"],
        value.get("id"),
        known_status(string(value, "status")),
        user_id,
        channel_id,
    )


def open_override_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    seen: Status | None,
    user_id: str,
    channel_id: str | None,
) -> None:
    try:
        if not services.actor(user_id).is_admin:
            raise incidents.PermissionDenied("Only an incident admin can close it anyway.")
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            incidents.check_as_seen(incident, seen)
            rules = services.settings.followup_rules
            sentence = followups.close_refusal(session, incident, rules) or (
                f"{blocks.ref(incident)} may close now."
            )
            view = fu_blocks.close_override_modal(incident, sentence)
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def override_submitted(
    services: Services, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
):
    meta = read_metadata(view)
    user_id = body["user"]["id"]
    reason = (text_value(view["state"]["values"], ids.OVERRIDE_BLOCK) or "").strip()
    if not reason:
        ack(response_action="errors", errors={ids.OVERRIDE_BLOCK: "Say why it closes anyway."})
        return

    def close(session: Session) -> int:
        return incidents.change_status(
            session,
            meta.get("id"),
            Status.CLOSED,
            services.actor(user_id),
            expected_status=known_status(string(meta, "status")),
            followup_rules=services.settings.followup_rules,
            override=reason,
        ).id

    try:
        incident_id = save(services, close)
    except Refusal as refusal:
        ack(
            response_action="errors",
            errors=modal_errors(view, ids.OVERRIDE_BLOCK, str(refusal)),
        )
        return
    ack()
    deliver_later(services, client, incident_id, user_id, None)


def register(app: App, services: Services) -> None:
    app.action(ids.CLOSE_ANYWAY_ACTION)(bind(services, close_anyway_clicked))
    app.view(ids.CLOSE_OVERRIDE_VIEW)(bind(services, override_submitted))
