"""All Block Kit rendering: cards, thread replies, modals, lists, the Home tab.

Built with slack_sdk.models, whose `to_dict()` enforces Slack's per-element limits before anything
is sent; the incident list, the hottest rendering, is plain dicts that the tests hold equal to
what the models build. User text is truncated for display (never rejected by Slack) and escaped
wherever it lands in mrkdwn, so a title such as `<!channel> db down` pings nobody.

    text.py       escaping, clipping, mentions, labels
    messages.py   the card, thread replies, the digest
    coordination.py  the update's layout, roles, the channel's welcome, the DMs
    modals.py     declare, edit, note, resolve, attach, the incident picker
    forms.py      the update and handoff forms, subscribe / unsubscribe answers
    ephemeral.py  lists, details, help, confirmations, the Home tab
    reports.py    the stats message, the words around post-mortems and charts
"""

from .coordination import (
    CARD_LINK_MARK,
    WELCOME_LINKS,
    nudge_dm,
    role_dm,
    role_of,
    subscriber_dm,
    welcome,
    welcome_links,
)
from .ephemeral import (
    DETAIL_SCREENSHOTS,
    HELP,
    HOME_STATUS_CHOICES,
    delete_confirmation,
    help_text,
    home,
    incident_count,
    incident_detail,
    incident_list,
)
from .followups import followup_assigned_dm, followup_digest_dm
from .messages import (
    CARD_SCREENSHOTS,
    SNOOZE_CHOICES,
    card,
    card_text,
    channel_line,
    channel_topic,
    digest,
    posted,
    screenshot_line,
    screenshot_summary,
    size,
    thread_blocks,
    thread_text,
)
from .modals import (
    EDIT_FIELDS,
    IMAGE_FILETYPES,
    attach_from_message_modal,
    attach_modal,
    declare_modal,
    edit_modal,
    incident_option,
    note_modal,
    resolve_modal,
    timeline_note_modal,
)
from .reports import (
    charts_comment,
    not_posted,
    postmortem_coming,
    postmortem_comment,
    postmortem_links,
    stats_coming,
    stats_message,
)
from .text import (
    INPUT_MAX,
    SEVERITY_EMOJI,
    STATUS_EMOJI,
    STATUS_VERB,
    channel,
    clip,
    escape,
    metadata,
    ref,
    safe_url,
    severity_label,
    status_label,
    truncate,
    unescape,
    user,
    when,
)

__all__ = [
    "CARD_LINK_MARK",
    "CARD_SCREENSHOTS",
    "DETAIL_SCREENSHOTS",
    "EDIT_FIELDS",
    "HELP",
    "HOME_STATUS_CHOICES",
    "IMAGE_FILETYPES",
    "INPUT_MAX",
    "SEVERITY_EMOJI",
    "SNOOZE_CHOICES",
    "STATUS_EMOJI",
    "STATUS_VERB",
    "WELCOME_LINKS",
    "attach_from_message_modal",
    "attach_modal",
    "card",
    "card_text",
    "channel",
    "channel_line",
    "channel_topic",
    "charts_comment",
    "clip",
    "declare_modal",
    "delete_confirmation",
    "digest",
    "edit_modal",
    "escape",
    "followup_assigned_dm",
    "followup_digest_dm",
    "help_text",
    "home",
    "incident_count",
    "incident_detail",
    "incident_list",
    "incident_option",
    "metadata",
    "not_posted",
    "note_modal",
    "nudge_dm",
    "posted",
    "postmortem_coming",
    "postmortem_comment",
    "postmortem_links",
    "ref",
    "resolve_modal",
    "role_dm",
    "role_of",
    "safe_url",
    "screenshot_line",
    "screenshot_summary",
    "severity_label",
    "size",
    "stats_coming",
    "stats_message",
    "status_label",
    "subscriber_dm",
    "thread_blocks",
    "thread_text",
    "timeline_note_modal",
    "truncate",
    "unescape",
    "user",
    "welcome",
    "welcome_links",
    "when",
]
