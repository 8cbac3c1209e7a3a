"""The incident domain: workflow, validation, permissions and queries. Knows nothing of Slack.

Every function takes the caller's session and leaves the commit to the caller, so the change, its
timeline event and the outbox rows that will tell Slack land in one transaction. Changes to one
incident lock its row (`SELECT ... FOR UPDATE`): two people changing it at once are serialised, and
the second change is checked against what the first one left.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from bot.settings import DEFAULT_CATEGORIES
from bot.slack_ids import CHANNEL_ID, USER_ID
from db.models import (
    USER_REF_LENGTH,
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
    Status,
)

log = logging.getLogger(__name__)

TITLE_MIN = 3
TITLE_MAX = 255
DESCRIPTION_MAX = 10_000
SERVICE_MAX = 120
NOTE_MAX = 3_000
CAUSE_MAX = 10_000
RESOLUTION_MAX = 10_000
PAGE_SIZE_MAX = 100


# --- Errors ------------------------------------------------------------------------------------


class IncidentError(Exception):
    """A domain rule said no. `str(error)` is a sentence meant for the person who asked."""


class NotFound(IncidentError):
    pass


class InvalidInput(IncidentError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransitionNotAllowed(IncidentError):
    pass


class PermissionDenied(IncidentError):
    pass


class Conflict(IncidentError):
    """The change was made against a state of the incident that no longer holds."""


# --- Who is acting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    user_id: str
    is_admin: bool = False

    @classmethod
    def of(cls, user_id: str, admins: Iterable[str]) -> Actor:
        return cls(user_id=user_id, is_admin=user_id in set(admins))


# --- Vocabulary: severities, statuses, ids -----------------------------------------------------

SEVERITY_LABELS: dict[Severity, str] = {
    Severity.SEV1: "critical",
    Severity.SEV2: "high",
    Severity.SEV3: "medium",
    Severity.SEV4: "low",
}


def _severity_aliases() -> dict[str, Severity]:
    aliases: dict[str, Severity] = {}
    for number, severity in enumerate(Severity, start=1):
        for alias in (f"sev{number}", f"sev-{number}", f"sev {number}", f"sev_{number}"):
            aliases[alias] = severity
        aliases[str(number)] = severity
        aliases[f"p{number}"] = severity
        aliases[SEVERITY_LABELS[severity]] = severity
    aliases.update({"crit": Severity.SEV1, "med": Severity.SEV3, "moderate": Severity.SEV3})
    aliases.update({"minor": Severity.SEV4, "major": Severity.SEV2})
    return aliases


_SEVERITY_ALIASES = _severity_aliases()


def severity_choices() -> str:
    return ", ".join(f"{s.value} ({SEVERITY_LABELS[s]})" for s in Severity)


def parse_severity(value: str | Severity) -> Severity:
    if isinstance(value, Severity):
        return value
    severity = _SEVERITY_ALIASES.get(value.strip().lower())
    if severity is None:
        raise InvalidInput(
            f"Unknown severity {value.strip()!r}. Use one of: {severity_choices()}.", "severity"
        )
    return severity


# The seed trackers' and other tools' names for the same states.
_STATUS_ALIASES: dict[str, Status] = {
    **{s.value: s for s in Status},
    "new": Status.OPEN,
    "triage": Status.OPEN,
    "triggered": Status.OPEN,
    "ack": Status.INVESTIGATING,
    "acked": Status.INVESTIGATING,
    "acknowledge": Status.INVESTIGATING,
    "acknowledged": Status.INVESTIGATING,
    "in_progress": Status.INVESTIGATING,
    "inprogress": Status.INVESTIGATING,
    "investigate": Status.INVESTIGATING,
    "identified": Status.INVESTIGATING,
    "reopen": Status.INVESTIGATING,
    "reopened": Status.INVESTIGATING,
    "mitigate": Status.MITIGATED,
    "monitoring": Status.MITIGATED,
    "resolve": Status.RESOLVED,
    "fixed": Status.RESOLVED,
    "done": Status.RESOLVED,
    "close": Status.CLOSED,
    "archived": Status.CLOSED,
}


def parse_status(value: str | Status) -> Status:
    if isinstance(value, Status):
        return value
    key = re.sub(r"[\s-]+", "_", value.strip().lower())
    status = _STATUS_ALIASES.get(key)
    if status is None:
        choices = ", ".join(s.value for s in Status)
        raise InvalidInput(f"Unknown status {value.strip()!r}. Use one of: {choices}.", "status")
    return status


_INCIDENT_ID = re.compile(r"^\s*(?:inc[-_ ]?|#)?0*(\d{1,9})\s*$", re.IGNORECASE)


# incidents.id is a PostgreSQL integer.
INCIDENT_ID_MAX = 2**31 - 1


def parse_incident_id(value: object) -> int:
    """12, "12", "#12", "INC-12" or "inc 12"; anything else (None, a list, 0, -3) is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= INCIDENT_ID_MAX:
            raise InvalidInput(f"{value} is not an incident id. Use INC-12, #12 or 12.", "incident")
        return value
    if not isinstance(value, str):
        raise InvalidInput("That is not an incident id. Use INC-12, #12 or 12.", "incident")
    match = _INCIDENT_ID.match(value)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(
            f"{value.strip()!r} is not an incident id. Use INC-12, #12 or 12.", "incident"
        )
    return int(match.group(1))


def format_incident_id(incident_id: int) -> str:
    return f"INC-{incident_id}"


# --- The status workflow: the one table every surface asks -------------------------------------

WORKFLOW_ORDER = (
    Status.OPEN,
    Status.INVESTIGATING,
    Status.MITIGATED,
    Status.RESOLVED,
    Status.CLOSED,
)
ACTIVE_STATUSES = (Status.OPEN, Status.INVESTIGATING, Status.MITIGATED)

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


def _stamp_milestones(incident: Incident, new: Status, now: datetime) -> None:
    reached = WORKFLOW_ORDER.index(new)
    if new == Status.INVESTIGATING and incident.status in (Status.RESOLVED, Status.CLOSED):
        # Reopened: it is no longer resolved, so MTTR must come from the next resolution.
        incident.resolved_at = None
        incident.closed_at = None
    for status, column in _MILESTONES.items():
        if WORKFLOW_ORDER.index(status) <= reached and getattr(incident, column) is None:
            setattr(incident, column, now)


# --- Validation --------------------------------------------------------------------------------


def _clean(
    value: str | None, field: str, max_len: int, *, label: str, min_len: int = 0
) -> str | None:
    """Trim `value`; None when empty. Lengths are counted in characters, emoji included."""
    cleaned = "" if value is None else value.strip()
    if "\x00" in cleaned:
        raise InvalidInput(f"{label} contains a NUL character, which isn't allowed.", field)
    if len(cleaned) > max_len:
        raise InvalidInput(
            f"{label} is too long: {len(cleaned):,} characters, the limit is {max_len:,}.", field
        )
    if min_len and len(cleaned) < min_len:
        raise InvalidInput(f"{label} must be at least {min_len} characters.", field)
    return cleaned or None


def _clean_title(value: str | None) -> str:
    title = _clean(value, "title", TITLE_MAX, label="Title", min_len=TITLE_MIN)
    assert title is not None  # min_len guarantees it
    return title


def _clean_category(value: str | None, categories: Sequence[str]) -> str | None:
    category = _clean(value, "category", 64, label="Category")
    if category is None:
        return None
    category = category.lower()
    if category not in categories:
        raise InvalidInput(
            f"Unknown category {category!r}. Use one of: {', '.join(categories)}.", "category"
        )
    return category


def _clean_user(value: str | None, field: str) -> str | None:
    """A person's Slack user id (U… or W…), or None; a mention such as <!channel> is refused."""
    user = _clean(value, field, USER_REF_LENGTH, label=field.capitalize())
    if user is not None and not USER_ID.match(user):
        raise InvalidInput(
            f"{field.capitalize()} must be a person (a Slack user id such as U0123ABCD).", field
        )
    return user


def _clean_card_channel(value: str | None) -> str | None:
    """Where the card goes: a public or private channel's id, never a person or a DM."""
    if value is not None and not CHANNEL_ID.match(value):
        raise InvalidInput("Pick a channel for the incident's card.", "channel")
    return value


# Slack was launched in 2013; a message "from" before then, or from the future, is forged.
EARLIEST_MESSAGE = datetime(2013, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def _check_occurred_at(occurred_at: datetime | None, now: datetime) -> None:
    if occurred_at is not None and not EARLIEST_MESSAGE <= occurred_at <= now + CLOCK_SKEW:
        raise InvalidInput(
            f"The message's time ({occurred_at:%Y-%m-%d %H:%M} UTC) is not a real message time.",
            "note",
        )


def _reporter(actor: Actor) -> str:
    reporter = _clean_user(actor.user_id, "reporter")
    if reporter is None:
        raise InvalidInput("An incident needs a reporter.", "reporter")
    return reporter


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# --- Recording changes: timeline event + outbox, in the caller's transaction -------------------


def record_event(
    session: Session,
    incident: Incident,
    kind: EventKind,
    actor: Actor,
    now: datetime,
    **values: Any,
) -> IncidentEvent:
    event = IncidentEvent(
        incident=incident,
        kind=kind,
        actor=actor.user_id,
        occurred_at=values.pop("occurred_at", None) or now,
        recorded_at=now,
        **values,
    )
    session.add(event)
    return event


def touch(incident: Incident, now: datetime) -> None:
    """Record that the incident was updated: it resets the wait for the next reminder."""
    incident.updated_at = now
    incident.next_reminder_at = None


def notify(
    session: Session,
    incident: Incident,
    events: Sequence[IncidentEvent],
    *,
    now: datetime,
    card: bool = True,
) -> None:
    """Queue the card edit and one threaded reply for `events`; nothing when there is no card.

    The rows are due at `now`, the change's own time, so a drain right after it sends them.
    """
    session.flush()  # event ids, for the outbox and for callers that show them
    if not events or incident.slack_channel_id is None:
        return
    if card:
        session.add(
            Delivery(
                incident_id=incident.id, action=DeliveryAction.UPDATE_CARD, next_attempt_at=now
            )
        )
    session.add(
        Delivery(
            incident_id=incident.id,
            event_id=events[0].id,
            action=DeliveryAction.POST_THREAD,
            payload={"event_ids": [e.id for e in events]},
            next_attempt_at=now,
        )
    )


def lock_incident(session: Session, incident_id: object) -> Incident:
    number = parse_incident_id(incident_id)
    incident = session.execute(
        select(Incident)
        .where(Incident.id == number)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if incident is None:
        raise NotFound(f"There is no incident {format_incident_id(number)}.")
    return incident


def _require_editable(incident: Incident, actor: Actor) -> None:
    if incident.status == Status.CLOSED and not actor.is_admin:
        raise PermissionDenied(
            f"{format_incident_id(incident.id)} is closed; only an incident admin can change it."
        )


# --- Commands ----------------------------------------------------------------------------------


@dataclass
class IncidentDraft:
    title: str
    severity: str | Severity
    description: str | None = None
    service: str | None = None
    category: str | None = None
    owner: str | None = None
    assignee: str | None = None
    # Where the card lives; opaque to the domain, which only knows whether there is one.
    slack_team_id: str | None = None
    slack_channel_id: str | None = None


def declare(
    session: Session,
    draft: IncidentDraft,
    actor: Actor,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    now: datetime | None = None,
) -> Incident:
    now = _now(now)
    incident = Incident(
        title=_clean_title(draft.title),
        severity=parse_severity(draft.severity),
        description=_clean(draft.description, "description", DESCRIPTION_MAX, label="Description"),
        service=_clean(draft.service, "service", SERVICE_MAX, label="Service"),
        category=_clean_category(draft.category, categories),
        status=Status.OPEN,
        reporter=_reporter(actor),
        owner=_clean_user(draft.owner, "owner"),
        assignee=_clean_user(draft.assignee, "assignee"),
        created_at=now,
        updated_at=now,
        slack_team_id=draft.slack_team_id,
        slack_channel_id=_clean_card_channel(draft.slack_channel_id),
    )
    session.add(incident)
    record_event(session, incident, EventKind.CREATED, actor, now, to_value=incident.severity.value)
    session.flush()
    if incident.slack_channel_id is not None:
        session.add(
            Delivery(incident_id=incident.id, action=DeliveryAction.POST_CARD, next_attempt_at=now)
        )
    log.info(
        "%s declared (%s) by %s, card channel %s",
        format_incident_id(incident.id),
        incident.severity.value,
        actor.user_id,
        incident.slack_channel_id or "none",
    )
    return incident


def change_status(
    session: Session,
    incident_id: int | str,
    status: str | Status,
    actor: Actor,
    *,
    note: str | None = None,
    cause: str | None = None,
    resolution: str | None = None,
    expected_status: Status | None = None,
    now: datetime | None = None,
) -> Incident:
    """Move an incident along the workflow.

    `expected_status` is the status the person saw (a button on a card); if the incident moved
    since, the change no longer applies and is refused rather than applied to a different state.
    """
    now = _now(now)
    new = parse_status(status)
    note = _clean(note, "note", NOTE_MAX, label="Note")
    cause = _clean(cause, "cause", CAUSE_MAX, label="Cause")
    resolution = _clean(resolution, "resolution", RESOLUTION_MAX, label="Resolution")
    incident = lock_incident(session, incident_id)
    check_as_seen(incident, expected_status)
    _check_transition(incident, new, actor)
    old = incident.status
    _stamp_milestones(incident, new, now)
    incident.status = new
    details: dict[str, str] = {}
    if cause is not None:
        incident.cause = details["cause"] = cause
    if resolution is not None:
        incident.resolution = details["resolution"] = resolution
    touch(incident, now)
    event = record_event(
        session,
        incident,
        EventKind.STATUS_CHANGED,
        actor,
        now,
        field="status",
        from_value=old.value,
        to_value=new.value,
        text=note,
        details=details,
    )
    notify(session, incident, [event], now=now)
    log.info(
        "%s status %s -> %s by %s",
        format_incident_id(incident.id),
        old.value,
        new.value,
        actor.user_id,
    )
    return incident


def check_as_seen(incident: Incident, expected_status: Status | None) -> None:
    """Refuse a change made against a status the incident has since left (a stale button)."""
    if expected_status is not None and incident.status != expected_status:
        raise Conflict(
            f"{format_incident_id(incident.id)} changed while you were looking: it is now "
            f"{incident.status.value}, not {expected_status.value}. Nothing was changed."
        )


def change_severity(
    session: Session,
    incident_id: int | str,
    severity: str | Severity,
    actor: Actor,
    *,
    note: str | None = None,
    now: datetime | None = None,
) -> Incident:
    now = _now(now)
    new = parse_severity(severity)
    note = _clean(note, "note", NOTE_MAX, label="Note")
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    old = incident.severity
    if new == old:
        raise InvalidInput(f"{format_incident_id(incident.id)} is already {old.value}.", "severity")
    incident.severity = new
    touch(incident, now)
    event = record_event(
        session,
        incident,
        EventKind.SEVERITY_CHANGED,
        actor,
        now,
        field="severity",
        from_value=old.value,
        to_value=new.value,
        text=note,
    )
    notify(session, incident, [event], now=now)
    log.info("%s severity %s -> %s by %s", format_incident_id(incident.id), old, new, actor.user_id)
    return incident


EDITABLE_FIELDS = ("title", "description", "service", "category", "cause", "resolution")


def edit(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    changes: dict[str, str | None],
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    now: datetime | None = None,
) -> Incident:
    """Set the given fields (a None or blank value clears an optional field)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"These fields can't be edited: {', '.join(sorted(unknown))}.")
    cleaners = {
        "title": _clean_title,
        "description": lambda v: _clean(v, "description", DESCRIPTION_MAX, label="Description"),
        "service": lambda v: _clean(v, "service", SERVICE_MAX, label="Service"),
        "category": lambda v: _clean_category(v, categories),
        "cause": lambda v: _clean(v, "cause", CAUSE_MAX, label="Cause"),
        "resolution": lambda v: _clean(v, "resolution", RESOLUTION_MAX, label="Resolution"),
    }
    cleaned = {name: cleaners[name](value) for name, value in changes.items()}
    now = _now(now)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    events = []
    for name, value in cleaned.items():
        old = getattr(incident, name)
        if old == value:
            continue
        setattr(incident, name, value)
        events.append(
            record_event(
                session,
                incident,
                EventKind.FIELD_CHANGED,
                actor,
                now,
                field=name,
                from_value=old,
                to_value=value,
            )
        )
    if events:
        touch(incident, now)
        notify(session, incident, events, now=now)
        log.info(
            "%s edited (%s) by %s",
            format_incident_id(incident.id),
            ", ".join(e.field or "" for e in events),
            actor.user_id,
        )
    return incident


_UNCHANGED: Any = object()


def assign(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    *,
    owner: str | None = _UNCHANGED,
    assignee: str | None = _UNCHANGED,
    now: datetime | None = None,
) -> Incident:
    """Set the owner (incident commander) and/or the assignee; None unassigns."""
    wanted = {
        name: _clean_user(value, name)
        for name, value in (("owner", owner), ("assignee", assignee))
        if value is not _UNCHANGED
    }
    if not wanted:
        raise InvalidInput("Say who should be the owner or the assignee.")
    now = _now(now)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    events = []
    for name, value in wanted.items():
        old = getattr(incident, name)
        if old == value:
            continue
        setattr(incident, name, value)
        events.append(
            record_event(
                session,
                incident,
                EventKind.ASSIGNED,
                actor,
                now,
                field=name,
                from_value=old,
                to_value=value,
            )
        )
    if not events:
        who = " and ".join(
            f"{name} is already {value or 'nobody'}" for name, value in wanted.items()
        )
        raise InvalidInput(f"Nothing changed: the {who}.")
    touch(incident, now)
    notify(session, incident, events, now=now)
    log.info(
        "%s assigned (%s) by %s",
        format_incident_id(incident.id),
        ", ".join(f"{e.field}={e.to_value}" for e in events),
        actor.user_id,
    )
    return incident


def add_note(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    text: str,
    *,
    occurred_at: datetime | None = None,
    source_url: str | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Add a note to the timeline, stamped at `occurred_at` (e.g. a Slack message's time)."""
    body = _clean(text, "note", NOTE_MAX, label="Note")
    if body is None:
        raise InvalidInput("A note needs some text.", "note")
    now = _now(now)
    _check_occurred_at(occurred_at, now)
    incident = lock_incident(session, incident_id)
    details = {"source_url": source_url} if source_url else {}
    event = record_event(
        session,
        incident,
        EventKind.NOTE,
        actor,
        now,
        text=body,
        occurred_at=occurred_at,
        details=details,
    )
    touch(incident, now)
    notify(session, incident, [event], now=now)
    log.info("%s note added by %s", format_incident_id(incident.id), actor.user_id)
    return event


def link_note_source(session: Session, note_id: int, source_url: str) -> None:
    """Record where a note came from (a message's permalink, known only after the note)."""
    note = session.get(IncidentEvent, note_id)
    if note is None or note.kind != EventKind.NOTE:
        raise NotFound(f"There is no note {note_id}.")
    note.details = {**note.details, "source_url": source_url}


def delete_note(
    session: Session, note_id: int | None, actor: Actor, *, now: datetime | None = None
) -> IncidentEvent:
    """Remove a note's text; the timeline keeps that it existed and who deleted it."""
    if note_id is None:
        raise NotFound("That is not a note of any incident.")
    now = _now(now)
    note = session.execute(
        select(IncidentEvent)
        .where(IncidentEvent.id == note_id, IncidentEvent.kind == EventKind.NOTE)
        .with_for_update()
    ).scalar_one_or_none()
    if note is None:
        raise NotFound(f"There is no note {note_id}.")
    if note.deleted_at is not None:
        raise NotFound(f"Note {note_id} was already deleted.")
    if note.actor != actor.user_id and not actor.is_admin:
        raise PermissionDenied("Only the note's author or an incident admin can delete it.")
    incident = lock_incident(session, note.incident_id)
    note.deleted_at = now
    note.deleted_by = actor.user_id
    note.text = None
    event = record_event(
        session, incident, EventKind.NOTE_DELETED, actor, now, details={"note_id": note.id}
    )
    touch(incident, now)
    notify(session, incident, [event], now=now)
    log.info("%s note %d deleted by %s", format_incident_id(incident.id), note_id, actor.user_id)
    return event


def check_can_delete(session: Session, incident_id: int | str, actor: Actor) -> Incident:
    """The incident, if `actor` may delete it (before asking them to confirm)."""
    incident = get_incident(session, incident_id)
    if not actor.is_admin:
        raise PermissionDenied(
            f"Only an incident admin can delete {format_incident_id(incident.id)}."
        )
    return incident


SYSTEM = Actor("system")


def remind(
    session: Session, incident: Incident, *, now: datetime, next_at: datetime | None
) -> None:
    """Post a "no update for a while" reminder (the scheduler calls this on a locked row).

    A reminder is not an update: it leaves `updated_at` alone and sets when the next one is due.
    """
    silent = now - incident.updated_at
    event = record_event(
        session,
        incident,
        EventKind.REMINDER,
        SYSTEM,
        now,
        details={
            "who": incident.owner or incident.reporter,
            "silent_minutes": int(silent.total_seconds() // 60),
        },
    )
    incident.next_reminder_at = next_at
    notify(session, incident, [event], now=now, card=False)
    log.info(
        "%s reminder to %s after %s without an update",
        format_incident_id(incident.id),
        incident.owner or incident.reporter,
        silent,
    )


SNOOZE_MAX = timedelta(days=7)


def snooze_reminders(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    duration: timedelta,
    *,
    now: datetime | None = None,
) -> Incident:
    now = _now(now)
    if not timedelta(minutes=1) <= duration <= SNOOZE_MAX:
        raise InvalidInput("Reminders can be snoozed for a minute to a week.", "snooze")
    incident = lock_incident(session, incident_id)
    if incident.status not in ACTIVE_STATUSES:
        raise InvalidInput(
            f"{format_incident_id(incident.id)} is {incident.status.value}: no reminders to snooze."
        )
    until = now + duration
    incident.next_reminder_at = until
    event = record_event(
        session,
        incident,
        EventKind.REMINDERS_SNOOZED,
        actor,
        now,
        to_value=until.isoformat(),
    )
    notify(session, incident, [event], now=now, card=False)
    log.info(
        "%s reminders snoozed until %s by %s", format_incident_id(incident.id), until, actor.user_id
    )
    return incident


def delete_incident(session: Session, incident_id: int | str, actor: Actor) -> str:
    """Delete an incident with its timeline (admins only). Returns its title for the reply."""
    incident = lock_incident(session, incident_id)
    ref = format_incident_id(incident.id)
    if not actor.is_admin:
        raise PermissionDenied(f"Only an incident admin can delete {ref}.")
    if incident.slack_channel_id and incident.card_ts:
        session.add(
            Delivery(
                action=DeliveryAction.DELETE_CARD,
                payload={"channel": incident.slack_channel_id, "ts": incident.card_ts, "ref": ref},
            )
        )
    title = incident.title
    session.delete(incident)
    session.flush()
    log.info("%s deleted by %s (title: %r)", ref, actor.user_id, title)
    return title


# --- Queries -----------------------------------------------------------------------------------


def get_incident(session: Session, incident_id: object) -> Incident:
    number = parse_incident_id(incident_id)
    incident = session.get(Incident, number)
    if incident is None:
        raise NotFound(f"There is no incident {format_incident_id(number)}.")
    return incident


def find_by_card(session: Session, channel_id: str, card_ts: str) -> Incident | None:
    """The incident whose card is the message `card_ts` in `channel_id`."""
    return session.scalar(
        select(Incident).where(Incident.slack_channel_id == channel_id, Incident.card_ts == card_ts)
    )


def timeline(
    session: Session, incident_id: int, *, limit: int | None = None
) -> list[IncidentEvent]:
    """Events oldest first; with `limit`, the most recent `limit` of them."""
    query = (
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.occurred_at.desc(), IncidentEvent.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(reversed(session.scalars(query).all()))


_STATUS_RANK = case({s.value: i for i, s in enumerate(WORKFLOW_ORDER)}, value=Incident.status)
# Higher is more severe, so "severity, descending" (the default direction) puts SEV1 first.
_SEVERITY_RANK = case({s.value: -i for i, s in enumerate(Severity)}, value=Incident.severity)
SORT_KEYS: dict[str, Any] = {
    "created": Incident.created_at,
    "updated": Incident.updated_at,
    "severity": _SEVERITY_RANK,
    "status": _STATUS_RANK,
    "title": func.lower(Incident.title),
}


@dataclass
class IncidentQuery:
    statuses: Sequence[Status] = ()
    severities: Sequence[Severity] = ()
    active: bool = False
    category: str | None = None
    service: str | None = None
    owner: str | None = None
    reporter: str | None = None
    # Owner or assignee: "my incidents".
    involving: str | None = None
    text: str | None = None
    sort: str = "created"
    descending: bool = True
    page: int = 1
    page_size: int = 20


# Counting every match of a broad search costs more than fetching a page of it; past this many,
# lists say "1,000+" instead of an exact total.
COUNT_CAP = 1_000


@dataclass
class Page:
    items: list[Incident]
    total: int
    page: int
    page_size: int
    has_next: bool
    # False when there are more than COUNT_CAP matches and `total` is that cap.
    total_is_exact: bool = True

    @property
    def pages(self) -> int | None:
        """Number of pages, or None when the total is only known to exceed COUNT_CAP."""
        if not self.total_is_exact:
            return None
        return max(1, -(-self.total // self.page_size))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: IncidentQuery) -> Select[tuple[Incident]]:
    stmt = select(Incident)
    if query.statuses:
        stmt = stmt.where(Incident.status.in_(list(query.statuses)))
    if query.active:
        stmt = stmt.where(Incident.status.in_(ACTIVE_STATUSES))
    if query.severities:
        stmt = stmt.where(Incident.severity.in_(list(query.severities)))
    if query.category:
        stmt = stmt.where(Incident.category == query.category.strip().lower())
    if query.service:
        stmt = stmt.where(func.lower(Incident.service) == query.service.strip().lower())
    if query.owner:
        stmt = stmt.where(Incident.owner == query.owner)
    if query.reporter:
        stmt = stmt.where(Incident.reporter == query.reporter)
    if query.involving:
        stmt = stmt.where(
            (Incident.owner == query.involving) | (Incident.assignee == query.involving)
        )
    for word in (query.text or "").split():
        stmt = stmt.where(Incident.search_text.ilike(f"%{_escape_like(word)}%", escape="\\"))
    return stmt


SEARCH_MAX = 500
# Far past any real list; keeps OFFSET inside PostgreSQL's bigint.
PAGE_MAX = 10_000_000


def _check_query(query: IncidentQuery) -> None:
    """Filters are typed by people (and forged by some): refuse what can't be searched for."""
    for field_name, value, max_len in (
        ("text", query.text, SEARCH_MAX),
        ("service", query.service, SERVICE_MAX),
        ("category", query.category, 64),
        ("owner", query.owner, USER_REF_LENGTH),
        ("reporter", query.reporter, USER_REF_LENGTH),
        ("involving", query.involving, USER_REF_LENGTH),
    ):
        label = "The search" if field_name == "text" else f"The {field_name} filter"
        _clean(value, field_name, max_len, label=label)
    if query.sort not in SORT_KEYS:
        raise InvalidInput(
            f"Can't sort by {query.sort!r}. Use one of: {', '.join(SORT_KEYS)}.", "sort"
        )
    if not 1 <= query.page_size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"Page size must be between 1 and {PAGE_SIZE_MAX}.", "page_size")
    if not 1 <= query.page <= PAGE_MAX:
        raise InvalidInput(f"Pages are numbered from 1 to {PAGE_MAX:,}.", "page")


def list_incidents(session: Session, query: IncidentQuery) -> Page:
    _check_query(query)
    stmt = _filtered(query)
    counted = session.scalar(select(func.count()).select_from(stmt.limit(COUNT_CAP + 1).subquery()))
    total = min(counted or 0, COUNT_CAP)
    key = SORT_KEYS[query.sort]
    tie = Incident.id.desc() if query.descending else Incident.id.asc()
    stmt = (
        stmt.order_by(key.desc() if query.descending else key.asc(), tie)
        .limit(query.page_size + 1)  # one extra row says whether there is a next page
        .offset((query.page - 1) * query.page_size)
    )
    items = list(session.scalars(stmt).all())
    return Page(
        items=items[: query.page_size],
        total=total,
        page=query.page,
        page_size=query.page_size,
        has_next=len(items) > query.page_size,
        total_is_exact=(counted or 0) <= COUNT_CAP,
    )


@dataclass
class Timings:
    """Mean time from declaration to each milestone, over the incidents that reached it."""

    count: int = 0
    mtta: timedelta | None = None
    mttm: timedelta | None = None
    mttr: timedelta | None = None


@dataclass
class Stats:
    since: datetime
    until: datetime
    total: int = 0
    by_status: dict[Status, int] = field(default_factory=dict)
    by_severity: dict[Severity, int] = field(default_factory=dict)
    timings: dict[Severity, Timings] = field(default_factory=dict)


def _mean_since_created(column: Any) -> Any:
    return func.avg(column - Incident.created_at)


def stats(session: Session, since: datetime, until: datetime) -> Stats:
    """Counts and MTTA/MTTM/MTTR for incidents declared in [since, until)."""
    if until <= since:
        raise InvalidInput("The end of the window must be after its start.")
    window = (Incident.created_at >= since) & (Incident.created_at < until)
    result = Stats(since=since, until=until)
    for status, count in session.execute(
        select(Incident.status, func.count()).where(window).group_by(Incident.status)
    ):
        result.by_status[status] = count
    result.total = sum(result.by_status.values())
    rows = session.execute(
        select(
            Incident.severity,
            func.count(),
            _mean_since_created(Incident.acknowledged_at),
            _mean_since_created(Incident.mitigated_at),
            _mean_since_created(Incident.resolved_at),
        )
        .where(window)
        .group_by(Incident.severity)
    )
    for severity, count, mtta, mttm, mttr in rows:
        result.by_severity[severity] = count
        result.timings[severity] = Timings(count=count, mtta=mtta, mttm=mttm, mttr=mttr)
    return result
