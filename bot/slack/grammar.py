"""The `/incident` grammar: text in, a typed command out. Pure; the listener does the rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot import incidents, reports
from bot.incidents import IncidentQuery, InvalidInput
from db.models import Severity, Status

# Slack sends mentions as <@U123|name> (should_escape: true in the manifest) or <@U123>.
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SEVERITY_TOKEN = re.compile(r"^(?:sev[-_]?[1-4]|p[1-4])$", re.IGNORECASE)


@dataclass
class Command:
    name: str
    incident: str | None = None
    text: str = ""
    status: Status | None = None
    severity: Severity | None = None
    # For assign: owner or assignee; for role: the role's key as typed (the domain knows them).
    role: str = "assignee"
    # For assign and role: a user id, or None to unassign.
    user: str | None = None
    query: IncidentQuery = field(default_factory=IncidentQuery)
    # For stats: how many weeks back.
    weeks: int = reports.WEEKS_DEFAULT
    # For followup: the due date as typed ("2026-12-20", "in 2w"), read by followups.parse_due.
    due: str | None = None
    # For followup_edit: the follow-up as typed (FU-3); `text` the mark (done, wont_do, open).
    followup: str | None = None
    # For followups: the viewer's own, the overdue ones.
    mine: bool = False
    overdue: bool = False


class UsageError(InvalidInput):
    pass


def _split(text: str) -> tuple[str, str]:
    # Any whitespace separates words: people press Shift+Enter after an id.
    head, *rest = re.split(r"\s+", text.strip(), maxsplit=1)
    return head, rest[0].strip() if rest else ""


# In an incident's own channel the incident is implied; another one is named as INC-<n> only
# (a bare number there is a severity, a note's first word...).
_EXPLICIT_ID = re.compile(r"^inc-\d+$", re.IGNORECASE)


def _need_id(name: str, rest: str, implied: Callable[[], str | None]) -> tuple[str, str]:
    incident, after = _split(rest)
    if incident and _EXPLICIT_ID.match(incident):
        return incident, after
    here = implied()
    if here is not None:
        return here, rest
    if not incident:
        raise UsageError(f"Which incident? Usage: `/incident {name} <id> ...` (e.g. INC-12).")
    incidents.parse_incident_id(incident)
    return incident, after


def _nowhere() -> str | None:
    return None


def _status_and_note(rest: str) -> tuple[Status, str]:
    words = rest.split()
    if not words:
        allowed = ", ".join(s.value for s in Status)
        raise UsageError(
            f"Which status? Usage: `/incident status <id> <status> [note]` ({allowed})."
        )
    # Two-word aliases first ("in progress"), then one word.
    if len(words) >= 2:
        try:
            return incidents.parse_status(" ".join(words[:2])), " ".join(words[2:])
        except InvalidInput:
            pass
    return incidents.parse_status(words[0]), " ".join(words[1:])


def parse_list_filters(text: str, viewer: str) -> IncidentQuery:
    """`active` is the default; a status or `all` replaces it. Unknown words are search terms."""
    query = IncidentQuery(active=True)
    statuses: list[Status] = []
    severities: list[Severity] = []
    words: list[str] = []
    for token in text.split():
        lowered = token.lower()
        if lowered == "all":
            query.active = False
        elif lowered == "active":
            query.active = True
        elif lowered == "mine":
            query.involving = viewer
        elif _SEVERITY_TOKEN.match(token):
            severities.append(incidents.parse_severity(token))
        elif lowered.startswith("service:") and len(token) > 8:
            query.services = (token[8:],)
        elif lowered.startswith("category:") and len(token) > 9:
            query.categories = (token[9:],)
        elif lowered in {s.value for s in Status}:
            statuses.append(Status(lowered))
        else:
            words.append(token)
    if statuses:
        query.active = False
        query.statuses = statuses
    query.severities = severities
    query.text = " ".join(words) or None
    return query


def parse(text: str, viewer: str, implied: Callable[[], str | None] = _nowhere) -> Command:
    """`implied()`: the incident whose own channel the command was typed in, if any; asked
    only when the command names no incident as INC-<n>."""
    head, rest = _split(text)
    name = head.lower()
    if not name:
        return Command("declare")
    if name in {"help", "?"}:
        return Command("help")
    if name in {"declare", "new"}:
        return Command("declare", text=rest)
    if name in {"list", "ls"}:
        return Command("list", text=rest, query=parse_list_filters(rest, viewer))
    if name == "stats":
        try:
            return Command("stats", weeks=reports.parse_weeks(rest))
        except InvalidInput as error:
            raise UsageError(f"{error} Usage: `/incident stats [weeks]`.") from error
    if name == "post-mortem":
        name = "postmortem"
    if name in {
        "show",
        "status",
        "sev",
        "severity",
        "note",
        "assign",
        "edit",
        "delete",
        "screenshots",
        "channel",
        "postmortem",
    }:
        incident, rest = _need_id(name, rest, implied)
    elif name in COORDINATION:
        return _coordination(name, rest, viewer, implied)
    elif name in FOLLOWUP_COMMANDS:
        return _followup_command(name, rest, viewer, implied)
    else:
        # Anything else is the title of a new incident.
        return Command("declare", text=text.strip())
    match name:
        case "show" | "edit" | "delete" | "screenshots" | "channel" | "postmortem":
            return Command(name, incident=incident)
        case "status":
            status, note = _status_and_note(rest)
            return Command("status", incident=incident, status=status, text=note)
        case "sev" | "severity":
            level, note = _split(rest)
            if not level:
                raise UsageError("Which severity? Usage: `/incident sev <id> <sev1..sev4> [note]`.")
            return Command(
                "severity", incident=incident, severity=incidents.parse_severity(level), text=note
            )
        case "note":
            if not rest:
                raise UsageError("The note is empty. Usage: `/incident note <id> <text>`.")
            return Command("note", incident=incident, text=rest)
    # assign
    role, who = _split(rest)
    if role.lower() in {"owner", "assignee"}:
        role = role.lower()
    else:
        role, who = "assignee", rest
    user_id = _person(
        who,
        viewer,
        "Who? Usage: `/incident assign <id> [owner|assignee] @someone` (or `me`, `nobody`).",
    )
    return Command("assign", incident=incident, role=role, user=user_id)


def _person(who: str, viewer: str, usage: str) -> str | None:
    """`me`, `nobody` or a mention: a user id, or None for nobody."""
    if who.lower() == "me":
        return viewer
    if who.lower() in {"nobody", "none", "-"}:
        return None
    if match := _MENTION.match(who):
        return match.group(1)
    raise UsageError(usage)


# Words that were once the first word of a title: `/incident update failed` now names the update
# subcommand, and `/incident declare <title>` always declares.
COORDINATION = frozenset({"update", "role", "subscribe", "unsubscribe"})
_USAGE = {
    "update": "`/incident update <id> [summary]`",
    "role": "`/incident role <id> <role> @someone|me|nobody`",
    "subscribe": "`/incident subscribe <id>`",
    "unsubscribe": "`/incident unsubscribe <id>`",
}
ROLE_WHO = (
    "Who? Usage: `/incident role <id> <role> @someone|me|nobody` (e.g. `/incident role INC-12 "
    "comms me`)."
)


def _coordination(name: str, rest: str, viewer: str, implied: Callable[[], str | None]) -> Command:
    try:
        incident, rest = _need_id(name, rest, implied)
    except InvalidInput as error:
        words = f"{name} {rest}".strip()
        declare = (
            f" To declare an incident titled that: `/incident declare {words}`." if rest else ""
        )
        message = str(error)
        if "Usage:" not in message:
            message += f" Usage: {_USAGE[name]}."
        raise UsageError(message + declare) from error
    match name:
        case "update":
            # Anything after the id starts the summary.
            return Command("update", incident=incident, text=rest)
        case "subscribe" | "unsubscribe":
            if rest:
                raise UsageError(f"Only the incident, please. Usage: {_USAGE[name]}.")
            return Command(name, incident=incident)
    role, who = _split(rest)
    if not role:
        raise UsageError(f"Which role? Usage: {_USAGE['role']} (`/incident help` lists the roles).")
    role = role.lower()
    if role == "owner":  # the lead is the incident's owner
        role = "lead"
    return Command("role", incident=incident, role=role, user=_person(who, viewer, ROLE_WHO))


# --- Follow-ups and the review ---------------------------------------------------------------

FOLLOWUP_COMMANDS = frozenset({"followup", "follow-up", "followups", "follow-ups", "review"})
FOLLOWUP_USAGE = "`/incident followup <id> <title> [@owner] [due 2026-12-20|in 2w]`"
FOLLOWUP_EDIT_USAGE = (
    "`/incident followup FU-3 [done|wontdo|reopen] [@owner] [due 2026-12-20|in 2w]`"
)
_FOLLOWUP_REF = re.compile(r"^fu-?\d+$", re.IGNORECASE)
# What a follow-up may be marked from the command (followups.parse_followup_status reads them).
_FOLLOWUP_MARKS = {
    "done": "done",
    "wontdo": "wont_do",
    "wont do": "wont_do",
    "won't do": "wont_do",
    "won\u2019t do": "wont_do",  # a phone's apostrophe
    "reopen": "open",
    "open": "open",
}
FOLLOWUPS_USAGE = "`/incident followups [mine|overdue|<id>]`"
REVIEW_USAGE = "`/incident review <id>`"
# Read only at the end of the text, so that a title may say "due" ("Fix the due-date bug").
_TRAILING_MENTION = re.compile(r"(?:^|\s+)<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
# A due date that looks like one: an ISO date, a span (2w, 3d, 10 days), tomorrow. Anything
# else after "due" is the title's ("Review the due diligence").
_DUE_WORD = r"(?:\d{4}-\d{1,2}-\d{1,2}|\d+\s*[a-z]+|today|tomorrow)"
# A bare "in ..." is a due date only in the units due dates take ("Migrate in 5 regions" is a
# title).
_SPAN = r"\d+\s*(?:d|w|days?|weeks?)"
_TRAILING_DUE = re.compile(
    rf"(?:^|\s+)(?:due\s+(?P<due>(?:in\s+)?{_DUE_WORD})|(?P<span>in\s+{_SPAN}))$",
    re.IGNORECASE,
)


def split_followup(text: str) -> tuple[str, str | None, str | None]:
    """`<title> [@owner] [due X|in X]` (owner and due date in either order, at the end only):
    the title, the owner's user id, the due date as typed."""
    title, owner, due = text.strip(), None, None
    for _ in range(2):
        if owner is None and (match := _TRAILING_MENTION.search(title)):
            owner, title = match.group(1), title[: match.start()].rstrip()
        elif due is None and (match := _TRAILING_DUE.search(title)):
            due = (match.group("due") or match.group("span")).strip()
            title = title[: match.start()].rstrip()
    return title, owner, due


def _followup_command(
    name: str, rest: str, viewer: str, implied: Callable[[], str | None]
) -> Command:
    name = name.replace("-", "")
    if name == "followups":
        return _followups_filters(rest, implied)
    usage = FOLLOWUP_USAGE if name == "followup" else REVIEW_USAGE
    head, tail = _split(rest)
    if name == "followup" and _FOLLOWUP_REF.match(head):
        return _followup_edit(head, tail)
    try:
        incident, rest = _need_id(name, rest, implied)
    except InvalidInput as error:
        message = str(error)
        if "Usage:" not in message:
            message += f" Usage: {usage}."
        raise UsageError(message) from error
    if name == "review":
        if rest:
            raise UsageError(f"Only the incident, please. Usage: {usage}.")
        return Command("review", incident=incident)
    title, owner, due = split_followup(rest)
    if not title:
        raise UsageError(f"What is the follow-up? Usage: {usage}.")
    return Command("followup", incident=incident, text=title, user=owner, due=due)


def _followup_edit(followup: str, rest: str) -> Command:
    """`FU-3 [done|wontdo|reopen] [@owner] [due X]`: a change to a follow-up (a triage: who
    and by when, or won't do) in `text` the mark, `user` and `due` as for a new one."""
    mark, owner, due = split_followup(rest)
    mark = " ".join(mark.lower().split())
    if mark and mark not in _FOLLOWUP_MARKS:
        raise UsageError(f"{mark!r} isn't a change to a follow-up. Usage: {FOLLOWUP_EDIT_USAGE}.")
    if not (mark or owner or due):
        raise UsageError(f"What should change? Usage: {FOLLOWUP_EDIT_USAGE}.")
    return Command(
        "followup_edit",
        followup=followup,
        text=_FOLLOWUP_MARKS.get(mark, ""),
        user=owner,
        due=due,
    )


def _followups_filters(rest: str, implied: Callable[[], str | None]) -> Command:
    command = Command("followups")
    for word in rest.split():
        lowered = word.lower()
        if lowered == "mine":
            command.mine = True
        elif lowered == "overdue":
            command.overdue = True
        elif command.incident is None and re.match(r"^(?:inc-|#)?\d+$", lowered):
            incidents.parse_incident_id(word)
            command.incident = word
        else:
            raise UsageError(f"{word!r} is not a filter of follow-ups. Usage: {FOLLOWUPS_USAGE}.")
    if not rest.strip():
        # In an incident's channel: its follow-ups; elsewhere every open one.
        command.incident = implied()
    return command
