"""The follow-up vocabulary: settings, drafts, ids, statuses, priorities and due dates."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from db.models import (
    FollowUp,
    FollowUpStatus,
)

from ..validation import _clean
from ..vocabulary import (
    InvalidInput,
)

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


DEFAULT_FOLLOWUP_RULES = FollowUpRules()


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


_FOLLOWUP_ID = re.compile(r"^\s*(?:fu[-_ ]?)?0*([0-9]{1,9})\s*$", re.IGNORECASE)


FOLLOWUP_ID_MAX = 2**31 - 1


def parse_followup_id(value: object) -> int:
    """`FU-12`, `fu-12` or `12`; InvalidInput otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= FOLLOWUP_ID_MAX:
        return value
    match = _FOLLOWUP_ID.match(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match.group(1)) <= FOLLOWUP_ID_MAX:
        shown = f"{value.strip()!r}" if isinstance(value, str) else "That"
        raise InvalidInput(f"{shown} is not a follow-up id. Use FU-12 or 12.", "followup")
    return int(match.group(1))


_RELATIVE_DUE = re.compile(r"^(?:in\s+)?([0-9]{1,3})\s*(d|w|days?|weeks?)$")


DUE_HINT = "Give a due date such as 2026-12-20, in 3d or in 2w."


# Further out than this is a typo, not a plan.
DUE_MAX_AHEAD = timedelta(days=5 * 366)


def parse_due(text: str, today: date) -> date:
    """`2026-12-20`, `in 2w`, `2w`, `3d`, `today`, `tomorrow`: the due date; InvalidInput (field
    "due") for anything else or a date in the past."""
    value = " ".join(text.strip().lower().split())
    if value in {"today", "tomorrow"}:
        return today + timedelta(days=value == "tomorrow")
    relative = _RELATIVE_DUE.match(value)
    if relative is not None:
        count, unit = int(relative.group(1)), relative.group(2)[0]
        due = today + timedelta(days=count * (7 if unit == "w" else 1))
    else:
        try:
            due = date.fromisoformat(value) if re.match(r"^\d{4}-\d{2}-\d{2}$", value) else None
        except ValueError:
            due = None
        if due is None:
            raise InvalidInput(f"{text.strip()!r} is not a due date. {DUE_HINT}", "due")
    return check_due(due, today)


def check_due(due: date, today: date) -> date:
    if due < today:
        raise InvalidInput(f"The due date {due.isoformat()} is in the past.", "due")
    if due - today > DUE_MAX_AHEAD:
        raise InvalidInput(f"The due date {due.isoformat()} is more than 5 years away.", "due")
    return due


def _clean_priority(value: str | None, rules: FollowUpRules) -> str:
    priority = (value or "").strip().lower() or rules.default_priority
    if priority not in rules.priorities:
        raise InvalidInput(
            f"Unknown priority {priority!r}. Use one of: {', '.join(rules.priorities)}.",
            "priority",
        )
    return priority


def _clean_followup_title(value: str | None) -> str:
    title = _clean(value, "title", TITLE_MAX, label="Title", min_len=3)
    assert title is not None
    return title


def parse_followup_status(value: FollowUpStatus | str) -> FollowUpStatus:
    raw = value.value if isinstance(value, FollowUpStatus) else str(value).strip().lower()
    aliases = {"won't do": "wont_do", "wontdo": "wont_do", "wont-do": "wont_do", "reopen": "open"}
    try:
        return FollowUpStatus(aliases.get(raw, raw))
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not a follow-up status. Use open, done or wont_do.", "status"
        ) from None


def is_overdue(followup: FollowUp, today: date) -> bool:
    return (
        followup.status == FollowUpStatus.OPEN
        and followup.due_on is not None
        and followup.due_on < today
    )
