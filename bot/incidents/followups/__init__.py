"""Follow-ups: the action items after an incident, with an owner, a due date, a priority, a
status and perhaps a ticket in the team's tracker (GitHub or Jira); and the rule that an
incident closes only once its follow-ups are triaged (CLOSE_REQUIRES).

A closed incident freezes the incident, not the work after it: follow-ups stay editable.
Exports to the tracker are outbox rows (bot.delivery.exports), exactly once.

    rules.py    settings, drafts, ids, statuses, priorities, due dates
    changes.py  add, change, done or won't do, export, the tracker's word back
    lists.py    one, an incident's, a filtered list, tickets to poll
    closing.py  the close rule (CLOSE_REQUIRES)
    digest.py   the weekly DM of overdue follow-ups
"""

from .changes import (
    SYSTEM_TRACKER,
    add_followup,
    change_followup,
    record_ticket,
    request_export,
    set_followup_status,
    ticket_state,
)
from .closing import (
    OVERRIDE_MAX,
    check_close,
    closable,
    close_refusal,
)
from .digest import (
    digest_due,
    queue_overdue_digest,
)
from .lists import (
    followups_of,
    get_followup,
    list_followups,
    mark_polled,
    tickets_to_poll,
)
from .rules import (
    CLOSE_RULES,
    DEFAULT_FOLLOWUP_RULES,
    DEFAULT_PRIORITIES,
    DUE_HINT,
    DUE_MAX_AHEAD,
    FOLLOWUP_ID_MAX,
    STATUS_LABELS,
    TITLE_MAX,
    TRACKERS,
    FollowUpDraft,
    FollowUpPage,
    FollowUpQuery,
    FollowUpRules,
    check_due,
    format_followup_id,
    is_overdue,
    parse_due,
    parse_followup_id,
    parse_followup_status,
)

__all__ = [
    "CLOSE_RULES",
    "DEFAULT_FOLLOWUP_RULES",
    "DEFAULT_PRIORITIES",
    "DUE_HINT",
    "DUE_MAX_AHEAD",
    "FOLLOWUP_ID_MAX",
    "OVERRIDE_MAX",
    "STATUS_LABELS",
    "SYSTEM_TRACKER",
    "TITLE_MAX",
    "TRACKERS",
    "FollowUpDraft",
    "FollowUpPage",
    "FollowUpQuery",
    "FollowUpRules",
    "add_followup",
    "change_followup",
    "check_close",
    "check_due",
    "closable",
    "close_refusal",
    "digest_due",
    "followups_of",
    "format_followup_id",
    "get_followup",
    "is_overdue",
    "list_followups",
    "mark_polled",
    "parse_due",
    "parse_followup_id",
    "parse_followup_status",
    "queue_overdue_digest",
    "record_ticket",
    "request_export",
    "set_followup_status",
    "ticket_state",
    "tickets_to_poll",
]
