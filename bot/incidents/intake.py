"""Alerts from monitoring tools: one incident per problem, however often the alert fires.

An alert carries a fingerprint, the tool's key for the problem. While an incident declared from
that fingerprint is active, the alert firing again becomes a note on it; once it is resolved, the
next alert declares a new incident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import INTAKE_FINGERPRINT_LENGTH, Incident, IncidentEvent, Severity

from .changes import IncidentDraft
from .changes import declare as declare_incident
from .notes import add_note
from .recording import audit
from .validation import _clean, _clean_title
from .vocabulary import (
    DESCRIPTION_MAX,
    NOTE_MAX,
    SERVICE_MAX,
    Actor,
    InvalidInput,
    format_incident_id,
    parse_severity,
)
from .workflow import ACTIVE_STATUSES

log = logging.getLogger("bot.incidents")

FINGERPRINT_MAX = INTAKE_FINGERPRINT_LENGTH

# Two-key advisory locks, as the declare limit's: this class, then the fingerprint's hash.
_INTAKE_LOCK_CLASS = 0x1A7E

Declare = Callable[[Session, IncidentDraft, Actor], Incident]


@dataclass(frozen=True)
class IntakeAlert:
    title: str
    severity: str | Severity
    fingerprint: str
    service: str | None = None
    description: str | None = None


@dataclass
class IntakeResult:
    incident: Incident
    # False when the alert was noted on the incident its fingerprint already has open.
    created: bool
    note: IncidentEvent | None = None


def _check_fingerprint(fingerprint: str) -> str:
    # Compared exactly (a tool's key is not typed by a person), but never blank or a NUL.
    if not fingerprint.strip():
        raise InvalidInput(
            "An alert needs a fingerprint: the tool's key for the problem.", "fingerprint"
        )
    if "\x00" in fingerprint:
        raise InvalidInput(
            "The fingerprint contains a NUL character, which isn't allowed.", "fingerprint"
        )
    if len(fingerprint) > FINGERPRINT_MAX:
        raise InvalidInput(
            f"The fingerprint is too long: {len(fingerprint):,} characters, the limit is "
            f"{FINGERPRINT_MAX}.",
            "fingerprint",
        )
    return fingerprint


def _repeat_note(title: str, description: str | None) -> str:
    text = f"Alert fired again: {title}"
    if description:
        text += f"\n\n{description}"
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


def intake(
    session: Session, alert: IntakeAlert, actor: Actor, *, declare: Declare = declare_incident
) -> IntakeResult:
    """Declare an incident for the alert, or note it on the active one of its fingerprint.

    `declare` is how the calling surface declares (where the card goes, the declare limit).
    The whole alert is checked first, so it is judged the same whichever way it goes.
    """
    fingerprint = _check_fingerprint(alert.fingerprint)
    title = _clean_title(alert.title)
    severity = parse_severity(alert.severity)
    service = _clean(alert.service, "service", SERVICE_MAX, label="Service")
    description = _clean(alert.description, "description", DESCRIPTION_MAX, label="Description")
    # Two alerts at once must not both find nothing and declare twice; the second waits here
    # until the first commits, then finds its incident.
    session.execute(
        select(func.pg_advisory_xact_lock(_INTAKE_LOCK_CLASS, func.hashtext(fingerprint)))
    )
    open_incident = session.scalar(
        select(Incident)
        .where(Incident.intake_fingerprint == fingerprint, Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(1)
    )
    if open_incident is not None:
        note = add_note(session, open_incident.id, actor, _repeat_note(title, description))
        ref = format_incident_id(open_incident.id)
        audit(session, log, "alert %r fired again: noted on %s", fingerprint, ref)
        return IntakeResult(incident=open_incident, created=False, note=note)
    draft = IncidentDraft(title=title, severity=severity, description=description, service=service)
    incident = declare(session, draft, actor)
    incident.intake_fingerprint = fingerprint
    session.flush()
    audit(session, log, "alert %r declared %s", fingerprint, format_incident_id(incident.id))
    return IntakeResult(incident=incident, created=True)
