"""Incident channels: which incidents get their own channel, what it is called, who is invited."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.models import Delivery, DeliveryAction, Incident, IncidentEvent, Severity, Status

from .recording import _require_editable, audit, lock_incident, notify
from .vocabulary import USER_ID, Actor, Conflict, InvalidInput, format_incident_id
from .workflow import ACTIVE_STATUSES

log = logging.getLogger("bot.incidents")

CHANNEL_MODES = ("never", "sev1-sev2", "always")
SERIOUS = frozenset({Severity.SEV1, Severity.SEV2})
# Slack's channel names: lowercase letters, digits, `-` and `_`, at most 80 characters.
NAME_MAX = 80
_NOT_IN_NAMES = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")
_PLACEHOLDERS = frozenset({"id", "slug", "severity"})
USER_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class ChannelRules:
    """INCIDENT_CHANNELS and its companions, as the domain uses them."""

    mode: str = "sev1-sev2"
    name_template: str = "inc-{id}-{slug}"
    private: bool = False
    # Severity ("SEV1") -> user ids and user group ids to invite.
    responders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # How long after closing the channel is archived; None: never.
    archive_after: timedelta | None = timedelta(days=1)

    @property
    def offered(self) -> bool:
        return self.mode != "never"

    def by_default(self, severity: Severity) -> bool:
        return self.mode == "always" or (self.mode == "sev1-sev2" and severity in SERIOUS)

    def wanted(self, severity: Severity, asked: bool) -> bool:
        """Whether an incident declared at `severity` gets a channel (`asked`: the form's box)."""
        return self.offered and (asked or self.by_default(severity))


def slug(text: str) -> str:
    """`Checkout: 502s on /pay!` -> `checkout-502s-on-pay`; accents dropped, not the letters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _DASHES.sub("-", _NOT_IN_NAMES.sub("-", ascii_text.lower())).strip("-_")


def channel_name(template: str, incident: Incident, suffix: str = "") -> str:
    """The channel's name under Slack's rules; `suffix` (`-2`) always survives the cut."""
    raw = template.format(
        id=incident.id, slug=slug(incident.title), severity=incident.severity.value.lower()
    )
    name = _DASHES.sub("-", _NOT_IN_NAMES.sub("-", raw.lower())).strip("-_")
    return name[: NAME_MAX - len(suffix)].rstrip("-_") + suffix


def check_name_template(template: str) -> None:
    """Raise ValueError unless `template` makes a usable, unique name for every incident."""
    names = set(re.findall(r"{(\w*)}", template))
    if not names <= _PLACEHOLDERS:
        unknown = ", ".join(sorted(names - _PLACEHOLDERS))
        raise ValueError(f"unknown placeholder(s) {unknown}; use {{id}}, {{slug}}, {{severity}}")
    if "id" not in names:
        raise ValueError("it must contain {id}, so that two incidents never share a name")


def invitees(rules: ChannelRules, incident: Incident) -> list[str]:
    """The reporter, owner, assignee and the severity's responders, each once, in that order."""
    people = [incident.reporter, incident.owner, incident.assignee]
    wanted = [p for p in people if p and USER_ID.match(p)]
    wanted += rules.responders.get(incident.severity.value, ())
    return list(dict.fromkeys(wanted))


def say_in_channel(
    session: Session, incident: Incident, say: str, now: datetime, **details: Any
) -> None:
    """A line from the bot in the incident's channel (sent exactly once, in order): `say` is
    what it is about (`opened`, `archived`, `reopened`, `not_invited`), worded by the surface."""
    session.add(
        Delivery(
            incident_id=incident.id,
            action=DeliveryAction.POST_CHANNEL,
            payload={"say": say, **details},
            next_attempt_at=now,
        )
    )


def queue_channel(
    session: Session,
    incident: Incident,
    rules: ChannelRules,
    created: IncidentEvent | None,
    now: datetime,
) -> None:
    """Queue the incident's channel after its card: open it (name and people fixed now), set
    its topic and pin its summary, then say there that the incident was declared (`created`),
    or that the channel was opened later."""
    incident.wants_own_channel = True
    payload = {
        "name": channel_name(rules.name_template, incident),
        "template": rules.name_template,
        "private": rules.private,
        "invite": invitees(rules, incident),
    }
    _queue_open(session, incident, payload, now)
    if created is not None:
        notify(session, incident, [created], now=now, card=False, thread=False)
    else:
        say_in_channel(session, incident, "opened", now)


def queue_archives(session: Session, rules: ChannelRules, now: datetime) -> list[int]:
    """Queue a last word and the archive for the channels of incidents closed long enough
    (each once); returns their incident ids."""
    if rules.archive_after is None:
        return []
    queued = exists().where(
        Delivery.incident_id == Incident.id,
        Delivery.action == DeliveryAction.ARCHIVE_CHANNEL,
        Delivery.failed_at.is_(None),
    )
    due = session.scalars(
        select(Incident)
        .where(
            Incident.status == Status.CLOSED,
            Incident.closed_at <= now - rules.archive_after,
            Incident.own_channel_id.is_not(None),
            Incident.own_channel_archived_at.is_(None),
            ~queued,
        )
        .order_by(Incident.closed_at)
        .with_for_update(skip_locked=True)
    ).all()
    for incident in due:
        say_in_channel(session, incident, "archived", now)
        session.add(
            Delivery(
                incident_id=incident.id, action=DeliveryAction.ARCHIVE_CHANNEL, next_attempt_at=now
            )
        )
    return [incident.id for incident in due]


def reopen_channel(session: Session, incident: Incident, now: datetime) -> None:
    """A bot can't unarchive: a reopened incident whose channel is archived gets a new one
    (`-2`, `-3`...) with the same people, which links the old one."""
    opened = _opened(session, incident)
    first = opened[0].payload
    previous = incident.own_channel_id
    incident.own_channel_id = incident.own_channel_name = None
    incident.own_channel_summary_ts = incident.own_channel_topic = None
    incident.own_channel_welcome_ts = None
    incident.own_channel_archived_at = None
    suffix = f"-{len(opened) + 1}"
    name = first["name"][: NAME_MAX - len(suffix)].rstrip("-_") + suffix
    _queue_open(session, incident, {**first, "name": name}, now)
    say_in_channel(session, incident, "reopened", now, previous=previous)


def _queue_open(
    session: Session, incident: Incident, payload: dict[str, Any], now: datetime
) -> None:
    """Open the channel (name and people fixed in `payload`), post and pin the welcome message
    (the channel's first), set its topic, pin its summary."""
    session.add(
        Delivery(
            incident_id=incident.id,
            action=DeliveryAction.OPEN_CHANNEL,
            payload=payload,
            next_attempt_at=now,
        )
    )
    session.add_all(
        Delivery(incident_id=incident.id, action=action, next_attempt_at=now)
        for action in (
            DeliveryAction.POST_WELCOME,
            DeliveryAction.UPDATE_CHANNEL,
            DeliveryAction.POST_SUMMARY,
        )
    )


def rename_later(session: Session, incident: Incident, now: datetime) -> None:
    """A new title renames the incident's open channel (keeping a reopened channel's `-n`)."""
    if incident.own_channel_id is None or incident.own_channel_archived_at is not None:
        return
    opened = _opened(session, incident)
    template = opened[0].payload.get("template") if opened else None
    if template is None:
        return
    suffix = f"-{len(opened)}" if len(opened) > 1 else ""
    session.add(
        Delivery(
            incident_id=incident.id,
            action=DeliveryAction.RENAME_CHANNEL,
            payload={"name": channel_name(template, incident, suffix)},
            next_attempt_at=now,
        )
    )


def _opened(session: Session, incident: Incident) -> list[Delivery]:
    """The incident's OPEN_CHANNEL rows, first first: one per channel it has had."""
    return list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.incident_id == incident.id,
                Delivery.action == DeliveryAction.OPEN_CHANNEL,
            )
            .order_by(Delivery.id)
        )
    )


def invite_later(session: Session, incident: Incident, users: list[str], now: datetime) -> None:
    """People newly assigned to an incident with a channel are invited to it."""
    people = [u for u in users if USER_ID.match(u)]
    if people and incident.wants_own_channel:
        session.add(
            Delivery(
                incident_id=incident.id,
                action=DeliveryAction.INVITE_CHANNEL,
                payload={"invite": people},
                next_attempt_at=now,
            )
        )


def open_channel(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    rules: ChannelRules,
    now: datetime | None = None,
) -> Incident:
    """Give an incident declared without one its own channel (`/incident channel INC-<n>`)."""
    now = now or datetime.now(UTC)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    ref = format_incident_id(incident.id)
    if not rules.offered:
        raise InvalidInput("Incident channels are turned off here (INCIDENT_CHANNELS=never).")
    if incident.slack_channel_id is None:
        raise InvalidInput(f"{ref} has no card in Slack, so no channel either.")
    if incident.own_channel_archived_at is not None and incident.status in ACTIVE_STATUSES:
        reopen_channel(session, incident, now)
    elif incident.wants_own_channel:
        raise Conflict(f"{ref} already has its channel{_named(incident.own_channel_name)}.")
    else:
        queue_channel(session, incident, rules, None, now)
    audit(session, log, "%s channel asked for by %s", ref, actor.user_id)
    return incident


def _named(name: str | None) -> str:
    return f", #{name}" if name else " (it is being opened)"
