"""Incident roles: the lead (the incident's owner) and the roles of INCIDENT_ROLES, each held by
at most one person; taking, giving and handing them off; reminding a SEV1 or SEV2 that has no
lead."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Incident

from .vocabulary import Actor, InvalidInput

log = logging.getLogger("bot.incidents")

ROLE_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Names a role of INCIDENT_ROLES may not take: `lead` is the owner; the others are words of
# `/incident assign`.
RESERVED_KEYS = frozenset({"lead", "owner", "assignee", "me", "nobody"})
HANDOFF_MAX = 500


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


# --- Interface for the other surfaces (bodies: helper "roles") ---------------------------------


def holders(
    session: Session, incident: Incident, rules: RoleRules
) -> list[tuple[Role, str | None]]:
    """Every role of `rules.all` (lead first) with who holds it, None when nobody does. A role
    held in the incident but no longer configured is listed last (its holder keeps it)."""
    raise NotImplementedError


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
    raise NotImplementedError


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
    raise NotImplementedError


def remind_lead(session: Session, incident: Incident, *, now: datetime) -> None:
    """The scheduler, on a locked SEV1/SEV2 row without a lead: a LEAD_REMINDER event posted in
    the thread and the channel (rendered with an "I'll lead" button), lead_reminded_at = now."""
    raise NotImplementedError
