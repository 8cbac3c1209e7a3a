"""Incident roles: the lead (the incident's owner) and the roles of INCIDENT_ROLES, each held by
at most one person; taking, giving and handing them off; reminding a SEV1 or SEV2 that has no
lead."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EventKind, Incident, IncidentEvent, IncidentRole, Severity

from .channels import invite_later
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
from .validation import _clean, _clean_user, _now
from .vocabulary import (
    SYSTEM,
    USER_ID,
    Actor,
    Conflict,
    InvalidInput,
    format_incident_id,
)

log = logging.getLogger("bot.incidents")

ROLE_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Names a role of INCIDENT_ROLES may not take: `lead` is the owner; the others are words of
# `/incident assign`.
RESERVED_KEYS = frozenset({"lead", "owner", "assignee", "me", "nobody"})
HANDOFF_MAX = 500
# Reminded when they have had no lead for LEAD_REMINDER_AFTER.
LEAD_REMINDER_SEVERITIES = (Severity.SEV1, Severity.SEV2)


@dataclass(frozen=True)
class Role:
    key: str
    name: str
    duties: str


LEAD = Role(
    "lead",
    "Incident lead",
    "Runs the incident: decides what happens next, keeps the severity and status true, and "
    "makes sure the next update goes out when it was promised.",
)
DEFAULT_ROLES = (
    Role("comms", "Communications lead", "posts the updates"),
    Role("scribe", "Scribe", "keeps the timeline"),
)


@dataclass(frozen=True)
class RoleRules:
    """INCIDENT_ROLES and LEAD_REMINDER_AFTER, as the domain uses them."""

    roles: tuple[Role, ...] = DEFAULT_ROLES
    # A SEV1 or SEV2 without a lead this long is reminded, once per this interval; None: never.
    lead_reminder_after: timedelta | None = field(default=timedelta(minutes=5))

    @property
    def all(self) -> tuple[Role, ...]:
        """The lead first, then the configured roles in their order."""
        return (LEAD, *self.roles)

    def get(self, key: str) -> Role:
        """The role named `key` (case-insensitive), or InvalidInput naming the roles there are."""
        wanted = key.strip().lower()
        if wanted == "owner":  # `/incident assign INC-12 owner @x`'s word for the lead
            wanted = LEAD.key
        for role in self.all:
            if role.key == wanted:
                return role
        raise InvalidInput(
            f"There is no role {key!r}. Roles: {', '.join(r.key for r in self.all)}.", "role"
        )


def parse_roles(raw: str) -> tuple[Role, ...]:
    """`comms=Communications lead: posts the updates;scribe=Scribe: keeps the timeline`;
    ValueError saying what is wrong."""
    roles: list[Role] = []
    for item in raw.split(";"):
        if not item.strip():
            continue
        key, sep, rest = item.partition("=")
        key = key.strip().lower()
        name, _, duties = rest.partition(":")
        if not sep or not ROLE_KEY.match(key) or not name.strip():
            raise ValueError(
                f"{item.strip()!r} should look like comms=Communications lead: posts the updates "
                "(a key of lowercase letters, digits, - or _, a name, then its duties)"
            )
        if key in RESERVED_KEYS:
            raise ValueError(f"{key!r} is reserved (the lead is the incident's owner)")
        if any(r.key == key for r in roles):
            raise ValueError(f"the role {key!r} is listed twice")
        roles.append(Role(key, name.strip()[:80], duties.strip()[:500]))
    return tuple(roles)


# --- The lead: the incident's owner ------------------------------------------------------------


def mark_leaderless(incident: Incident, now: datetime) -> None:
    """`leaderless_since`: since when the incident has had no lead (None while it has one); the
    lead reminder counts from it."""
    if incident.owner is not None:
        incident.leaderless_since = incident.lead_reminded_at = None
    elif incident.leaderless_since is None:
        incident.leaderless_since = now


def _clean_handoff(handoff: str | None) -> str | None:
    """One line: a summary pasted over several lines is joined with spaces."""
    if handoff is None:
        return None
    return _clean(" ".join(handoff.split()), "handoff", HANDOFF_MAX, label="Handoff summary")


def _check_handoff(incident: Incident, lead: str | None) -> None:
    if incident.owner is None or lead is None or lead == incident.owner:
        raise InvalidInput(
            "A handoff summary is for handing the lead from one person to another.", "handoff"
        )


def _lead_changed(
    session: Session, incident: Incident, event: IncidentEvent, handoff: str | None, now: datetime
) -> None:
    """What a new lead (or none) brings, however the owner was set: the event says it is the
    lead (with the handoff summary), `leaderless_since`, and the lead's duties by DM."""
    event.details = {**(event.details or {}), "role": LEAD.key}
    if handoff is not None:
        event.details["handoff"] = handoff
    mark_leaderless(incident, now)
    if incident.owner is not None and USER_ID.match(incident.owner):
        dm_later(session, incident, incident.owner, DM_ROLE, [event], now)


_UNCHANGED: Any = object()


def assign(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    *,
    owner: str | None = _UNCHANGED,
    assignee: str | None = _UNCHANGED,
    handoff: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Set the owner (the incident's lead) and/or the assignee (the hands-on work); None
    unassigns. A new owner has every effect of `assign_role(..., "lead", ...)`: this is its
    code path."""
    return _assign(
        session, incident_id, actor, owner=owner, assignee=assignee, handoff=handoff, now=now
    )


def _assign(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    *,
    owner: str | None = _UNCHANGED,
    assignee: str | None = _UNCHANGED,
    handoff: str | None = None,
    now: datetime | None = None,
    lead_word: str = "owner",
) -> Incident:
    now = _now(now)
    wanted = {
        name: _clean_user(value, name)
        for name, value in (("owner", owner), ("assignee", assignee))
        if value is not _UNCHANGED
    }
    if not wanted:
        raise InvalidInput("Say who should be the owner or the assignee.")
    handoff = _clean_handoff(handoff)
    if handoff is not None:
        incident = lock_incident(session, incident_id)
        _require_editable(incident, actor)
        _check_handoff(incident, wanted.get("owner"))
    incident, events = _set_fields(session, incident_id, actor, wanted, EventKind.ASSIGNED, now)
    if not events:
        who = " and ".join(
            f"{lead_word if name == 'owner' else name} is already {value or 'nobody'}"
            for name, value in wanted.items()
        )
        raise InvalidInput(f"Nothing changed: the {who}.")
    for event in events:
        if event.field == "owner":
            _lead_changed(session, incident, event, handoff, now)
    invite_later(session, incident, [e.to_value for e in events if e.to_value], now)
    audit(
        session,
        log,
        "%s assigned (%s) by %s%s",
        format_incident_id(incident.id),
        ", ".join(f"{e.field}={e.to_value}" for e in events),
        actor.user_id,
        ", with a handoff summary" if handoff else "",
    )
    return incident


def holders(
    session: Session, incident: Incident, rules: RoleRules
) -> list[tuple[Role, str | None]]:
    """Every role of `rules.all` (lead first) with who holds it, None when nobody does. A role
    held in the incident but no longer configured is listed last (its holder keeps it)."""
    held = {
        row.role: row.user_id
        for row in session.scalars(
            select(IncidentRole)
            .where(IncidentRole.incident_id == incident.id)
            .order_by(IncidentRole.assigned_at, IncidentRole.role)
        )
    }
    listed: list[tuple[Role, str | None]] = [(LEAD, incident.owner)]
    listed += [(role, held.pop(role.key, None)) for role in rules.roles]
    listed += [(Role(key, key, ""), user) for key, user in held.items()]
    return listed


def _who(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody"


def assign_role(
    session: Session,
    incident_id: int | str,
    role_key: str,
    user_id: str | None,
    actor: Actor,
    *,
    rules: RoleRules,
    handoff: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Give `role_key` to `user_id` (None: nobody holds it now). `lead` sets the owner (an
    ASSIGNED event of field `owner`, with `details.role = "lead"` and the handoff summary in
    `details.handoff`); any other role is an IncidentRole row and a ROLE_ASSIGNED event.

    Rules: the incident is editable by `actor` (closed: admins only); the person is a Slack user
    id; giving a role to whoever holds it already is InvalidInput ("Nothing changed: ...");
    `handoff` (at most HANDOFF_MAX, one line) is only for a lead handed from one person to
    another and is optional. Effects, in the caller's transaction: the event; the card, pinned
    summary, welcome message and (lead only) topic are edited, the thread and channel told; the
    person is invited into the incident channel and DMed the role's duties and links (a tell row
    rendered at send time: payload about="role"); `leaderless_since` set/cleared for the lead."""
    role = rules.get(role_key)
    if role.key == LEAD.key:
        return _assign(
            session, incident_id, actor, owner=user_id, handoff=handoff, now=now, lead_word="lead"
        )
    now = _now(now)
    user = _clean_user(user_id, "user")
    if _clean_handoff(handoff) is not None:
        raise InvalidInput(
            "A handoff summary is for handing the lead from one person to another.", "handoff"
        )
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    ref = format_incident_id(incident.id)
    row = session.get(IncidentRole, (incident.id, role.key), populate_existing=True)
    old = row.user_id if row is not None else None
    if old == user:
        already = "is already" if user else "is"
        raise InvalidInput(f"Nothing changed: {_who(user)} {already} the {role.name} of {ref}.")
    if user is None:
        session.delete(row)
    elif row is None:
        session.add(
            IncidentRole(
                incident_id=incident.id,
                role=role.key,
                user_id=user,
                assigned_by=actor.user_id,
                assigned_at=now,
            )
        )
    else:
        row.user_id, row.assigned_by, row.assigned_at = user, actor.user_id, now
    touch(incident, now)
    event = record_event(
        session,
        incident,
        EventKind.ROLE_ASSIGNED,
        actor,
        now,
        field=role.key,
        from_value=old,
        to_value=user,
        details={"role": role.key},
    )
    notify(session, incident, [event], now=now)
    if user is not None:
        invite_later(session, incident, [user], now)
        dm_later(session, incident, user, DM_ROLE, [event], now)
    audit(session, log, "%s role %s: %s -> %s by %s", ref, role.key, old, user, actor.user_id)
    return incident


def take_lead(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    *,
    rules: RoleRules,
    now: datetime | None = None,
) -> Incident:
    """ "I'll lead": `actor` becomes the lead of an incident that has none. Someone leads already
    (the second click): Conflict saying who ("<@U123> already leads INC-12.")."""
    user = _clean_user(actor.user_id, "user")
    incident = lock_incident(session, incident_id)
    if incident.owner is not None:
        raise Conflict(f"{_who(incident.owner)} already leads {format_incident_id(incident.id)}.")
    return assign_role(session, incident.id, LEAD.key, user, actor, rules=rules, now=now)


def remind_lead(session: Session, incident: Incident, *, now: datetime) -> None:
    """The scheduler, on a locked SEV1/SEV2 row without a lead: a LEAD_REMINDER event posted in
    the thread and the channel (rendered with an "I'll lead" button), lead_reminded_at = now."""
    since = incident.leaderless_since or now
    event = record_event(
        session,
        incident,
        EventKind.LEAD_REMINDER,
        SYSTEM,
        now,
        details={"leaderless_minutes": int((now - since).total_seconds() // 60)},
    )
    incident.lead_reminded_at = now
    notify(session, incident, [event], now=now, card=False)
    audit(
        session,
        log,
        "%s lead reminder: no lead since %s",
        format_incident_id(incident.id),
        since,
    )
