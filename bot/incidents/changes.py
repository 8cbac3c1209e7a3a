"""Every change to an incident: declare, move, edit, delete (the people: roles.py).

Each locks the incident, checks the rules, and records its event and outbox rows in the caller's
transaction."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    Severity,
    Status,
)

from .channels import ChannelRules, queue_channel, rename_later, reopen_channel
from .followups import DEFAULT_FOLLOWUP_RULES, FollowUpRules, check_close
from .queries import get_incident
from .recording import (
    DM_ROLE,
    _require_editable,
    _set_fields,
    audit,
    dm_later,
    lock_incident,
    notify,
    record_event,
    touch,
)
from .roles import mark_leaderless
from .subscribers import subscribe_reporter
from .validation import (
    _clean,
    _clean_card_channel,
    _clean_category,
    _clean_title,
    _clean_user,
    _now,
    _reporter,
)
from .vocabulary import (
    CAUSE_MAX,
    DEFAULT_CATEGORIES,
    DESCRIPTION_MAX,
    NOTE_MAX,
    RESOLUTION_MAX,
    SERVICE_MAX,
    USER_ID,
    Actor,
    DeclareLimit,
    InvalidInput,
    PermissionDenied,
    format_incident_id,
    parse_severity,
    parse_status,
)
from .workflow import (
    ACTIVE_STATUSES,
    _check_transition,
    _require_resolution,
    _stamp_milestones,
    check_as_seen,
)

log = logging.getLogger("bot.incidents")

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
    # Declared in Slack, the incident must have a card; seed data and other surfaces need none.
    needs_card: bool = False
    # The form's "Open an incident channel" box (ChannelRules decides what it adds to).
    open_channel: bool = False
    # People are told by DM: the reporter (subscribed) of its updates, the lead of the lead's
    # duties. Demo data tells no one.
    tell_people: bool = True


# Two-key advisory locks: this class, then the hash of the reporter's id.
_DECLARE_LOCK_CLASS = 0x1DEC


def _check_declare_limit(
    session: Session, actor: Actor, limit: DeclareLimit, now: datetime
) -> None:
    """Refuse a declaration past the person's limit, saying when they may declare again."""
    reporter = _reporter(actor)
    # Two declarations sent at once must not both count the same history.
    session.execute(
        select(func.pg_advisory_xact_lock(_DECLARE_LOCK_CLASS, func.hashtext(reporter)))
    )
    recent = session.scalars(
        select(Incident.created_at)
        .where(Incident.reporter == reporter, Incident.created_at > now - limit.window)
        .order_by(Incident.created_at.desc())
        .limit(limit.count)
    ).all()
    if len(recent) < limit.count:
        return
    minutes = max(1, math.ceil((recent[-1] + limit.window - now).total_seconds() / 60))
    log.warning("declare refused for %s: %d in %s", reporter, len(recent), limit.span())
    raise InvalidInput(
        f"You have declared {len(recent)} incidents in the last {limit.span()}, the most one "
        "person may, so that a runaway script can't flood the incidents channel. Try again in "
        f"{minutes} minute{'s' if minutes > 1 else ''}, or ask a teammate to declare this one.",
        "title",
    )


def declare(
    session: Session,
    draft: IncidentDraft,
    actor: Actor,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    now: datetime | None = None,
    limit: DeclareLimit | None = None,
    channels: ChannelRules | None = None,
) -> Incident:
    now = _now(now)
    if limit is not None:
        _check_declare_limit(session, actor, limit, now)
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
        slack_channel_id=_clean_card_channel(draft.slack_channel_id, required=draft.needs_card),
    )
    mark_leaderless(incident, now)
    session.add(incident)
    created = record_event(
        session, incident, EventKind.CREATED, actor, now, to_value=incident.severity.value
    )
    session.flush()
    if draft.tell_people:
        subscribe_reporter(session, incident, now)
    if incident.slack_channel_id is not None:
        session.add(
            Delivery(incident_id=incident.id, action=DeliveryAction.POST_CARD, next_attempt_at=now)
        )
        if channels is not None and channels.wanted(incident.severity, draft.open_channel):
            queue_channel(session, incident, channels, created, now)
    # Named lead by someone else, they learn it (and the duties) now; a declarer who keeps the
    # lead the form offers them knows already.
    lead = incident.owner
    if draft.tell_people and lead and USER_ID.match(lead) and lead != actor.user_id:
        dm_later(session, incident, lead, DM_ROLE, [created], now)
    audit(
        session,
        log,
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
    followup_rules: FollowUpRules = DEFAULT_FOLLOWUP_RULES,
    override: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Move an incident along the workflow.

    A close obeys `followup_rules.close_requires` (followups.check_close): an admin may close
    before, giving `override`, a reason the event keeps.

    `expected_status` is the status the person saw (a button on a card); if the incident moved
    since, the change no longer applies and is refused rather than applied to a different state.
    """
    now = _now(now)
    new = parse_status(status)
    note = _clean(note, "note", NOTE_MAX, label="Note")
    cause = _clean(cause, "cause", CAUSE_MAX, label="Cause")
    resolution = _clean(resolution, "resolution", RESOLUTION_MAX, label="Resolution")
    incident = lock_incident(session, incident_id)
    old, details = move_status(
        session,
        incident,
        new,
        actor,
        cause=cause,
        resolution=resolution,
        expected_status=expected_status,
        followup_rules=followup_rules,
        override=override,
        now=now,
    )
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
    audit(
        session,
        log,
        "%s status %s -> %s by %s",
        format_incident_id(incident.id),
        old.value,
        new.value,
        actor.user_id,
    )
    return incident


def move_status(
    session: Session,
    incident: Incident,
    new: Status,
    actor: Actor,
    *,
    cause: str | None,
    resolution: str | None,
    expected_status: Status | None,
    followup_rules: FollowUpRules,
    override: str | None,
    now: datetime,
) -> tuple[Status, dict[str, str]]:
    """Move a locked incident to `new` by every rule of the workflow: the one move change_status
    and a structured update share. `cause` and `resolution` come cleaned. Every rule is checked
    before anything changes. Returns the status it left and the details its event records.

    Leaving the active statuses ends the promise of a next update (no nudges for a finished
    incident); coming back to them reopens an archived incident channel."""
    check_as_seen(incident, expected_status)
    _check_transition(incident, new, actor)
    _require_resolution(incident, new, resolution)
    details = check_close(session, incident, new, actor, followup_rules, override)
    old = incident.status
    _stamp_milestones(incident, new, now)
    incident.status = new
    if cause is not None:
        incident.cause = details["cause"] = cause
    if resolution is not None:
        incident.resolution = details["resolution"] = resolution
    if old in ACTIVE_STATUSES and new not in ACTIVE_STATUSES:
        incident.next_update_at = incident.update_nudge_at = None
    if new in ACTIVE_STATUSES and incident.own_channel_archived_at is not None:
        reopen_channel(session, incident, now)
    return old, details


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
    audit(
        session,
        log,
        "%s severity %s -> %s by %s",
        format_incident_id(incident.id),
        old,
        new,
        actor.user_id,
    )
    return incident


EDITABLE_FIELDS = ("title", "description", "service", "category", "cause", "resolution")


def fingerprint(value: str | None) -> str:
    """A short hash of a field's value as a form showed it (see `edit`'s `seen`)."""
    return hashlib.sha256((value or "").encode()).hexdigest()[:12]


def edit(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    changes: dict[str, str | None],
    *,
    seen: dict[str, str] | None = None,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    now: datetime | None = None,
) -> Incident:
    """Set the given fields (a None or blank value clears an optional field).

    `seen` holds the fingerprint of each field as the person's form showed it: only the fields
    they changed are set, so a field someone else edited meanwhile keeps that edit.
    """
    if seen is not None:
        changes = {
            field: value
            for field, value in changes.items()
            if fingerprint(value) != seen.get(field, fingerprint(None))
        }
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
    incident, events = _set_fields(
        session, incident_id, actor, cleaned, EventKind.FIELD_CHANGED, now
    )
    if any(e.field == "title" for e in events):
        rename_later(session, incident, _now(now))
    if events:
        audit(
            session,
            log,
            "%s edited (%s) by %s",
            format_incident_id(incident.id),
            ", ".join(e.field or "" for e in events),
            actor.user_id,
        )
    return incident


def check_can_delete(session: Session, incident_id: int | str, actor: Actor) -> Incident:
    """The incident, if `actor` may delete it (before asking them to confirm)."""
    incident = get_incident(session, incident_id)
    if not actor.is_admin:
        raise PermissionDenied(
            f"Only an incident admin can delete {format_incident_id(incident.id)}."
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
    audit(session, log, "%s deleted by %s (title: %r)", ref, actor.user_id, title)
    return title
