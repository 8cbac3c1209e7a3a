"""Every callback_id, action_id and block_id in one place; manifest.yml shares the callback ids."""

import re

COMMAND = "/incident"

# Shortcuts (manifest.yml: features.shortcuts[].callback_id)
DECLARE_SHORTCUT = "report_incident"
TIMELINE_SHORTCUT = "add_to_incident_timeline"
ATTACH_SHORTCUT = "attach_screenshots"

# Modals (view callback_ids)
DECLARE_VIEW = "incident_declare"
EDIT_VIEW = "incident_edit"
NOTE_VIEW = "incident_note"
RESOLVE_VIEW = "incident_resolve"
TIMELINE_NOTE_VIEW = "incident_timeline_note"
ATTACH_VIEW = "incident_attach_screenshot"
ATTACH_FROM_MESSAGE_VIEW = "incident_attach_from_message"
UPDATE_VIEW = "incident_update"
HANDOFF_VIEW = "incident_handoff"

# Buttons and menus (action_ids). Status buttons are STATUS_ACTION + ":" + status, because
# action_ids must be unique within a block.
STATUS_ACTION = "incident_status"
STATUS_ACTION_PATTERN = re.compile(rf"^{STATUS_ACTION}:[a-z]+$")
ADD_NOTE_ACTION = "incident_add_note"
OPEN_CHANNEL_ACTION = "incident_open_channel"
EDIT_ACTION = "incident_edit"
ATTACH_ACTION = "incident_attach_screenshot"
SCREENSHOTS_ACTION = "incident_screenshots"
DELETE_SCREENSHOT_ACTION = "incident_delete_screenshot"
SNOOZE_ACTION = "incident_snooze_reminders"
SNOOZE_ACTION_PATTERN = re.compile(rf"^{SNOOZE_ACTION}:\d+$")
LIST_PAGE_ACTION = "incident_list_page"
LIST_PAGE_ACTION_PATTERN = re.compile(rf"^{LIST_PAGE_ACTION}:(prev|next)$")
DELETE_NOTE_ACTION = "incident_delete_note"
DELETE_INCIDENT_ACTION = "incident_delete"
HOME_DECLARE_ACTION = "home_declare"
HOME_SEVERITY_FILTER = "home_filter_severity"
HOME_STATUS_FILTER = "home_filter_status"
INCIDENT_PICKER = "incident_picker"
# Coordination. The reminder's old "Post update" button carries ADD_NOTE_ACTION (messages
# already in Slack keep it): its text, not its id, tells it from the card's "Add note".
UPDATE_ACTION = "incident_update"
TAKE_LEAD_ACTION = "incident_take_lead"
# TAKE_ROLE_ACTION + ":" + role key (the welcome message's "take this role" buttons).
TAKE_ROLE_ACTION = "incident_take_role"
TAKE_ROLE_ACTION_PATTERN = re.compile(rf"^{TAKE_ROLE_ACTION}:[a-z][a-z0-9_-]*$")
SUBSCRIBE_ACTION = "incident_subscribe"
UNSUBSCRIBE_ACTION = "incident_unsubscribe"
# The update form's status menu: picking Resolve grows the resolution and cause fields.
UPDATE_STATUS_ACTION = "update_status"

# Input blocks (block_ids; `response_action: errors` keys on these). Each holds one element
# whose action_id is the same string.
TITLE_BLOCK = "title"
DESCRIPTION_BLOCK = "description"
SEVERITY_BLOCK = "severity"
CATEGORY_BLOCK = "category"
SERVICE_BLOCK = "service"
OWNER_BLOCK = "owner"
CHANNEL_BLOCK = "channel"
OPEN_CHANNEL_BLOCK = "open_channel"
NOTE_BLOCK = "note"
CAUSE_BLOCK = "cause"
RESOLUTION_BLOCK = "resolution"
INCIDENT_BLOCK = "incident"
CAPTION_BLOCK = "caption"
FILES_BLOCK = "files"
SUMMARY_BLOCK = "summary"
IMPACT_BLOCK = "impact"
STATUS_BLOCK = UPDATE_STATUS_ACTION
NEXT_UPDATE_BLOCK = "next_update"
HANDOFF_BLOCK = "handoff"

# Follow-ups and the review (issue 23).
FOLLOWUP_SHORTCUT = "add_as_followup"
FOLLOWUP_VIEW = "incident_followup"
REVIEW_VIEW = "incident_review"
CLOSE_OVERRIDE_VIEW = "incident_close_override"
# FOLLOWUP_DONE_ACTION / FOLLOWUP_EXPORT_ACTION + ":" + the follow-up's id (several a message).
FOLLOWUP_DONE_ACTION = "followup_done"
FOLLOWUP_DONE_PATTERN = re.compile(rf"^{FOLLOWUP_DONE_ACTION}:\d+$")
FOLLOWUP_ADD_ACTION = "followup_add"
FOLLOWUP_EXPORT_ACTION = "followup_export"
FOLLOWUP_EXPORT_PATTERN = re.compile(rf"^{FOLLOWUP_EXPORT_ACTION}:\d+$")
REVIEW_ACTION = "incident_review"
CLOSE_ANYWAY_ACTION = "incident_close_anyway"
# The follow-up form's inputs (TITLE_BLOCK, OWNER_BLOCK, INCIDENT_BLOCK are shared).
DUE_BLOCK = "due"
PRIORITY_BLOCK = "priority"
SOURCE_BLOCK = "source"
# The review form's inputs are named as the review's fields (bot.incidents.review.REVIEW_FIELDS).
# The close override's reason.
OVERRIDE_BLOCK = "override"
