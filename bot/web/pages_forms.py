"""The pages' forms: each parses what was posted, makes one change through the domain, and
redirects back with a flash saying what was saved. A refusal shows the page again with the
domain's sentence, and what the person typed, and changes nothing.

pages.py routes to these functions (they are registered on its blueprint, "pages")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, screenshots
from bot.web.auth import check_csrf, page_actor, services
from bot.web.pages_view import refusal, render_incident
from db.models import Severity

# A change made in a transaction: what it touched (an incident id) and what to tell the person.
Change = Callable[[Session], tuple[int, str]]


def _text(name: str) -> str | None:
    return request.form.get(name) or None


def save(incident_id: str, actor: Actor, change: Change, *, anchor: str | None = None) -> Any:
    """Make the change; back to the incident's page (at `anchor`) with a flash, or its page with
    the refusal."""
    try:
        with services().change() as session:
            changed_id, message = change(session)
    except incidents.IncidentError as error:
        return _refused(incident_id, actor, error)
    flash(message)
    return redirect(url_for("pages.incident_page", incident_id=changed_id, _anchor=anchor))


def _refused(incident_id: str, actor: Actor, error: incidents.IncidentError) -> Any:
    return render_incident(incident_id, actor, problem=error)


def change_status(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    rules = services().settings.followup_rules

    def change(session: Session) -> tuple[int, str]:
        seen = _text("seen_status")
        incident = incidents.change_status(
            session,
            incident_id,
            request.form.get("status", ""),
            actor,
            note=_text("note"),
            cause=_text("cause"),
            resolution=_text("resolution"),
            expected_status=incidents.parse_status(seen) if seen else None,
            followup_rules=rules,
            override=_text("override"),
        )
        ref = incidents.format_incident_id(incident.id)
        return incident.id, f"{ref} is now {incident.status.value}."

    return save(incident_id, actor, change)


def change_severity(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()

    def change(session: Session) -> tuple[int, str]:
        incident = incidents.change_severity(
            session, incident_id, request.form.get("severity", ""), actor, note=_text("note")
        )
        ref = incidents.format_incident_id(incident.id)
        return incident.id, f"{ref} is now {incident.severity.value}."

    return save(incident_id, actor, change)


def add_note(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()

    def change(session: Session) -> tuple[int, str]:
        note = incidents.add_note(session, incident_id, actor, request.form.get("text", ""))
        return note.incident_id, f"Note added to {incidents.format_incident_id(note.incident_id)}."

    return save(incident_id, actor, change)


def delete_note(incident_id: str, note_id: int) -> Any:
    actor = page_actor()
    check_csrf()

    def change(session: Session) -> tuple[int, str]:
        event = incidents.delete_note(session, note_id, actor, incident_id=incident_id)
        ref = incidents.format_incident_id(event.incident_id)
        return event.incident_id, f"The note was deleted from {ref}."

    return save(incident_id, actor, change)


def attach_screenshot(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    try:
        # Decoding a large image takes a while: before the transaction, not inside it.
        image = _uploaded_image()
    except incidents.IncidentError as error:
        return _refused(incident_id, actor, error)
    caption = _text("caption")

    def change(session: Session) -> tuple[int, str]:
        stored = screenshots.attach_image(session, incident_id, actor, image, caption=caption)
        number = incidents.parse_incident_id(incident_id)
        ref = incidents.format_incident_id(number)
        if stored is None:
            return number, f"{ref} already had this image; nothing changed."
        return number, f"{image.filename} is attached to {ref}."

    return save(incident_id, actor, change)


def _uploaded_image() -> screenshots.ValidImage:
    """The posted file, judged as Slack's files and the API's uploads are."""
    upload = request.files.get("screenshot")
    if upload is None or not upload.filename:
        raise incidents.InvalidInput("Choose an image file to attach.", "screenshot")
    limit = services().settings.max_screenshot_bytes
    # The form parser spooled the file to disk; this is the one copy in memory.
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise incidents.InvalidInput(
            f"{upload.filename} was not kept: it is larger than the {limit / 2**20:g} MiB a "
            "screenshot may be.",
            "screenshot",
        )
    try:
        return screenshots.validate_image(upload.filename, data)
    except screenshots.NotAnImage as error:
        raise incidents.InvalidInput(
            f"{upload.filename} was not kept: {error}.", "screenshot"
        ) from None


def new_incident() -> Any:
    actor = page_actor()
    web = services()
    form: Any = {"severity": Severity.SEV3.value}
    problem, status, headers = None, 200, {}
    if request.method == "POST":
        check_csrf()
        form = request.form
        draft = incidents.IncidentDraft(
            title=form.get("title", ""),
            severity=form.get("severity", ""),
            description=_text("description"),
            service=_text("service"),
            category=_text("category"),
            open_channel=form.get("open_channel") == "yes",
        )
        try:
            with web.change() as session:
                incident = web.declare(session, draft, actor)
                incident_id = incident.id
        except incidents.IncidentError as error:
            problem = str(error)
            status, headers = refusal(error)
        else:
            flash(f"{incidents.format_incident_id(incident_id)} is declared.")
            return redirect(url_for("pages.incident_page", incident_id=incident_id))
    html = render_template(
        "incident_new.html",
        form=form,
        problem=problem,
        severities=list(Severity),
        severity_labels=incidents.SEVERITY_LABELS,
        categories=web.settings.categories,
        offer_channel=web.settings.channel_rules.offered,
    )
    return html, status, headers


def edit_incident(incident_id: str) -> Any:
    actor = page_actor()
    web = services()
    problem, status, headers = None, 200, {}
    if request.method == "POST":
        check_csrf()
        changes = {name: request.form.get(name) for name in incidents.EDITABLE_FIELDS}
        seen = {
            name: request.form[f"seen_{name}"]
            for name in incidents.EDITABLE_FIELDS
            if f"seen_{name}" in request.form
        }
        try:
            with web.change() as session:
                incident = incidents.edit(
                    session,
                    incident_id,
                    actor,
                    {name: value for name, value in changes.items() if value is not None},
                    seen=seen,
                    categories=web.settings.categories,
                )
                changed_id = incident.id
        except incidents.IncidentError as error:
            problem = str(error)
            status, headers = refusal(error)
        else:
            flash(f"Your edits to {incidents.format_incident_id(changed_id)} are saved.")
            return redirect(url_for("pages.incident_page", incident_id=changed_id))
    with web.read() as session:
        incident = incidents.get_incident(session, incident_id)
        current = {name: getattr(incident, name) or "" for name in incidents.EDITABLE_FIELDS}
        html = render_template(
            "incident_edit.html",
            incident=incident,
            ref=incidents.format_incident_id(incident.id),
            # After a refusal the form keeps what was typed, and the fingerprints of what the
            # form first showed, so a retry still only sets the fields the person changed.
            form=request.form if problem else current,
            seen=(
                {name: request.form.get(f"seen_{name}", "") for name in incidents.EDITABLE_FIELDS}
                if problem
                else {name: incidents.fingerprint(value) for name, value in current.items()}
            ),
            categories=sorted({*web.settings.categories, current["category"]} - {""}),
            problem=problem,
        )
    return html, status, headers


def delete_incident(incident_id: str) -> Any:
    actor = page_actor()
    web = services()
    # Flask answers HEAD (and OPTIONS) with this view too: only a POST deletes.
    if request.method != "POST":
        with web.read() as session:
            incident = incidents.check_can_delete(session, incident_id, actor)
            return render_template(
                "incident_delete.html",
                incident=incident,
                ref=incidents.format_incident_id(incident.id),
            )
    check_csrf()
    try:
        with web.change() as session:
            ref = incidents.format_incident_id(incidents.parse_incident_id(incident_id))
            title = incidents.delete_incident(session, incident_id, actor)
    except incidents.IncidentError as error:
        return _refused(incident_id, actor, error)
    flash(f"{ref} ({title}) is deleted.")
    return redirect(url_for("pages.incident_list"))
