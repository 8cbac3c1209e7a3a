"""What the pages show of follow-ups and the review: an incident's follow-ups with their owners
by name, the review's fields as its form shows them, why closing must wait, and the /followups
list's filters. No routes here (pages_followups.py has them); the rules are the domain's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import request
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, followups, review
from bot.web.auth import services
from bot.web.pages_people import name_of
from db.models import FollowUp, FollowUpStatus, Incident, ReviewStatus, Status

LIST_FIELDS = ("owner", "status", "overdue", "incident", "page")
PAGE_SIZE = 20
STATUS_CHOICES = (
    (FollowUpStatus.OPEN.value, "Open"),
    (FollowUpStatus.DONE.value, "Done"),
    (FollowUpStatus.WONT_DO.value, "Won't do"),
)
REVIEW_STATUS_LABELS = {
    ReviewStatus.DRAFT: "Draft",
    ReviewStatus.IN_REVIEW: "In review",
    ReviewStatus.DONE: "Done",
}
REVIEW_TEXTS = (
    ("customer_impact", "Customer impact", "What customers saw, and how many"),
    ("contributing_factors", "Contributing factors", "Why it happened, and why then"),
    ("went_well", "What went well", None),
    ("went_badly", "What went badly", None),
)
REVIEW_TIMES = ("impact_started_at", "impact_ended_at")
# A moment in the review form: <input type="datetime-local">'s value, in TIMEZONE.
FORM_MOMENT = "%Y-%m-%dT%H:%M"


def today() -> date:
    return datetime.now(services().settings.timezone).date()


@dataclass(frozen=True)
class FollowUpRow:
    followup: FollowUp
    ref: str
    owner_name: str
    status_label: str
    overdue: bool
    # The ticket's link, when it is one a browser may follow (http or https).
    ticket_link: str | None
    exportable: bool

    @property
    def is_open(self) -> bool:
        return self.followup.status == FollowUpStatus.OPEN


def row(followup: FollowUp, on: date) -> FollowUpRow:
    tracker = services().settings.followup_rules.tracker
    url = followup.ticket_url
    return FollowUpRow(
        followup=followup,
        ref=followups.format_followup_id(followup.id),
        owner_name=name_of(followup.owner) if followup.owner else "nobody yet",
        status_label=followups.STATUS_LABELS[followup.status],
        overdue=followups.is_overdue(followup, on),
        ticket_link=url if url and urlsplit(url).scheme in ("http", "https") else None,
        exportable=bool(tracker)
        and followup.ticket_key is None
        and followup.export_requested_at is None,
    )


def _moment_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(services().settings.timezone).strftime(FORM_MOMENT)


def review_values(incident: Incident) -> dict[str, str]:
    """The review's fields as its form shows them (and its `seen_` fields keep)."""
    values = {name: _moment_text(getattr(incident, name)) for name in REVIEW_TIMES}
    values |= {name: getattr(incident, name) or "" for name, _, _ in REVIEW_TEXTS}
    values["review_status"] = incident.review_status.value
    values["reviewer"] = name_of(incident.reviewer) if incident.reviewer else ""
    return values


def followups_view(session: Session, incident: Incident, viewer: Actor) -> dict[str, Any]:
    """The template's values for the Follow-ups and Review sections, and the close rule."""
    web = services()
    rules = web.settings.followup_rules
    on = today()
    may_close = Status.CLOSED in incidents.allowed_next_statuses(
        incident.status, is_admin=viewer.is_admin
    )
    started, ended = review.impact_window(incident)
    return {
        "followup_rows": [row(f, on) for f in followups.followups_of(session, incident.id)],
        "priorities": rules.priorities,
        "default_priority": rules.default_priority,
        "tracker": rules.tracker,
        "followup_title_max": followups.TITLE_MAX,
        "close_waits_for": followups.close_refusal(session, incident, rules) if may_close else None,
        "may_override": may_close and viewer.is_admin,
        "override_max": followups.OVERRIDE_MAX,
        "review": review_values(incident),
        "review_texts": REVIEW_TEXTS,
        "review_statuses": list(REVIEW_STATUS_LABELS.items()),
        "review_text_max": review.REVIEW_TEXT_MAX,
        "impact_window": (started, ended),
        "review_status_label": REVIEW_STATUS_LABELS[incident.review_status],
        "reviewer_name": name_of(incident.reviewer) if incident.reviewer else None,
        "zone": str(web.settings.timezone),
    }


# --- The /followups list -----------------------------------------------------------------------


def list_form() -> dict[str, str]:
    """The list's query string as its form shows it; open ones when no status was asked for."""
    form = {name: request.args.get(name, "") for name in LIST_FIELDS if name in request.args}
    form.setdefault("status", FollowUpStatus.OPEN.value)
    return form


def list_query(form: dict[str, str], viewer: Actor) -> followups.FollowUpQuery:
    """The domain's query for the form: the owner by name, id or `me`; InvalidInput (naming
    the filter) for what can't be read."""
    owner = form.get("owner", "").strip()
    if owner.lower() == "me":
        owner = viewer.user_id
    elif owner:
        owner = services().directory.resolve(owner, field="owner")
    status = form.get("status", "")
    if status and status not in {value for value, _ in STATUS_CHOICES}:
        raise incidents.InvalidInput("Status: pick open, done or won't do (or any).", "status")
    ref = form.get("incident", "").strip()
    try:
        number = incidents.parse_incident_id(ref) if ref else None
    except incidents.InvalidInput as error:
        raise incidents.InvalidInput(f"Incident: {error}", "incident") from None
    page_text = form.get("page", "1").strip() or "1"
    digits = page_text.isascii() and page_text.isdigit() and len(page_text) < 7
    page = int(page_text) if digits else 0
    if not 1 <= page <= incidents.PAGE_MAX:
        raise incidents.InvalidInput(f"Page: a number from 1 to {incidents.PAGE_MAX}.", "page")
    return followups.FollowUpQuery(
        owner=owner or None,
        status=FollowUpStatus(status) if status else None,
        overdue=form.get("overdue") in ("1", "on", "yes", "true"),
        incident_id=number,
        today=today(),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


def page_link(form: dict[str, str], page: int) -> str:
    """The list's URL for another page of the same filters (a blank status is "any")."""
    kept = {
        name: value
        for name, value in form.items()
        if (value or name == "status") and name != "page"
    }
    return "?" + urlencode({**kept, "page": page})
