"""Type-ahead for the incident picker: active incidents, the most recently active first."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import incidents
from bot.incidents import IncidentError, IncidentQuery
from bot.slack import blocks, ids
from bot.slack.services import Services

from .common import bind

PICKER_SIZE = 20


def incident_options(services: Services, ack: Ack, body: dict[str, Any]):
    typed = body["value"].strip()
    query = IncidentQuery(active=True, sort="updated", page_size=PICKER_SIZE)
    with services.sessions() as session:
        try:
            # "INC-12" or "12" finds that incident even when its words don't match.
            exact = [incidents.get_incident(session, typed)] if typed else []
        except IncidentError:
            exact = []
        exact = [i for i in exact if i.status in incidents.ACTIVE_STATUSES]
        # The last word is still being typed: it matches the words it begins.
        query.text = None if exact else f"{typed}*" if typed else None
        try:
            found = exact or incidents.find_incidents(session, query)
        except IncidentError:
            found = []  # typed text that can't be searched for (a NUL) matches nothing
        ack(options=[blocks.incident_option(i).to_dict() for i in found])


def register(app: App, services: Services) -> None:
    app.options(ids.INCIDENT_PICKER)(bind(services, incident_options))
