"""Follow-ups: the action items after an incident, with an owner, a due date, a priority, a
status and perhaps a ticket in the team's tracker (GitHub or Jira); and the rule that an
incident closes only once its follow-ups are triaged (CLOSE_REQUIRES).

A closed incident freezes the incident, not the work after it: follow-ups stay editable.
Exports to the tracker are outbox rows (bot.delivery.exports), exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from db.models import FollowUp, FollowUpStatus, Incident, Status

from .vocabulary import Actor

log = logging.getLogger(__name__)

TITLE_MAX = 255
DEFAULT_PRIORITIES = ("high", "medium", "low")
# CLOSE_REQUIRES: what an incident needs before it closes.
CLOSE_FOLLOWUPS_TRIAGED, CLOSE_REVIEW_DONE, CLOSE_NOTHING = (
    "followups-triaged",
    "review-done",
    "none",
)
CLOSE_RULES = (CLOSE_FOLLOWUPS_TRIAGED, CLOSE_REVIEW_DONE, CLOSE_NOTHING)
TRACKERS = ("github", "jira")
# What a DM to a follow-up's owner is about (bot.delivery.tell words it when sent).
DM_FOLLOWUP_ASSIGNED, DM_FOLLOWUP_DIGEST = "followup_assigned", "followup_digest"
STATUS_LABELS = {
    FollowUpStatus.OPEN: "open",
    FollowUpStatus.DONE: "done",
    FollowUpStatus.WONT_DO: "won't do",
}


@dataclass(frozen=True)
class FollowUpRules:
    """The follow-up settings the domain needs (bot.settings reads them)."""

    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    close_requires: str = CLOSE_FOLLOWUPS_TRIAGED
    # FOLLOWUP_TRACKER ("github", "jira") or None; FOLLOWUP_EXPORT=auto exports each new
    # follow-up of a public incident as soon as it has an owner.
    tracker: str | None = None
    auto_export: bool = False
    # FOLLOWUP_DIGEST: the weekday (0 = Monday) and time, in TIMEZONE; None is off.
    digest: tuple[int, time] | None = (0, time(9, 0))

    @property
    def default_priority(self) -> str:
        """The middle one ("medium" of high,medium,low)."""
        return self.priorities[len(self.priorities) // 2]


@dataclass
class FollowUpDraft:
    title: str
    owner: str | None = None
    due_on: date | None = None
    priority: str | None = None  # None: rules.default_priority
    source_permalink: str | None = None


@dataclass
class FollowUpQuery:
    """A list of follow-ups: every filter is optional; `overdue` means open and due before
    `today`."""

    owner: str | None = None
    status: FollowUpStatus | None = None
    overdue: bool = False
    incident_id: int | None = None
    today: date | None = None
    limit: int = 50
    offset: int = 0


@dataclass
class FollowUpPage:
    items: list[FollowUp] = field(default_factory=list)
    total: int = 0


def format_followup_id(followup_id: int) -> str:
    return f"FU-{followup_id}"


def parse_followup_id(value: object) -> int:
    """`FU-12`, `fu-12` or `12`; InvalidInput otherwise."""
    raise NotImplementedError


def parse_due(text: str, today: date) -> date:
    """`2026-12-20`, `in 2w`, `2w`, `3d`, `tomorrow`: the due date; InvalidInput (field "due")
    for anything else or a date in the past."""
    raise NotImplementedError


def add_followup(
    session: Session,
    incident_id: int | str,
    draft: FollowUpDraft,
    actor: Actor,
    rules: FollowUpRules,
    *,
    now: datetime | None = None,
) -> FollowUp:
    """Add a follow-up to an incident (closed ones too): a FOLLOWUP_ADDED event, the card and
    summary edited, a DM to the owner if someone else named them, and with auto export and a
    tracker an export queued (never for a private incident)."""
    raise NotImplementedError


_UNSET: object = object()


def change_followup(
    session: Session,
    followup_id: int | str,
    actor: Actor,
    rules: FollowUpRules,
    *,
    title: object = _UNSET,
    owner: object = _UNSET,
    due_on: object = _UNSET,
    priority: object = _UNSET,
    now: datetime | None = None,
) -> FollowUp:
    """Change what was given (a FOLLOWUP_CHANGED event per field that changed); a new owner is
    DMed. None clears owner or due date."""
    raise NotImplementedError


def set_followup_status(
    session: Session,
    followup_id: int | str,
    status: FollowUpStatus | str,
    actor: Actor,
    *,
    now: datetime | None = None,
) -> FollowUp:
    """Mark a follow-up done, won't do, or open again; records who and when."""
    raise NotImplementedError


def request_export(
    session: Session, followup_id: int | str, actor: Actor, rules: FollowUpRules, *, now=None
) -> FollowUp:
    """Queue the follow-up's export to the tracker (one EXPORT_FOLLOWUP row, ever: a second
    request while one is queued or done is refused with the ticket's link). InvalidInput when no
    tracker is configured."""
    raise NotImplementedError


def record_ticket(
    session: Session, followup_id: int, tracker: str, key: str, url: str, *, now: datetime
) -> FollowUp:
    """The export made (or found) the ticket: store it, a FOLLOWUP_EXPORTED event, the card and
    summary edited. Called by the outbox when the export succeeded."""
    raise NotImplementedError


def ticket_state(
    session: Session,
    tracker: str,
    key: str,
    status: FollowUpStatus,
    *,
    by: str,
    now: datetime | None = None,
) -> FollowUp | None:
    """The tracker says the ticket `key` is closed (done, or won't do) or open again (webhook or
    poll): set the follow-up's status if it differs. None when no follow-up has that ticket.
    Idempotent: a repeated webhook changes nothing."""
    raise NotImplementedError


def get_followup(session: Session, followup_id: int | str) -> FollowUp:
    raise NotImplementedError


def followups_of(session: Session, incident_id: int) -> list[FollowUp]:
    """The incident's follow-ups: open first, then by due date, then by id."""
    raise NotImplementedError


def list_followups(session: Session, query: FollowUpQuery) -> FollowUpPage:
    """Follow-ups across incidents, overdue first then by due date."""
    raise NotImplementedError


def is_overdue(followup: FollowUp, today: date) -> bool:
    return (
        followup.status == FollowUpStatus.OPEN
        and followup.due_on is not None
        and followup.due_on < today
    )


def close_refusal(session: Session, incident: Incident, rules: FollowUpRules) -> str | None:
    """Why the incident may not close yet under CLOSE_REQUIRES, as a sentence naming what is
    missing ("INC-12 can't close: 2 follow-ups have no owner or due date (FU-3, FU-4)."); None
    when it may."""
    raise NotImplementedError


def check_close(
    session: Session,
    incident: Incident,
    new: Status,
    actor: Actor,
    rules: FollowUpRules,
    override: str | None,
) -> dict[str, str]:
    """Refuse a move to closed the rules don't allow yet (InvalidInput, field "status"), unless
    an admin gives a reason (`override`, recorded in the event's details as "override"); a
    non-admin's override is PermissionDenied. Returns the details to record."""
    raise NotImplementedError


def queue_overdue_digest(
    session: Session, rules: FollowUpRules, zone: ZoneInfo, now: datetime
) -> list[str]:
    """If this week's follow-up digest is due (rules.digest in `zone`) and not yet sent
    (a FollowUpDigest row), queue one DM per owner with overdue follow-ups; returns the owners."""
    raise NotImplementedError


def tickets_to_poll(session: Session, tracker: str, before: datetime, limit: int) -> list[FollowUp]:
    """Open follow-ups with a ticket in `tracker` last checked before `before` (or never)."""
    raise NotImplementedError
