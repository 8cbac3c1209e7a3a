"""Server-rendered pages: the incident list, an incident's page and its forms, declaring.

They work without JavaScript: filters are a GET form (shareable URLs), changes are POST forms
carrying the session's CSRF token, answered by a redirect back to the page (Post/Redirect/Get).
The forms' handlers are in pages_forms.py, what pages show in pages_view.py.
"""

from __future__ import annotations

import io
from typing import Any

from apiflask import APIBlueprint
from flask import render_template, send_file
from werkzeug.wrappers import Response

from bot import incidents
from bot.incidents import screenshots
from bot.web import pages_coordination, pages_followups, pages_forms, pages_view
from bot.web.api_common import NOTE_ID, SCREENSHOT_ID
from bot.web.auth import page_actor, services
from db.models import Severity

bp = APIBlueprint("pages", __name__, enable_openapi=False)

# Stored images never change under their id, so the browser may keep them (privately: they are
# behind the sign-in).
IMAGE_MAX_AGE = 24 * 3600


@bp.get("/")
@bp.get("/incidents")
def incident_list() -> Any:
    page_actor()
    form = pages_view.list_form()
    settings = services().settings
    shown = {
        "form": form,
        "severities": list(Severity),
        "categories": settings.categories,
        "sorts": pages_view.SORTS,
        "statuses": list(incidents.WORKFLOW_ORDER),
    }
    try:
        page = pages_view.list_page(form)
    except incidents.IncidentError as error:
        html = render_template("incident_list.html", page=None, problem=str(error), **shown)
        return html, *pages_view.refusal(error)
    return render_template(
        "incident_list.html",
        page=page,
        previous_link=pages_view.page_link(form, page.page - 1) if page.page > 1 else None,
        next_link=pages_view.page_link(form, page.page + 1) if page.has_next else None,
        when=pages_view.when,
        who=pages_view.who,
        **shown,
    )


@bp.get("/incidents/<incident_id>")
def incident_page(incident_id: str) -> Any:
    return pages_view.render_incident(incident_id, page_actor())


@bp.get(f"/incidents/<incident_id>/screenshots/{SCREENSHOT_ID}")
def screenshot_image(incident_id: str, screenshot_id: int) -> Response:
    page_actor()
    with services().read() as session:
        shot = screenshots.find_screenshot(session, incident_id, screenshot_id=screenshot_id)
        _, content = screenshots.stored_image(session, shot.id)
    response = send_file(
        io.BytesIO(content),
        mimetype=shot.mime_type,
        etag=shot.sha256,
        max_age=IMAGE_MAX_AGE,
    )
    response.cache_control.public = False
    response.cache_control.private = True
    # Opened on its own, the image is still a document of this site: it may run nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


bp.route("/incidents/new", methods=["GET", "POST"])(pages_forms.new_incident)
bp.route("/incidents/<incident_id>/edit", methods=["GET", "POST"])(pages_forms.edit_incident)
bp.route("/incidents/<incident_id>/delete", methods=["GET", "POST"])(pages_forms.delete_incident)
bp.post("/incidents/<incident_id>/status")(pages_forms.change_status)
bp.post("/incidents/<incident_id>/severity")(pages_forms.change_severity)
bp.post("/incidents/<incident_id>/notes")(pages_forms.add_note)
bp.post(f"/incidents/<incident_id>/notes/{NOTE_ID}/delete")(pages_forms.delete_note)
bp.post("/incidents/<incident_id>/screenshots")(pages_forms.attach_screenshot)
bp.post("/incidents/<incident_id>/roles/<role>")(pages_coordination.give_role)
bp.post("/incidents/<incident_id>/lead")(pages_coordination.take_lead)
bp.post("/incidents/<incident_id>/updates")(pages_coordination.post_update)
bp.post("/incidents/<incident_id>/subscribe")(pages_coordination.subscribe)
bp.post("/incidents/<incident_id>/unsubscribe")(pages_coordination.unsubscribe)
bp.post("/incidents/<incident_id>/followups")(pages_followups.add_followup)
bp.post("/incidents/<incident_id>/review")(pages_followups.edit_review)
bp.get("/followups")(pages_followups.followup_list)
bp.post("/followups/<followup_id>/edit")(pages_followups.change_followup)
bp.post("/followups/<followup_id>/status")(pages_followups.followup_status)
bp.post("/followups/<followup_id>/export")(pages_followups.export_followup)
