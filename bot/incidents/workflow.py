"""The status workflow: the one table of allowed transitions every surface asks, and the
milestones a move stamps."""

from __future__ import annotations

from datetime import datetime

# Defined beside Status because the active lists' partial indexes are built from it.
from db.models import ACTIVE_STATUSES as ACTIVE_STATUSES
from db.models import (
    Incident,
    Status,
)

from .vocabulary import (
    Actor,
    Conflict,
    InvalidInput,
    PermissionDenied,
    TransitionNotAllowed,
    format_incident_id,
)

# --- The status workflow: the one table every surface asks -------------------------------------

WORKFLOW_ORDER = (
    Status.OPEN,
    Status.INVESTIGATING,
    Status.MITIGATED,
    Status.RESOLVED,
    Status.CLOSED,
)

# Forward moves may skip steps; active states may fall back to investigating (a regression);
# a resolved incident may be reopened. Closed is final, except for admins (ADMIN_TRANSITIONS).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset(
        {Status.INVESTIGATING, Status.MITIGATED, Status.RESOLVED, Status.CLOSED}
    ),
    Status.INVESTIGATING: frozenset({Status.MITIGATED, Status.RESOLVED, Status.CLOSED}),
    Status.MITIGATED: frozenset({Status.INVESTIGATING, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.INVESTIGATING, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
ADMIN_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CLOSED: frozenset({Status.INVESTIGATING}),
}

# Entering a status stamps its milestone, and those of any steps it skipped, once.
_MILESTONES: dict[Status, str] = {
    Status.INVESTIGATING: "acknowledged_at",
    Status.MITIGATED: "mitigated_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
}


def allowed_next_statuses(current: Status, *, is_admin: bool = False) -> list[Status]:
    allowed = set(TRANSITIONS[current])
    if is_admin:
        allowed |= ADMIN_TRANSITIONS.get(current, frozenset())
    return [s for s in WORKFLOW_ORDER if s in allowed]


def _check_transition(incident: Incident, new: Status, actor: Actor) -> None:
    ref = format_incident_id(incident.id)
    current = incident.status
    if new == current:
        raise TransitionNotAllowed(f"{ref} is already {current.value}.")
    if new in allowed_next_statuses(current, is_admin=actor.is_admin):
        return
    if new in ADMIN_TRANSITIONS.get(current, frozenset()):
        raise PermissionDenied(f"{ref} is {current.value}; only an incident admin can reopen it.")
    allowed = allowed_next_statuses(current, is_admin=actor.is_admin)
    if not allowed:
        raise TransitionNotAllowed(f"{ref} is {current.value}, which is final.")
    raise TransitionNotAllowed(
        f"{ref} can't go from {current.value} to {new.value}. "
        f"Allowed next: {', '.join(s.value for s in allowed)}."
    )


def resolves(current: Status, new: Status) -> bool:
    """Whether the move resolves the incident: to resolved, or to closed past resolved. Such a
    move needs a resolution (what fixed it), on every surface."""
    return new in (Status.RESOLVED, Status.CLOSED) and current in ACTIVE_STATUSES


def _require_resolution(incident: Incident, new: Status, resolution: str | None) -> None:
    if resolves(incident.status, new) and not (resolution or incident.resolution):
        verb = "resolve" if new == Status.RESOLVED else "close"
        raise InvalidInput(
            f"Say what fixed {format_incident_id(incident.id)}: a resolution is needed to "
            f"{verb} it.",
            "resolution",
        )


def _require_kept_resolution(incident: Incident, values: dict[str, str | None]) -> None:
    """A resolved or closed incident keeps a resolution once it has one: it may be reworded, not
    emptied, or the rule above would hold only at the moment of resolving."""
    emptied = "resolution" in values and not values["resolution"] and incident.resolution
    if emptied and incident.status in (Status.RESOLVED, Status.CLOSED):
        raise InvalidInput(
            f"{format_incident_id(incident.id)} is {incident.status.value}: its resolution can "
            "be reworded but not removed.",
            "resolution",
        )


def _stamp_milestones(incident: Incident, new: Status, now: datetime) -> None:
    reached = WORKFLOW_ORDER.index(new)
    if new == Status.INVESTIGATING and incident.status in (Status.RESOLVED, Status.CLOSED):
        # Reopened: it is no longer resolved, so MTTR must come from the next resolution.
        incident.resolved_at = None
        incident.closed_at = None
    for status, column in _MILESTONES.items():
        if WORKFLOW_ORDER.index(status) <= reached and getattr(incident, column) is None:
            setattr(incident, column, now)


def check_as_seen(incident: Incident, expected_status: Status | None) -> None:
    """Refuse a change made against a status the incident has since left (a stale button)."""
    if expected_status is not None and incident.status != expected_status:
        raise Conflict(
            f"{format_incident_id(incident.id)} changed while you were looking: it is now "
            f"{incident.status.value}, not {expected_status.value}. Nothing was changed."
        )
