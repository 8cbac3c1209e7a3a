"""Server-rendered pages: the incident list and an incident's page (work without JavaScript)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import render_template

from bot import incidents
from bot.web.auth import page_actor, services

bp = APIBlueprint("pages", __name__, enable_openapi=False)


@bp.get("/")
@bp.get("/incidents")
def incident_list() -> str:
    page_actor()
    with services().read() as session:
        page = incidents.list_incidents(session, incidents.IncidentQuery())
    return render_template("incident_list.html", page=page)


@bp.get("/incidents/<incident_id>")
def incident_page(incident_id: str) -> str:
    page_actor()
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        return render_template("error.html", status=200, message=incident.title)
