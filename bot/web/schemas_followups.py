"""The REST API's shapes for follow-ups (the action items after an incident); the review's
fields are the incident's own (schemas.IncidentDetail and IncidentPatch)."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from bot import incidents
from bot.incidents import followups
from bot.web.schemas_fields import person, text
from db.models import FollowUpStatus

STATUSES = [s.value for s in FollowUpStatus]
# "in 2w", "tomorrow", "2026-12-20": a due date as people say it is short.
DUE_MAX = 32
SOURCE_MAX = 2000

_PRIORITY_HELP = (
    "one of FOLLOWUP_PRIORITIES (by default high, medium, low); left out: the middle one"
)
_DUE_ON_HELP = "the due date (YYYY-MM-DD); null: none"
_DUE_HELP = (
    "the due date as people say it, instead of `due_on`: `in 2w`, `3d`, `tomorrow` or "
    "`2026-12-20` (in TIMEZONE)"
)


def _one_due(data: dict[str, Any]) -> None:
    if "due" in data and "due_on" in data:
        raise ValidationError("Send `due_on` or `due`, not both.", "due")


class FollowUpCreate(Schema):
    title = text(
        followups.TITLE_MAX, "what is to be done", shortest=incidents.TITLE_MIN, required=True
    )
    owner = person("the Slack user id of who will do it (told by DM); null: nobody yet")
    due_on = Date(allow_none=True, metadata={"description": _DUE_ON_HELP})
    due = text(DUE_MAX, _DUE_HELP, allow_none=True)
    priority = String(allow_none=True, metadata={"description": _PRIORITY_HELP})
    source_permalink = text(SOURCE_MAX, "the Slack message it came from", allow_none=True)

    @validates_schema
    def _due(self, data: dict[str, Any], **kwargs: Any) -> None:
        _one_due(data)


class FollowUpPatch(Schema):
    title = text(followups.TITLE_MAX, shortest=incidents.TITLE_MIN)
    owner = person("who will do it (a Slack user id, told by DM); null: nobody")
    due_on = Date(allow_none=True, metadata={"description": _DUE_ON_HELP})
    due = text(DUE_MAX, _DUE_HELP, allow_none=True)
    priority = String(metadata={"description": "one of FOLLOWUP_PRIORITIES"})
    status = String(
        validate=OneOf(STATUSES),
        metadata={"description": "`done`, `wont_do`, or `open` again; who and when are kept"},
    )

    @validates_schema
    def _checks(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(f"Send at least one of: {', '.join(self.fields)}.")
        _one_due(data)


class FollowUpListQuery(Schema):
    owner = String(
        validate=Length(max=64),
        metadata={"description": "a Slack user id, or `me` (who is asking)"},
    )
    status = String(validate=OneOf(STATUSES), metadata={"description": "left out: any"})
    overdue = Boolean(
        load_default=False, metadata={"description": "only open ones due before today"}
    )
    incident = String(validate=Length(max=32), metadata={"description": "`12` or `INC-12`"})
    page = Integer(load_default=1, validate=Range(min=1, max=incidents.PAGE_MAX))
    limit = Integer(load_default=20, validate=Range(min=1, max=incidents.PAGE_SIZE_MAX))


class FollowUp(Schema):
    id = Integer()
    ref = String(metadata={"description": "FU-<id>"})
    incident_id = Integer()
    incident_ref = String(metadata={"description": "INC-<id>"})
    title = String()
    owner = String(allow_none=True, metadata={"description": "a Slack user id; null: nobody"})
    due_on = Date(allow_none=True)
    priority = String()
    status = String(validate=OneOf(STATUSES))
    overdue = Boolean(metadata={"description": "open and due before today (in TIMEZONE)"})
    created_by = String(metadata={"description": "a Slack user id, or `token:<name>`"})
    created_at = DateTime()
    updated_at = DateTime()
    closed_by = String(allow_none=True, metadata={"description": "who marked it done or won't do"})
    closed_at = DateTime(allow_none=True)
    source_permalink = String(allow_none=True)
    tracker = String(allow_none=True, metadata={"description": "`github` or `jira` once exported"})
    ticket_key = String(
        allow_none=True, metadata={"description": "`owner/repo#123` (GitHub) or `OPS-12` (Jira)"}
    )
    ticket_url = String(allow_none=True)
    export_requested_at = DateTime(
        allow_none=True, metadata={"description": "set once an export to the tracker is queued"}
    )
    url = String(metadata={"description": "the follow-up on its incident's page"})


class ListedFollowUp(FollowUp):
    pass


class IncidentFollowUps(Schema):
    items = List(
        Nested(ListedFollowUp),
        metadata={"description": "open ones first, then by due date"},
    )


class FollowUpList(Schema):
    items = List(Nested(ListedFollowUp), metadata={"description": "overdue first, then by due"})
    total = Integer()
    page = Integer()
    limit = Integer()
    has_next = Boolean()
