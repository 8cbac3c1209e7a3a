"""The REST API's request and response shapes: they validate requests and write the OpenAPI
document, so the two can't disagree. Limits come from the domain's vocabulary."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError

from bot import incidents
from db.models import Severity, Status


class CommaSeparated(String):
    """`a,b,c` in a query string, as a list of its non-blank values."""

    def __init__(self, *, choices: list[str] | None = None, max_each: int = 200, **kwargs: Any):
        super().__init__(**kwargs)
        self.choices = choices
        self.max_each = max_each

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        text = super()._deserialize(value, attr, data, **kwargs)
        values = [v.strip() for v in text.split(",") if v.strip()]
        for v in values:
            if len(v) > self.max_each:
                raise ValidationError(f"Each value must be at most {self.max_each} characters.")
            if "\x00" in v:
                raise ValidationError("A NUL character is not allowed.")
        return values


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
    q = String(validate=Length(max=incidents.SEARCH_MAX), metadata={"description": "words"})
    sort = String(
        load_default="-created",
        metadata={"description": f"one of {', '.join(incidents.SORT_SQL)}; `-` for descending"},
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
        metadata={"description": f"false when more than {incidents.COUNT_CAP} match"}
    )
    page = Integer()
    limit = Integer()
    has_next = Boolean()
