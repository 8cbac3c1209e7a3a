"""The incident domain: vocabulary, workflow, changes, queries and screenshots.

It knows nothing of Slack or HTTP. Every function takes the caller's session and leaves the commit
to the caller, so a change, its timeline event and the outbox rows that will tell Slack land in one
transaction. Changes to one incident lock its row (`SELECT ... FOR UPDATE`): two people changing it
at once are serialised, and the second change is checked against what the first one left.

    vocabulary.py   limits, errors, Actor, severities, statuses, ids, people and channels
    workflow.py     the table of allowed transitions and the milestones a move stamps
    validation.py   cleaning what people type
    recording.py    the row lock, timeline events and outbox rows of a change
    changes.py      declare, change_status, edit, assign, notes, delete
    channels.py     which incidents get their own channel, its name, who is invited
    reminders.py    when an owner is next reminded, and snoozing it
    queries.py      get, timeline, list (filters, search, sort, pages), stats
    screenshots.py  image checks, storage and deduplication
"""

from .changes import (
    EDITABLE_FIELDS,
    IncidentDraft,
    add_note,
    assign,
    change_severity,
    change_status,
    check_can_delete,
    declare,
    delete_incident,
    delete_note,
    edit,
    fingerprint,
    link_note_source,
)
from .channels import (
    CHANNEL_MODES,
    ChannelRules,
    channel_name,
    check_name_template,
    queue_archives,
    slug,
)
from .queries import (
    COUNT_CAP,
    PAGE_MAX,
    SEARCH_MAX,
    SORT_SQL,
    IncidentQuery,
    IncidentRow,
    Page,
    Stats,
    Timings,
    find_by_card,
    get_incident,
    incident_in_channel,
    list_incidents,
    stats,
    timeline,
)
from .recording import (
    lock_incident,
    notify,
    record_event,
    touch,
)
from .reminders import (
    SNOOZE_MAX,
    remind,
    snooze_reminders,
)
from .validation import (
    CLOCK_SKEW,
    EARLIEST_MESSAGE,
)
from .vocabulary import (
    CAUSE_MAX,
    CHANNEL_ID,
    DEFAULT_CATEGORIES,
    DESCRIPTION_MAX,
    INCIDENT_ID_MAX,
    NOTE_MAX,
    PAGE_SIZE_MAX,
    RESOLUTION_MAX,
    SERVICE_MAX,
    SEVERITY_LABELS,
    SYSTEM,
    TITLE_MAX,
    TITLE_MIN,
    USER_ID,
    Actor,
    Conflict,
    DeclareLimit,
    IncidentError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    format_incident_id,
    parse_incident_id,
    parse_severity,
    parse_status,
    severity_choices,
)
from .workflow import (
    ACTIVE_STATUSES,
    ADMIN_TRANSITIONS,
    TRANSITIONS,
    WORKFLOW_ORDER,
    allowed_next_statuses,
    check_as_seen,
)

__all__ = [
    "ACTIVE_STATUSES",
    "ADMIN_TRANSITIONS",
    "CAUSE_MAX",
    "CHANNEL_ID",
    "CHANNEL_MODES",
    "CLOCK_SKEW",
    "COUNT_CAP",
    "DEFAULT_CATEGORIES",
    "DESCRIPTION_MAX",
    "EARLIEST_MESSAGE",
    "EDITABLE_FIELDS",
    "INCIDENT_ID_MAX",
    "NOTE_MAX",
    "PAGE_MAX",
    "PAGE_SIZE_MAX",
    "RESOLUTION_MAX",
    "SEARCH_MAX",
    "SERVICE_MAX",
    "SEVERITY_LABELS",
    "SNOOZE_MAX",
    "SORT_SQL",
    "SYSTEM",
    "TITLE_MAX",
    "TITLE_MIN",
    "TRANSITIONS",
    "USER_ID",
    "WORKFLOW_ORDER",
    "Actor",
    "ChannelRules",
    "Conflict",
    "DeclareLimit",
    "IncidentDraft",
    "IncidentError",
    "IncidentQuery",
    "IncidentRow",
    "InvalidInput",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Stats",
    "Timings",
    "TransitionNotAllowed",
    "add_note",
    "allowed_next_statuses",
    "assign",
    "change_severity",
    "change_status",
    "channel_name",
    "check_as_seen",
    "check_can_delete",
    "check_name_template",
    "declare",
    "delete_incident",
    "delete_note",
    "edit",
    "find_by_card",
    "fingerprint",
    "format_incident_id",
    "get_incident",
    "incident_in_channel",
    "link_note_source",
    "list_incidents",
    "lock_incident",
    "notify",
    "parse_incident_id",
    "parse_severity",
    "parse_status",
    "queue_archives",
    "record_event",
    "remind",
    "severity_choices",
    "slug",
    "snooze_reminders",
    "stats",
    "timeline",
    "touch",
]
