"""Several fields of an incident changed at once (the REST API's PATCH), through the same
changes a person makes one at a time: each keeps its own rules, events and Slack updates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Incident

from .changes import EDITABLE_FIELDS, change_severity, edit
from .recording import lock_incident
from .roles import assign
from .vocabulary import DEFAULT_CATEGORIES, Actor, InvalidInput, parse_severity

PEOPLE = ("owner", "assignee")
UPDATABLE_FIELDS = (*EDITABLE_FIELDS, "severity", *PEOPLE)


def update(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    changes: Mapping[str, Any],
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    now: datetime | None = None,
) -> Incident:
    """Set the given fields in one transaction. A field given its current value is left alone,
    so repeating an update is harmless rather than "nothing changed"."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown or not changes:
        raise InvalidInput(
            f"Give at least one of {', '.join(UPDATABLE_FIELDS)}"
            + (f"; these can't be changed: {', '.join(sorted(unknown))}." if unknown else ".")
        )
    incident = lock_incident(session, incident_id)
    texts = {name: changes[name] for name in EDITABLE_FIELDS if name in changes}
    if texts:
        edit(session, incident.id, actor, texts, categories=categories, now=now)
    severity = changes.get("severity")
    if severity is not None and parse_severity(severity) != incident.severity:
        change_severity(session, incident.id, severity, actor, now=now)
    people = {
        name: changes[name]
        for name in PEOPLE
        if name in changes and changes[name] != getattr(incident, name)
    }
    if people:
        assign(session, incident.id, actor, now=now, **people)
    return incident
