"""Text for Slack: escaping, clipping, mentions, labels, and the small pieces every message uses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ContextBlock,
    MarkdownTextObject,
)

from bot import incidents
from bot.incidents import SEVERITY_LABELS, IncidentRow
from db.models import Incident, Severity, Status

SEVERITY_EMOJI = {
    Severity.SEV1: "🔴",
    Severity.SEV2: "🟠",
    Severity.SEV3: "🟡",
    Severity.SEV4: "🔵",
}
STATUS_EMOJI = {
    Status.OPEN: "🆕",
    Status.INVESTIGATING: "🔍",
    Status.MITIGATED: "🩹",
    Status.RESOLVED: "✅",
    Status.CLOSED: "📁",
}
STATUS_VERB = {
    Status.OPEN: "Open",
    Status.INVESTIGATING: "Investigating",
    Status.MITIGATED: "Mitigated",
    Status.RESOLVED: "Resolve",
    Status.CLOSED: "Close",
}
# Slack's input elements take at most 3,000 characters, whatever the domain allows.
INPUT_MAX = 3_000
_CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]+$")


# --- Text helpers ------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three mrkdwn control characters (`&` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of inbound text, so it is stored as the person typed it."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip(text: str, limit: int) -> str:
    """Escape, then fit in `limit` characters: escaping can grow text fivefold (`<` to `&lt;`),
    and Slack's limits count what is sent. Never cuts an entity in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut.rstrip() + "…"


def user(user_id: str | None) -> str:
    """A mention for a real user id; anything else is shown as escaped text."""
    if not user_id:
        return "nobody"
    label = incidents.actor_label(user_id)
    if label is not None:
        return escape(label)
    return f"<@{user_id}>" if incidents.USER_ID.match(user_id) else escape(user_id)


def safe_url(url: str) -> bool:
    """Links we print come from Slack (permalinks) or PUBLIC_URL; refuse what could break out of
    `<...|...>`."""
    return url.startswith(("https://", "http://")) and not re.search(r"[\s<>|]", url)


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>" if _CONVERSATION_ID.match(channel_id) else escape(channel_id)


def when(moment: datetime) -> str:
    """A date Slack shows in each reader's time zone, with a UTC fallback."""
    utc = moment.astimezone(UTC)  # the database's session time zone need not be UTC
    fallback = f"{utc.isoformat(' ', 'minutes')[:16]} UTC"
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def ref(incident: Incident | IncidentRow) -> str:
    return incidents.format_incident_id(incident.id)


def severity_label(severity: Severity) -> str:
    return f"{SEVERITY_EMOJI[severity]} {severity.value} ({SEVERITY_LABELS[severity]})"


def status_label(status: Status) -> str:
    return f"{STATUS_EMOJI[status]} {status.value.capitalize()}"


def _mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: no auto-linking of #channel names or bare URLs in what people typed.
    return MarkdownTextObject(text=text, verbatim=True)


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[_mrkdwn(text)])


def _quote(text: str, limit: int) -> str:
    return "\n".join(f"> {line}" for line in clip(text, limit).splitlines())


def metadata(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))
