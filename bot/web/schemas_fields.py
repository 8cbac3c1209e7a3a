"""The field types and helpers the API's schemas share (schemas.py for incidents,
schemas_followups.py for follow-ups and the review): lists in a query string, moments, texts
with the domain's limits, and people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apiflask.fields import String
from marshmallow import ValidationError


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


class Moment(String):
    """An ISO date or date-time; a date is that day's start, a time without a zone is UTC."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValidationError(
                "Use an ISO date (2024-05-01) or date-time (2024-05-01T12:00:00Z)."
            ) from None
        try:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
            raise ValidationError("That moment is outside the years 1 to 9999 in UTC.") from None


def text(limit: int, description: str | None = None, *, shortest: int = 0, **kwargs: Any) -> String:
    """A text field documented with the domain's limits (the domain judges: it trims first)."""
    metadata: dict[str, Any] = {"maxLength": limit}
    if shortest:
        metadata["minLength"] = shortest
    if description:
        metadata["description"] = description
    return String(metadata=metadata, **kwargs)


def person(description: str) -> String:
    return String(allow_none=True, metadata={"description": description, "example": "U0123ABCD"})
