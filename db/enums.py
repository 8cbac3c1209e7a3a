"""The fixed vocabularies of the models: stored as checked VARCHARs (db.models._enum), so a new
value is a migration that widens the CHECK."""

from __future__ import annotations

import enum


class Severity(enum.StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class Status(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Incidents still being worked on. Lists of them (the default list, the picker, the Home tab)
# have indexes of their own, which stay small however many incidents a team has closed.
ACTIVE_STATUSES = (Status.OPEN, Status.INVESTIGATING, Status.MITIGATED)


class EventKind(enum.StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    SEVERITY_CHANGED = "severity_changed"
    FIELD_CHANGED = "field_changed"
    ASSIGNED = "assigned"
    NOTE = "note"
    NOTE_DELETED = "note_deleted"
    SCREENSHOT_ADDED = "screenshot_added"
    SCREENSHOT_DELETED = "screenshot_deleted"
    REMINDER = "reminder"
    REMINDERS_SNOOZED = "reminders_snoozed"
    # A role other than the lead (the owner, an ASSIGNED event) taken, given or left: `field`
    # is the role's key, from/to the people.
    ROLE_ASSIGNED = "role_assigned"
    # A structured update: `text` the summary, details the impact and the promised next one;
    # field/from/to the status when the update moved it (one event, not two).
    STATUS_UPDATE = "status_update"
    # The promised next update is late: the lead and the comms role were nudged.
    UPDATE_OVERDUE = "update_overdue"
    # A SEV1 or SEV2 without a lead for LEAD_REMINDER_AFTER.
    LEAD_REMINDER = "lead_reminder"
    # A follow-up (an action item after the incident): added (`text` its title, details its id,
    # owner, due date, priority), changed (`field`, from/to: status, owner, due, priority,
    # title; details its id), or exported to the tracker (`to_value` the ticket's link).
    FOLLOWUP_ADDED = "followup_added"
    FOLLOWUP_CHANGED = "followup_changed"
    FOLLOWUP_EXPORTED = "followup_exported"


class DeliveryAction(enum.StrEnum):
    """What the delivery worker must do in Slack; it renders from the rows at send time."""

    POST_CARD = "post_card"
    UPDATE_CARD = "update_card"
    POST_THREAD = "post_thread"
    DELETE_CARD = "delete_card"
    POST_DIGEST = "post_digest"
    # The incident's own channel: create it (or adopt the one an earlier attempt made), invite.
    OPEN_CHANNEL = "open_channel"
    # A change's reply in the incident's own channel, beside the card's thread.
    POST_CHANNEL = "post_channel"
    # The summary pinned in the incident's channel: posted once, then edited with the topic.
    POST_SUMMARY = "post_summary"
    UPDATE_CHANNEL = "update_channel"
    # Closed long enough (INCIDENT_CHANNEL_ARCHIVE_AFTER): the incident's channel is archived.
    ARCHIVE_CHANNEL = "archive_channel"
    # Someone assigned to an incident that has its channel: invite them.
    INVITE_CHANNEL = "invite_channel"
    # The title changed: the incident's channel is renamed after it.
    RENAME_CHANNEL = "rename_channel"
    # A person told something after the ack (a refusal, a confirmation, a delivery problem):
    # ephemeral, a response_url answer or a DM (bot.delivery.tell).
    TELL_USER = "tell_user"
    # The incident channel's first message (what happened, roles, what to do, links), pinned,
    # then edited with the summary.
    POST_WELCOME = "post_welcome"
    # A follow-up made an issue in FOLLOWUP_TRACKER (GitHub or Jira), exactly once: payload
    # `followup_id`; found after an unknown outcome by its marker (bot.delivery.exports).
    EXPORT_FOLLOWUP = "export_followup"


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    WONT_DO = "wont_do"


class ReviewStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    DONE = "done"
