"""The REST API's request and response shapes: they validate requests and write the OpenAPI
document, so the two can't disagree. Limits come from the domain's vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, post_load, validates_schema

from bot import incidents
from bot.incidents import followups, progress, review, roles, screenshots
from bot.web.schemas_fields import CommaSeparated, Moment
from bot.web.schemas_fields import person as _person
from bot.web.schemas_fields import text as _text
from db.models import EventKind, ReviewStatus, Severity, Status


class IncidentListQuery(Schema):
    status = CommaSeparated(
        metadata={
            "description": "Statuses, comma-separated, or `active` (open, investigating, "
            "mitigated). Aliases such as `ack` are understood."
        }
    )
    severity = CommaSeparated(metadata={"description": "e.g. `SEV1,SEV2` (or `critical,high`)"})
    service = CommaSeparated(max_each=incidents.SERVICE_MAX)
    category = CommaSeparated(max_each=64)
    owner = CommaSeparated(max_each=64, metadata={"description": "Slack user ids"})
    q = String(
        validate=Length(max=incidents.SEARCH_MAX),
        metadata={
            "description": "words, each matching a whole word of the title, description or "
            "service; a word ending in * matches the words it begins"
        },
    )
    sort = String(
        load_default="-created",
        metadata={"description": f"one of {', '.join(incidents.ORDER_SQL)}; `-` for descending"},
    )
    page = Integer(load_default=1, validate=Range(min=1, max=incidents.PAGE_MAX))
    limit = Integer(load_default=20, validate=Range(min=1, max=incidents.PAGE_SIZE_MAX))


class IncidentSummary(Schema):
    id = Integer()
    ref = String(metadata={"description": "INC-<id>"})
    title = String()
    severity = String(validate=OneOf([s.value for s in Severity]))
    status = String(validate=OneOf([s.value for s in Status]))
    service = String(allow_none=True)
    owner = String(allow_none=True)
    assignee = String(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()
    url = String(metadata={"description": "the incident's page"})


class IncidentList(Schema):
    items = List(Nested(IncidentSummary))
    total = Integer()
    total_is_exact = Boolean(
        metadata={
            "description": "false when more match than were counted: "
            f"{incidents.COUNT_AHEAD} past the page's first"
        }
    )
    page = Integer()
    limit = Integer()
    has_next = Boolean()


# --- Requests ----------------------------------------------------------------------------------
# Limits are documented from the domain's constants; the domain judges (it trims before counting).


_SEVERITY_HELP = f"one of {incidents.severity_choices()} (aliases such as `p1` are understood)"
_STATUS_HELP = f"one of {', '.join(s.value for s in Status)} (aliases such as `ack` too)"
_REVIEW_STATUSES = [s.value for s in ReviewStatus]
_OVERRIDE_HELP = (
    "for an incident admin: the reason to close although CLOSE_REQUIRES is not met (kept in "
    "the timeline)"
)


class IncidentCreate(Schema):
    title = _text(incidents.TITLE_MAX, shortest=incidents.TITLE_MIN, required=True)
    severity = String(required=True, metadata={"description": _SEVERITY_HELP})
    description = _text(incidents.DESCRIPTION_MAX, allow_none=True)
    service = _text(incidents.SERVICE_MAX, allow_none=True)
    category = String(allow_none=True, metadata={"description": "one of INCIDENT_CATEGORIES"})
    owner = _person("the incident commander's Slack user id")
    assignee = _person("the Slack user id of who works on it")
    open_channel = Boolean(
        metadata={"description": "ask for the incident's own Slack channel (the rules decide)"}
    )


class IncidentPatch(Schema):
    title = _text(incidents.TITLE_MAX, shortest=incidents.TITLE_MIN)
    description = _text(incidents.DESCRIPTION_MAX, allow_none=True)
    service = _text(incidents.SERVICE_MAX, allow_none=True)
    category = String(allow_none=True)
    cause = _text(incidents.CAUSE_MAX, allow_none=True)
    resolution = _text(incidents.RESOLUTION_MAX, allow_none=True)
    severity = String(metadata={"description": _SEVERITY_HELP})
    owner = _person("the incident commander's Slack user id; null unassigns")
    assignee = _person("who works on it (a Slack user id); null unassigns")
    # The review: editable on closed incidents too (closed freezes the incident, not the work
    # after it).
    impact_started_at = Moment(
        allow_none=True, metadata={"description": "the review's impact start; null: declared"}
    )
    impact_ended_at = Moment(
        allow_none=True, metadata={"description": "the review's impact end; null: resolved"}
    )
    customer_impact = _text(review.REVIEW_TEXT_MAX, "what customers saw", allow_none=True)
    contributing_factors = _text(review.REVIEW_TEXT_MAX, allow_none=True)
    went_well = _text(review.REVIEW_TEXT_MAX, allow_none=True)
    went_badly = _text(review.REVIEW_TEXT_MAX, allow_none=True)
    review_status = String(
        validate=OneOf(_REVIEW_STATUSES), metadata={"description": "where the review stands"}
    )
    reviewer = _person("who reviews it (a Slack user id); null: nobody")

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(f"Send at least one of: {', '.join(self.fields)}.")


class StatusChange(Schema):
    status = String(required=True, metadata={"description": _STATUS_HELP})
    note = _text(incidents.NOTE_MAX, allow_none=True)
    cause = _text(incidents.CAUSE_MAX, allow_none=True)
    resolution = _text(incidents.RESOLUTION_MAX, allow_none=True)
    override = _text(followups.OVERRIDE_MAX, _OVERRIDE_HELP, allow_none=True)


class RoleAssignment(Schema):
    user = String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the Slack user id who takes the role; null: nobody holds it now",
            "example": "U0123ABCD",
        },
    )
    handoff = _text(
        roles.HANDOFF_MAX,
        "for the lead handed from one person to another: a one-line summary for the new lead, "
        "posted in the incident's channel and thread",
        allow_none=True,
    )


class UpdateCreate(Schema):
    summary = _text(progress.SUMMARY_MAX, "what is known now", required=True)
    impact = _text(progress.IMPACT_MAX, "what customers see", allow_none=True)
    status = String(
        allow_none=True,
        metadata={
            "description": f"a new status ({_STATUS_HELP}); null or the current one moves nothing"
        },
    )
    next_update_in = Integer(
        allow_none=True,
        validate=Range(min=1, max=2**31 - 1),
        metadata={
            "description": "seconds until the next update is promised: one of UPDATE_INTERVALS "
            "(by default 900, 1800, 3600, 14400); null or left out promises none and the "
            "severity's reminders come back",
            "example": 1800,
        },
    )
    resolution = _text(
        incidents.RESOLUTION_MAX, "needed when the update resolves the incident", allow_none=True
    )
    cause = _text(incidents.CAUSE_MAX, allow_none=True)
    expected_status = String(
        allow_none=True,
        metadata={
            "description": "the status the sender saw: if the incident moved since, nothing "
            "changes (409)"
        },
    )
    override = _text(followups.OVERRIDE_MAX, _OVERRIDE_HELP, allow_none=True)


class NoteCreate(Schema):
    text = _text(incidents.NOTE_MAX, required=True)


class ScreenshotUpload(Schema):
    file = File(
        required=True,
        metadata={"description": "a PNG, JPEG, GIF or WebP image; MAX_SCREENSHOT_BYTES at most"},
    )
    caption = _text(screenshots.CAPTION_MAX)


STATS_DEFAULT_SPAN = timedelta(days=30)
# The averages are computed over every incident in the window on each request; a year is what a
# report asks for, and longer windows are asked for a year at a time.
STATS_SPAN_MAX = timedelta(days=366)


class StatsQuery(Schema):
    since = Moment(metadata={"description": "start (inclusive); 30 days before `until` if unset"})
    until = Moment(metadata={"description": "end (exclusive); now if unset"})

    @post_load
    def _window(self, data: dict[str, Any], **kwargs: Any) -> dict[str, datetime]:
        until = data.get("until") or datetime.now(UTC)
        try:
            since = data.get("since") or until - STATS_DEFAULT_SPAN
        except OverflowError:
            raise ValidationError("Set `since` too: `until` is too early.", "since") from None
        if until - since > STATS_SPAN_MAX:
            raise ValidationError(
                f"The window is at most {STATS_SPAN_MAX.days} days: ask for a year at a time.",
                "until",
            )
        return {"since": since, "until": until}


class IntakeAlert(Schema):
    title = _text(incidents.TITLE_MAX, shortest=incidents.TITLE_MIN, required=True)
    severity = String(required=True, metadata={"description": _SEVERITY_HELP})
    service = _text(incidents.SERVICE_MAX, required=True, allow_none=True)
    fingerprint = _text(
        incidents.FINGERPRINT_MAX,
        "the tool's key for the problem: while its incident is active, the same key adds a "
        "note to it instead of declaring another",
        required=True,
    )
    description = _text(incidents.DESCRIPTION_MAX, allow_none=True)


# --- Responses ---------------------------------------------------------------------------------
# APIFlask names a response's component after its class, but one a nested field reaches first is
# named by apispec: a class used both ways would be documented twice (Note and Note1). So each
# nested use has a subclass of its own, under its own name.


def _label() -> String:
    return String(
        allow_none=True,
        metadata={"description": "how a machine is named (`API token <name>`); null for a person"},
    )


class IncidentDetail(Schema):
    id = Integer()
    ref = String(metadata={"description": "INC-<id>"})
    title = String()
    description = String(allow_none=True)
    severity = String(validate=OneOf([s.value for s in Severity]))
    status = String(validate=OneOf([s.value for s in Status]))
    service = String(allow_none=True)
    category = String(allow_none=True)
    reporter = String(metadata={"description": "a Slack user id, or `token:<name>`"})
    reporter_label = _label()
    owner = String(allow_none=True, metadata={"description": "the lead (also `roles.lead`)"})
    assignee = String(allow_none=True)
    roles = Dict(
        keys=String(),
        values=String(allow_none=True),
        metadata={
            "description": "who holds each role, the lead first, then INCIDENT_ROLES in order: "
            "a Slack user id, or null when nobody does",
            "example": {"lead": "U0123ABCD", "comms": None, "scribe": None},
        },
    )
    next_update_at = DateTime(
        allow_none=True, metadata={"description": "when the next structured update is promised"}
    )
    update_overdue = Boolean(metadata={"description": "true when the promised next update is late"})
    latest_update = Nested(
        "LatestUpdate", allow_none=True, metadata={"description": "null before the first update"}
    )
    cause = String(allow_none=True)
    resolution = String(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()
    acknowledged_at = DateTime(allow_none=True)
    mitigated_at = DateTime(allow_none=True)
    resolved_at = DateTime(allow_none=True)
    closed_at = DateTime(allow_none=True)
    card_channel_id = String(allow_none=True, metadata={"description": "where its card is"})
    own_channel_id = String(allow_none=True, metadata={"description": "its own Slack channel"})
    intake_fingerprint = String(allow_none=True)
    allowed_next_statuses = List(
        String(validate=OneOf([s.value for s in Status])),
        metadata={"description": "where the asker may move it next"},
    )
    url = String(metadata={"description": "the incident's page"})
    # The review (its post-mortem's fields).
    impact_started_at = DateTime(
        allow_none=True, metadata={"description": "set by the review; null: from declaring"}
    )
    impact_ended_at = DateTime(
        allow_none=True, metadata={"description": "set by the review; null: to resolving"}
    )
    customer_impact = String(allow_none=True)
    contributing_factors = String(allow_none=True)
    went_well = String(allow_none=True)
    went_badly = String(allow_none=True)
    review_status = String(validate=OneOf(_REVIEW_STATUSES))
    reviewer = String(allow_none=True, metadata={"description": "a Slack user id"})


class LatestUpdate(Schema):
    id = Integer()
    summary = String()
    impact = String(allow_none=True)
    status = String(
        allow_none=True, metadata={"description": "the status it moved to; null if none"}
    )
    at = DateTime()
    by = String(metadata={"description": "a Slack user id, or `token:<name>`"})


class Update(Schema):
    id = Integer()
    incident_id = Integer()
    summary = String()
    impact = String(allow_none=True)
    status_from = String(allow_none=True, metadata={"description": "set when it moved the status"})
    status_to = String(allow_none=True)
    next_update_in = Integer(allow_none=True, metadata={"description": "seconds; null: none"})
    next_update_at = DateTime(allow_none=True)
    cause = String(allow_none=True)
    resolution = String(allow_none=True)
    actor = String(metadata={"description": "who posted it: a Slack user id or `token:<name>`"})
    actor_label = _label()
    occurred_at = DateTime()


class ListedUpdate(Update):
    pass


class UpdateList(Schema):
    items = List(Nested(ListedUpdate), metadata={"description": "oldest first"})


class Note(Schema):
    id = Integer()
    incident_id = Integer()
    text = String()
    actor = String(metadata={"description": "who wrote it: a Slack user id or `token:<name>`"})
    actor_label = _label()
    occurred_at = DateTime()
    recorded_at = DateTime()
    source_url = String(allow_none=True, metadata={"description": "the message it came from"})


class ListedNote(Note):
    pass


class NoteList(Schema):
    items = List(Nested(ListedNote), metadata={"description": "oldest first"})


class TimelineEvent(Schema):
    id = Integer()
    kind = String(validate=OneOf([k.value for k in EventKind]))
    actor = String()
    actor_label = _label()
    occurred_at = DateTime()
    recorded_at = DateTime()
    field = String(allow_none=True)
    from_value = String(allow_none=True)
    to_value = String(allow_none=True)
    text = String(allow_none=True)
    details = Dict(keys=String())
    deleted_at = DateTime(allow_none=True)
    deleted_by = String(allow_none=True)


class Timeline(Schema):
    items = List(Nested(TimelineEvent), metadata={"description": "oldest first"})


class Screenshot(Schema):
    id = Integer()
    incident_id = Integer()
    filename = String()
    mime_type = String()
    size_bytes = Integer()
    width = Integer()
    height = Integer()
    sha256 = String()
    caption = String(allow_none=True)
    uploaded_by = String()
    uploaded_by_label = _label()
    source_permalink = String(allow_none=True)
    created_at = DateTime()
    url = String(metadata={"description": "where to download the image"})


class ListedScreenshot(Screenshot):
    pass


class ScreenshotList(Schema):
    items = List(Nested(ListedScreenshot), metadata={"description": "oldest first"})


class Timings(Schema):
    count = Integer()
    mtta_seconds = Float(allow_none=True, metadata={"description": "mean time to acknowledge"})
    mttm_seconds = Float(allow_none=True, metadata={"description": "mean time to mitigate"})
    mttr_seconds = Float(allow_none=True, metadata={"description": "mean time to resolve"})


class Stats(Schema):
    since = DateTime()
    until = DateTime()
    total = Integer()
    by_status = Dict(keys=String(), values=Integer())
    by_severity = Dict(keys=String(), values=Integer())
    timings = Dict(
        keys=String(),
        values=Nested(Timings),
        metadata={"description": "per severity, over the incidents that reached each milestone"},
    )


class IntakeIncident(IncidentDetail):
    pass


class IntakeNote(Note):
    pass


class IntakeOutcome(Schema):
    created = Boolean(metadata={"description": "true: declared; false: noted on its incident"})
    incident = Nested(IntakeIncident)
    note = Nested(IntakeNote, allow_none=True, metadata={"description": "set when noted"})
