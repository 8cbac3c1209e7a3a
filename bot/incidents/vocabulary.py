"""The incident vocabulary: limits, errors, who acts, severities, statuses, ids, people and
channels. Every surface speaks it; it imports nothing but the models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from db.models import (
    Severity,
    Status,
)

DEFAULT_CATEGORIES = ("outage", "degradation", "security", "data", "other")

# People and channels are Slack's ids: a person (U…, or W… on Enterprise Grid) and a channel that
# can hold a card (public C…, private G…; never a DM).
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")

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


class Busy(IncidentError):
    """Someone else's change held the incident past the caller's lock timeout; nothing changed,
    and the same request may simply be sent again."""

    def __init__(self) -> None:
        super().__init__(
            "That incident is busy (someone else is changing it right now), so nothing was "
            "changed. Please try again in a moment."
        )


# --- Who is acting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    user_id: str
    is_admin: bool = False

    @classmethod
    def of(cls, user_id: str, admins: Iterable[str]) -> Actor:
        return cls(user_id=user_id, is_admin=user_id in set(admins))

    @classmethod
    def token(cls, name: str, *, is_admin: bool) -> Actor:
        return cls(user_id=TOKEN_ACTOR_PREFIX + name, is_admin=is_admin)

    def may_remove(self, added_by: str | None) -> bool:
        """Whoever added a note or a screenshot may remove it, and so may an incident admin."""
        return self.is_admin or self.user_id == added_by


# Besides people (Slack user ids), changes come from API tokens, by name, and from the local admin
# of an install that has no Slack yet. Their ids are stored where a person's would be.
TOKEN_ACTOR_PREFIX = "token:"
TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
LOCAL_ADMIN = Actor("local-admin", is_admin=True)


# A follow-up's ticket closed in its tracker: "tracker:github:octocat" ("octocat on GitHub").
TRACKER_ACTOR_PREFIX = "tracker:"
TRACKER_NAMES = {"github": "GitHub", "jira": "Jira"}


def tracker_actor(tracker: str, who: str | None) -> Actor:
    name = " ".join((who or "someone").split())[:40]
    return Actor(f"{TRACKER_ACTOR_PREFIX}{tracker}:{name}")


def actor_label(actor_id: str) -> str | None:
    """How a machine or the local admin is named ("API token alertmanager"); None for a person."""
    if actor_id.startswith(TOKEN_ACTOR_PREFIX):
        return f"API token {actor_id.removeprefix(TOKEN_ACTOR_PREFIX)}"
    if actor_id.startswith(TRACKER_ACTOR_PREFIX):
        tracker, _, who = actor_id.removeprefix(TRACKER_ACTOR_PREFIX).partition(":")
        return f"{who} on {TRACKER_NAMES.get(tracker, tracker)}"
    if actor_id == LOCAL_ADMIN.user_id:
        return "local admin"
    return None


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


# ASCII digits only: `\d` and int() also read other scripts' digits, so INC- followed by the
# fullwidth 1 and 2 (U+FF11 U+FF12) was read as INC-12.
_INCIDENT_ID = re.compile(r"^\s*(?:inc[-_ ]?|#)?0*([0-9]{1,9})\s*$", re.IGNORECASE)


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


SYSTEM = Actor("system")


@dataclass(frozen=True)
class DeclareLimit:
    """At most `count` declarations per person within `window`: a runaway script or a stuck
    integration can't bury the incidents channel (and a SEV1 behind it)."""

    count: int
    window: timedelta

    def span(self) -> str:
        minutes = int(self.window.total_seconds() // 60)
        return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
