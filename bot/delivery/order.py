"""Which row goes next: each place's rows in order, the most severe incident first, and the
Slack method and channel whose rate limit holds a row back.

Places: an incident's card and its thread, an incident's own channel, a person (what they are
told, bot.delivery.tell, whatever incident it is about), and a follow-up's export to its tracker
(bot.delivery.exports). Exports go after every due Slack row, and among themselves the most
severe incident's first: a ticket can wait a moment, an incident's card can't."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, func, literal, true
from sqlalchemy.orm import aliased

from db.models import Delivery, DeliveryAction, Incident, Severity

# The Slack method whose rate limit holds each kind of row back (posts otherwise).
LIMITED_BY = {
    DeliveryAction.UPDATE_CARD: "chat.update",
    DeliveryAction.DELETE_CARD: "chat.delete",
    DeliveryAction.UPDATE_CHANNEL: "chat.update",
    DeliveryAction.OPEN_CHANNEL: "conversations.create",
    DeliveryAction.ARCHIVE_CHANNEL: "conversations.archive",
    DeliveryAction.INVITE_CHANNEL: "conversations.invite",
    DeliveryAction.RENAME_CHANNEL: "conversations.rename",
    DeliveryAction.TELL_USER: "chat.postEphemeral",
    # Not Slack's: a tracker's rate limit holds back every export to it.
    DeliveryAction.EXPORT_FOLLOWUP: "tracker.create",
}
EXPORT = DeliveryAction.EXPORT_FOLLOWUP
CALL_METHOD = case(
    *((Delivery.action == action, literal(method)) for action, method in LIMITED_BY.items()),
    else_=literal("chat.postMessage"),
)
IN_OWN_CHANNEL = (
    DeliveryAction.ARCHIVE_CHANNEL,
    DeliveryAction.INVITE_CHANNEL,
    DeliveryAction.RENAME_CHANNEL,
    DeliveryAction.POST_CHANNEL,
    DeliveryAction.POST_SUMMARY,
    DeliveryAction.POST_WELCOME,
    DeliveryAction.UPDATE_CHANNEL,
)
TELL = DeliveryAction.TELL_USER
CALL_CHANNEL = case(
    (Delivery.action.in_(IN_OWN_CHANNEL), Incident.own_channel_id),
    # An ephemeral message's channel; a DM is held back by the person it goes to.
    (
        Delivery.action == TELL,
        func.coalesce(Delivery.payload["channel"].astext, Delivery.payload["user"].astext),
    ),
    # Not a channel: the tracker (bot.delivery.exports.place).
    (Delivery.action == EXPORT, literal("tracker:") + Delivery.payload["tracker"].astext),
    else_=func.coalesce(Incident.slack_channel_id, Delivery.payload["channel"].astext),
)
# SEV1 first; digests and the cards of deleted incidents last.
URGENCY = case(
    {severity.value: rank for rank, severity in enumerate(Severity)},
    value=Incident.severity,
    else_=len(Severity),
)
# Slack's rows before the trackers' (False sorts first).
SLACK_FIRST = Delivery.action == EXPORT


def only_exports(exports: bool | None) -> list[Any]:
    """None: every row; True: follow-ups' exports alone; False: every row but those."""
    if exports is None:
        return [true()]
    return [Delivery.action == EXPORT] if exports else [Delivery.action != EXPORT]


def _place(row: type[Delivery]) -> Any:
    """Where a row goes, within its incident: the incident's own channel (opened, invited,
    pinned, posted to, archived), or its card and the card's thread."""
    channel_actions = [DeliveryAction.OPEN_CHANNEL, *IN_OWN_CHANNEL]
    return case((row.action.in_(channel_actions), literal("channel")), else_=literal("card"))


def behind_earlier() -> Any:
    """A row waits while an earlier row for the same place is not done: each place gets its
    rows strictly in order, and a place Slack keeps refusing holds up no other place. The
    incident channel's steps (create, then invite and pin) are one place, so they stay ordered.

    A person is a place of their own across incidents, and rows without an incident are told
    too. The CASE runs only the subquery of the row's kind: an incident's through its index, a
    person's over the pending rows alone (the partial index), never the whole table. A
    follow-up's export is a place of its own: it waits for no card, and no card waits for it."""
    earlier = aliased(Delivery)
    waiting = (
        (earlier.id < Delivery.id) & earlier.delivered_at.is_(None) & earlier.failed_at.is_(None)
    )
    same_person = exists().where(
        waiting,
        earlier.action == TELL,
        earlier.payload["user"].astext == Delivery.payload["user"].astext,
    )
    same_place = exists().where(
        waiting,
        earlier.incident_id == Delivery.incident_id,
        earlier.action.not_in([TELL, EXPORT]),
        _place(earlier) == _place(Delivery),
    )
    same_followup = exists().where(
        waiting,
        earlier.action == EXPORT,
        earlier.payload["followup_id"] == Delivery.payload["followup_id"],
    )
    return case(
        (Delivery.action == TELL, same_person),
        (Delivery.action == EXPORT, same_followup),
        else_=same_place,
    )
