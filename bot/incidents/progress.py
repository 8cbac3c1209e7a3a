"""Structured updates: what is known, the customers' impact, maybe a new status, and when the
next update will come; the promise kept by nudging the lead and the comms role when it is late."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import EventKind, Incident, IncidentEvent, IncidentRole, Status

from .changes import move_status
from .followups import DEFAULT_FOLLOWUP_RULES, FollowUpRules
from .recording import (
    DM_NUDGE,
    _require_editable,
    audit,
    dm_later,
    lock_incident,
    notify,
    record_event,
    touch,
)
from .validation import _clean, _now
from .vocabulary import (
    CAUSE_MAX,
    RESOLUTION_MAX,
    SYSTEM,
    USER_ID,
    Actor,
    InvalidInput,
    format_incident_id,
    parse_status,
)
from .workflow import ACTIVE_STATUSES, check_as_seen

log = logging.getLogger("bot.incidents")

SUMMARY_MAX = 3_000
IMPACT_MAX = 1_000
# "next update in" choices when UPDATE_INTERVALS is not set; "none" is always offered too.
DEFAULT_INTERVALS = (
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=4),
)


@dataclass
class UpdateDraft:
    summary: str
    impact: str | None = None
    # None or the current status: the update moves nothing.
    status: str | Status | None = None
    # One of the allowed intervals, or None: no promise (the severity's reminders come back).
    next_update_in: timedelta | None = None
    # Needed when the update resolves (or closes an active incident), as for change_status.
    resolution: str | None = None
    cause: str | None = None


def post_update(
    session: Session,
    incident_id: int | str,
    draft: UpdateDraft,
    actor: Actor,
    *,
    intervals: Sequence[timedelta] = DEFAULT_INTERVALS,
    expected_status: Status | None = None,
    followup_rules: FollowUpRules = DEFAULT_FOLLOWUP_RULES,
    override: str | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Record one STATUS_UPDATE event (text = summary; details: impact, next_update_in seconds,
    next_update_at, cause, resolution; field/from/to = status when it moved) and return it.

    Rules: summary required (at most SUMMARY_MAX), impact at most IMPACT_MAX (InvalidInput with
    the field name: summary, impact, status, next_update, resolution, cause); a status move obeys
    every rule change_status obeys (the workflow's table, resolution required to resolve, closed
    is final for non-admins, `expected_status`); `next_update_in` must be one of `intervals`.
    Effects: next_update_at/update_nudge_at = now + next_update_in (or both None); the card,
    pinned summary and welcome edited; one reply in the thread and one in the channel; a DM to
    every subscriber but the actor (recording.notify does this for STATUS_UPDATE and
    STATUS_CHANGED events).

    An update that leaves the incident resolved or closed promises nothing: its next_update_in
    is checked but not kept. A closed incident takes updates from admins only (as its fields)."""
    now = _now(now)
    summary = _clean(draft.summary, "summary", SUMMARY_MAX, label="Summary")
    if summary is None:
        raise InvalidInput("Say what is known so far: an update needs a summary.", "summary")
    impact = _clean(draft.impact, "impact", IMPACT_MAX, label="Impact")
    cause = _clean(draft.cause, "cause", CAUSE_MAX, label="Cause")
    resolution = _clean(draft.resolution, "resolution", RESOLUTION_MAX, label="Resolution")
    blank = isinstance(draft.status, str) and not draft.status.strip()
    wanted = None if draft.status is None or blank else parse_status(draft.status)
    if draft.next_update_in is not None and draft.next_update_in not in intervals:
        choices = ", ".join(span(i) for i in sorted(intervals))
        raise InvalidInput(
            f"The next update can be promised in {choices}, or none; not in "
            f"{span(draft.next_update_in)}.",
            "next_update",
        )
    incident = lock_incident(session, incident_id)
    old = incident.status
    moved = wanted is not None and wanted != old
    if wanted is not None and moved:
        _, details = move_status(
            session,
            incident,
            wanted,
            actor,
            cause=cause,
            resolution=resolution,
            expected_status=expected_status,
            followup_rules=followup_rules,
            override=override,
            now=now,
        )
    else:
        check_as_seen(incident, expected_status)
        _require_editable(incident, actor)
        details = {}
        if cause is not None:
            incident.cause = details["cause"] = cause
        if resolution is not None:
            incident.resolution = details["resolution"] = resolution
    promise = draft.next_update_in if incident.status in ACTIVE_STATUSES else None
    next_at = now + promise if promise is not None else None
    incident.next_update_at = incident.update_nudge_at = next_at
    touch(incident, now)
    event = record_event(
        session,
        incident,
        EventKind.STATUS_UPDATE,
        actor,
        now,
        text=summary,
        field="status" if moved else None,
        from_value=old.value if moved else None,
        to_value=incident.status.value if moved else None,
        details={
            "impact": impact,
            "next_update_in": int(promise.total_seconds()) if promise is not None else None,
            "next_update_at": next_at.isoformat() if next_at is not None else None,
            **details,
        },
    )
    notify(session, incident, [event], now=now)
    audit(
        session,
        log,
        "%s update by %s%s, next update %s",
        format_incident_id(incident.id),
        actor.user_id,
        f" (status {old.value} -> {incident.status.value})" if moved else "",
        f"in {span(promise)}" if promise is not None else "not promised",
    )
    return event


def latest_update(session: Session, incident_id: int) -> IncidentEvent | None:
    """The incident's last STATUS_UPDATE event (the card and pages show its summary)."""
    return session.scalars(
        select(IncidentEvent)
        .where(
            IncidentEvent.incident_id == incident_id,
            IncidentEvent.kind == EventKind.STATUS_UPDATE,
        )
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    ).first()


def is_overdue(next_update_at: datetime | None, now: datetime) -> bool:
    return next_update_at is not None and next_update_at <= now


def nudge_overdue(session: Session, incident_id: int, *, now: datetime) -> IncidentEvent | None:
    """The scheduler, for an active incident whose update_nudge_at has passed: an UPDATE_OVERDUE
    event (not posted in the thread), a DM with an Update button to the lead and the `comms`
    role holder (each once; the reporter when there is neither), the card edited to show it
    overdue, and update_nudge_at moved one promised interval on.

    Returns the event; None (and nothing done) when no nudge is due any more: the incident was
    updated, resolved or snoozed since the sweep read it."""
    incident = lock_incident(session, incident_id)
    due = incident.update_nudge_at
    if incident.status not in ACTIVE_STATUSES or due is None or due > now:
        return None
    latest = latest_update(session, incident.id)
    seconds = (latest.details or {}).get("next_update_in") if latest is not None else None
    people = nudged(session, incident)
    promised = incident.next_update_at
    event = record_event(
        session,
        incident,
        EventKind.UPDATE_OVERDUE,
        SYSTEM,
        now,
        details={
            "who": people,
            "next_update_at": promised.isoformat() if promised is not None else None,
            "late_minutes": int((now - (promised or due)).total_seconds() // 60),
        },
    )
    incident.update_nudge_at = now + timedelta(seconds=seconds) if seconds else None
    # The card (and pinned summary) show it overdue; the nudge itself is a DM, not a reply.
    notify(session, incident, [event], now=now, thread=False, channel=False)
    for user_id in people:
        dm_later(session, incident, user_id, DM_NUDGE, [event], now)
    audit(
        session,
        log,
        "%s next update overdue since %s: nudged %s",
        format_incident_id(incident.id),
        promised,
        ", ".join(people) or "nobody",
    )
    return event


COMMS_ROLE = "comms"


def nudged(session: Session, incident: Incident) -> list[str]:
    """Who is nudged about a late update: the lead and the comms role holder (each once); the
    reporter, when a person, if there is neither."""
    comms = session.scalar(
        select(IncidentRole.user_id).where(
            IncidentRole.incident_id == incident.id, IncidentRole.role == COMMS_ROLE
        )
    )
    people = list(dict.fromkeys(p for p in (incident.owner, comms) if p))
    if not people and USER_ID.match(incident.reporter):
        people.append(incident.reporter)
    return people


def count_overdue(session: Session) -> int:
    """Active incidents whose promised next update is late (the metrics gauge): a read of the
    active incidents' own small index."""
    return session.scalar(
        select(func.count())
        .select_from(Incident)
        .where(
            Incident.status.in_(ACTIVE_STATUSES),
            Incident.next_update_at <= func.now(),
        )
    )


def span(duration: timedelta) -> str:
    """15 min, 1 h, 1 h 30 min, 45 s: a "next update in" as the replies and pages say it."""
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{seconds} s" if seconds else "")
    return " ".join(p for p in parts if p) or "0 s"
