"""The pages' follow-ups and review: add a follow-up, change it, mark it done or won't do,
export it to the tracker, edit the review (on a closed incident too), and the /followups list.

Each form makes one change through the domain and redirects back with a flash, as
pages_forms.py's do; a refusal shows the incident's page with the domain's sentence and what
was typed. Fields that show a value carry it in a `seen_` field, and only what the person
changed is sent: saving a title leaves an overdue date alone, and an edit made meanwhile by
someone else to another field stands. pages.py routes to these functions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, followups, review
from bot.web import pages_followups_view as view
from bot.web.auth import check_csrf, page_actor, safe_next, services
from bot.web.pages_forms import save
from bot.web.pages_people import name_of
from bot.web.pages_view import refusal, render_incident, when

FollowUpChange = Callable[[Session], tuple[int, str]]


def _form(name: str) -> str:
    # Browsers send a textarea's line breaks as CRLF; a `seen_` field keeps them as LF.
    return request.form.get(name, "").replace("\r\n", "\n")


def _changed(name: str) -> bool:
    """Whether the person changed the field (no `seen_` value: it was blank, or not shown)."""
    if name not in request.form:
        return False
    return _form(name) != _form(f"seen_{name}")


def _owner(name: str, field: str) -> str | None:
    typed = request.form.get(name, "")
    return services().directory.resolve(typed, field=field) if typed.strip() else None


def _due(name: str) -> date | None:
    typed = request.form.get(name, "").strip()
    return followups.parse_due(typed, view.today()) if typed else None


def add_followup(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    rules = services().settings.followup_rules
    try:
        # Before the transaction: finding a name may ask Slack.
        draft = followups.FollowUpDraft(
            title=request.form.get("followup_title", ""),
            owner=_owner("followup_owner", "owner"),
            due_on=_due("followup_due"),
            priority=request.form.get("followup_priority") or None,
        )
    except incidents.IncidentError as error:
        return render_incident(incident_id, actor, problem=error)

    def change(session: Session) -> tuple[int, str]:
        followup = followups.add_followup(session, incident_id, draft, actor, rules)
        ref = followups.format_followup_id(followup.id)
        message = f"{ref} is added to {incidents.format_incident_id(followup.incident_id)}."
        if followup.owner and followup.owner != actor.user_id:
            message += f" {name_of(followup.owner)} is told by DM."
        return followup.incident_id, message

    return save(incident_id, actor, change, anchor="followups")


def _save_followup(followup_id: str, actor: Actor, change: FollowUpChange) -> Any:
    """Make the change; back where the form came from (its incident's page, or the list), or
    the incident's page with the refusal."""
    try:
        with services().change() as session:
            incident_id, message = change(session)
    except incidents.IncidentError as error:
        with services().read() as session:
            # A follow-up that isn't there is the app's 404 page.
            incident_id = followups.get_followup(session, followup_id).incident_id
        return render_incident(str(incident_id), actor, problem=error)
    flash(message)
    back = request.form.get("next")
    if back:
        return redirect(safe_next(back), code=303)
    ref = followups.format_followup_id(followups.parse_followup_id(followup_id))
    return redirect(url_for("pages.incident_page", incident_id=incident_id, _anchor=ref))


def change_followup(followup_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    rules = services().settings.followup_rules
    changes: dict[str, Any] = {}
    try:
        if _changed("title"):
            changes["title"] = request.form["title"]
        if _changed("owner"):
            changes["owner"] = _owner("owner", "owner")
        if _changed("due"):
            changes["due_on"] = _due("due")
        if _changed("priority"):
            changes["priority"] = request.form["priority"]
    except incidents.IncidentError as error:
        with services().read() as session:
            incident_id = followups.get_followup(session, followup_id).incident_id
        return render_incident(str(incident_id), actor, problem=error)

    def change(session: Session) -> tuple[int, str]:
        followup = followups.get_followup(session, followup_id)
        ref = followups.format_followup_id(followup.id)
        if not changes:
            return followup.incident_id, f"Nothing changed in {ref}."
        followup = followups.change_followup(session, followup.id, actor, rules, **changes)
        return followup.incident_id, f"{ref} is saved."

    return _save_followup(followup_id, actor, change)


def followup_status(followup_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    status = request.form.get("status", "")

    def change(session: Session) -> tuple[int, str]:
        followup = followups.set_followup_status(session, followup_id, status, actor)
        ref = followups.format_followup_id(followup.id)
        return followup.incident_id, f"{ref} is {followups.STATUS_LABELS[followup.status]} now."

    return _save_followup(followup_id, actor, change)


def export_followup(followup_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    rules = services().settings.followup_rules

    def change(session: Session) -> tuple[int, str]:
        followup = followups.request_export(session, followup_id, actor, rules)
        ref = followups.format_followup_id(followup.id)
        tracker = {"github": "GitHub", "jira": "Jira"}.get(rules.tracker or "", rules.tracker)
        return followup.incident_id, (
            f"{ref} is being exported to {tracker}: its ticket's link shows here once it is made."
        )

    return _save_followup(followup_id, actor, change)


# --- The review --------------------------------------------------------------------------------


def _moment(name: str) -> datetime | None:
    """A datetime-local field's value, in TIMEZONE; blank: none (the default applies)."""
    typed = request.form.get(name, "").strip()
    if not typed:
        return None
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        label = "Impact start" if name == "impact_started_at" else "Impact end"
        raise incidents.InvalidInput(
            f"{label}: give a date and time such as 2026-12-07T14:30.", name
        ) from None
    zone = services().settings.timezone
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def review_changes() -> dict[str, object]:
    """The review's fields the person changed, as the domain takes them."""
    values: dict[str, object] = {}
    for name in view.REVIEW_TIMES:
        if _changed(name):
            values[name] = _moment(name)
    for name, _, _ in view.REVIEW_TEXTS:
        if _changed(name):
            values[name] = _form(name) or None
    if _changed("review_status"):
        values["review_status"] = request.form["review_status"]
    if _changed("reviewer"):
        values["reviewer"] = _owner("reviewer", "reviewer")
    return values


def edit_review(incident_id: str) -> Any:
    actor = page_actor()
    check_csrf()
    try:
        values = review_changes()
    except incidents.IncidentError as error:
        return render_incident(incident_id, actor, problem=error)

    def change(session: Session) -> tuple[int, str]:
        if not values:
            number = incidents.get_incident(session, incident_id).id
            ref = incidents.format_incident_id(number)
            return number, f"Nothing changed in the review of {ref}."
        incident, _ = review.edit_review(session, incident_id, actor, values)
        return incident.id, f"The review of {incidents.format_incident_id(incident.id)} is saved."

    return save(incident_id, actor, change, anchor="review")


# --- The list ----------------------------------------------------------------------------------


def followup_list() -> Any:
    viewer = page_actor()
    form = view.list_form()
    shown = {"form": form, "statuses": view.STATUS_CHOICES, "when": when}
    try:
        query = view.list_query(form, viewer)
        with services().read() as session:
            found = followups.list_followups(session, query)
            on = query.today or view.today()
            rows = [view.row(f, on) for f in found.items]
    except incidents.IncidentError as error:
        html = render_template("followups.html", rows=None, problem=str(error), **shown)
        return html, *refusal(error)
    page = query.offset // view.PAGE_SIZE + 1
    has_next = query.offset + len(rows) < found.total
    return render_template(
        "followups.html",
        rows=rows,
        total=found.total,
        page=page,
        pages=max(1, -(-found.total // view.PAGE_SIZE)),
        previous_link=view.page_link(form, page - 1) if page > 1 else None,
        next_link=view.page_link(form, page + 1) if has_next else None,
        here=request.full_path.rstrip("?"),
        **shown,
    )
