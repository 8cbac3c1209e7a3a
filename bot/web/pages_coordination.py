"""The incident page's forms for running it: give or take a role (people picked by name), "I'll
lead", post a structured update, subscribe and unsubscribe. Each makes one change through the
domain, as pages_forms.py's do (pages.py routes to them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import progress, roles
from bot.web.auth import check_csrf, page_actor, services
from bot.web.pages_forms import save
from bot.web.pages_people import name_of
from bot.web.pages_view import render_incident, when


def _text(name: str) -> str | None:
    return request.form.get(name) or None


def give_role(incident_id: str, role: str) -> Any:
    actor = page_actor()
    check_csrf()
    web = services()
    action = request.form.get("action", "give")
    user_id: str | None
    try:
        if action == "nobody":
            user_id = None
        elif action == "take":
            user_id = actor.user_id
        else:
            # Before the transaction: finding a name may ask Slack.
            user_id = web.directory.resolve(request.form.get("person", ""))
    except incidents.IncidentError as error:
        return render_incident(incident_id, actor, problem=error)
    # A handoff summary is for a new lead; leaving the lead to nobody has none to read it.
    handoff = _text("handoff") if user_id is not None else None

    def change(session: Session) -> tuple[int, str]:
        incident = roles.assign_role(
            session,
            incident_id,
            role,
            user_id,
            actor,
            rules=web.settings.role_rules,
            handoff=handoff,
        )
        ref = incidents.format_incident_id(incident.id)
        name = web.settings.role_rules.get(role).name
        if user_id is None:
            return incident.id, f"Nobody is the {name} of {ref} now."
        who = "You are" if user_id == actor.user_id else f"{name_of(user_id)} is"
        return incident.id, f"{who} the {name} of {ref} now."

    return save(incident_id, actor, change)


def take_lead(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    web = services()

    def change(session: Session) -> tuple[int, str]:
        incident = roles.take_lead(session, incident_id, actor, rules=web.settings.role_rules)
        return incident.id, f"You lead {incidents.format_incident_id(incident.id)} now."

    return save(incident_id, actor, change)


def post_update(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    web = services()
    seen = _text("seen_status")
    try:
        draft = progress.UpdateDraft(
            summary=request.form.get("summary", ""),
            impact=_text("impact"),
            status=_text("new_status"),
            next_update_in=_interval(request.form.get("next_update", "")),
            resolution=_text("update_resolution"),
            cause=_text("update_cause"),
        )
        expected = incidents.parse_status(seen) if seen else None
    except incidents.IncidentError as error:
        return render_incident(incident_id, actor, problem=error)

    def change(session: Session) -> tuple[int, str]:
        event = progress.post_update(
            session,
            incident_id,
            draft,
            actor,
            intervals=web.settings.update_intervals,
            expected_status=expected,
            followup_rules=web.settings.followup_rules,
            override=_text("override"),
        )
        ref = incidents.format_incident_id(event.incident_id)
        message = f"Your update is posted on {ref}."
        if event.field == "status":
            message += f" It is {event.to_value} now."
        incident = incidents.get_incident(session, event.incident_id)
        if incident.next_update_at is not None:
            message += f" The next one is due {when(incident.next_update_at)}."
        return event.incident_id, message

    return save(incident_id, actor, change)


def _interval(value: str) -> timedelta | None:
    """The form's "next update in" (seconds, or blank for none); the domain judges the choice."""
    value = value.strip()
    if not value or value == "none":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise incidents.InvalidInput("Pick when the next update will come.", "next_update")
    return timedelta(seconds=int(value))


def subscribe(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()

    def change(session: Session) -> tuple[int, str]:
        number = incidents.get_incident(session, incident_id).id
        ref = incidents.format_incident_id(number)
        if incidents.subscribe(session, number, actor.user_id):
            return number, f"You are subscribed to {ref}: its updates come to you by DM."
        return number, f"You were already subscribed to {ref}."

    return save(incident_id, actor, change)


def unsubscribe(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()

    def change(session: Session) -> tuple[int, str]:
        number = incidents.get_incident(session, incident_id).id
        ref = incidents.format_incident_id(number)
        if incidents.unsubscribe(session, number, actor.user_id):
            return number, f"You are unsubscribed from {ref}."
        return number, f"You were not subscribed to {ref}."

    return save(incident_id, actor, change)
