"""What Slack's refusals mean for an update: retry, wait for a person, or give up; and the words
that tell the person who made the change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.slack import blocks
from db.models import Delivery, DeliveryAction

from .calls import pending

# Retrying cannot help: record the failure and stop.
PERMANENT_ERRORS = frozenset(
    {
        "is_archived",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_blocks",
        "invalid_arguments",
        "no_text",
        "message_not_found",
        "thread_not_found",
        "cant_update_message",
        "cant_delete_message",
        "edit_window_closed",
        "card_missing",
    }
)
# A person must fix something (invite the bot, reinstall the app); keep retrying, slowly. A
# channel the bot can't see may be private without it: inviting the bot brings it back.
ACTION_NEEDED_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "missing_scope",
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "restricted_action",
        # A follow-up's export to a tracker whose settings are gone.
        "tracker_not_configured",
    }
)
# Of a card: the message itself is gone (deleted in Slack), while its channel is still there.
CARD_GONE_ERRORS = frozenset({"message_not_found", "thread_not_found", "card_missing"})


@dataclass
class Problem:
    """A delivery that did not go through, in terms a person can act on."""

    incident_ref: str
    channel: str | None
    error: str
    permanent: bool
    # Creating the incident's own channel, not posting to one.
    opening_channel: bool = False
    # Slack may have taken it (no answer in time, a 5xx after the post): it is looked up before
    # it is sent again, so the person must not be told it failed.
    in_doubt: bool = False
    # A message to a person (bot.delivery.tell), not an update: logged, never told in turn.
    telling: bool = False
    # A follow-up's export to its tracker ("FU-3"), not a Slack update.
    exporting: str | None = None

    @property
    def needs_action(self) -> bool:
        return self.error in ACTION_NEEDED_ERRORS

    def explain(self) -> str:
        if self.exporting is not None:
            return self._explain_export()
        if self.opening_channel:
            return self._explain_opening()
        where = blocks.channel(self.channel) if self.channel else "its channel"
        if self.error == "not_in_channel":
            return (
                f"I'm not a member of {where}, so I couldn't post {self.incident_ref} there. "
                "Invite me with `/invite @Incident Tracker`; the update is kept and goes out as "
                "soon as I'm in."
            )
        if self.error == "channel_not_found":
            return (
                f"I can't see the channel {where} (it may be private without me, or deleted), so "
                f"{self.incident_ref}'s update couldn't be posted there. The incident is saved and "
                "the update is kept: invite me to the channel and it goes out."
            )
        if self.error in CARD_GONE_ERRORS:
            return (
                f"{self.incident_ref}'s card in {where} is gone (deleted in Slack), so this "
                "update can't be posted under it. The incident and its timeline are saved: "
                f"`/incident show {self.incident_ref}`."
            )
        if self.error == "is_archived":
            return f"{where} is archived, so {self.incident_ref} can't be updated there."
        if self.needs_action:
            return (
                f"Slack refused to post {self.incident_ref} ({self.error}); an admin must fix "
                "the app's installation. The update is kept and will be retried."
            )
        if self.in_doubt and not self.permanent:
            return (
                f"Slack was slow to confirm {self.incident_ref}'s update ({self.error}), so I'm "
                "checking whether it arrived; if it didn't, it goes out once, shortly."
            )
        outcome = "It was not posted." if self.permanent else "It is kept and will be retried."
        return f"Slack didn't take the update to {self.incident_ref} ({self.error}). {outcome}"

    def _explain_export(self) -> str:
        if self.in_doubt and not self.permanent:
            return (
                f"The tracker was slow to confirm {self.exporting}'s ticket ({self.error}), so "
                "I'm checking whether it was made; if it wasn't, it is made once, shortly."
            )
        outcome = "It was not exported." if self.permanent else "I'll try again."
        return f"The tracker didn't take {self.exporting}'s ticket ({self.error}). {outcome}"

    def _explain_opening(self) -> str:
        why = {
            "restricted_action": "this workspace lets only some people create channels",
            "missing_scope": "the app lacks the channels:manage or groups:write scope: "
            "reinstall it from manifest.yml",
            "name_taken": "every name I tried is taken",
        }.get(self.error, self.error)
        outcome = "I won't try again." if self.permanent else "I'll try again."
        return (
            f"I couldn't open {self.incident_ref}'s own channel ({why}). The incident and its "
            f"card are fine. {outcome}"
        )


@dataclass
class DrainResult:
    delivered: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Posts whose outcome was unknown and that were found in Slack by their tag, not re-posted.
    found: int = 0


def undelivered(session: Session, incident_id: int) -> list[str]:
    """What Slack refused of an incident's updates, oldest first, and whether it is retried
    (what people were told about it is theirs, not the incident's record)."""
    return [
        f"{error or 'unknown error'} ({'gave up' if failed else 'will retry'})"
        for error, failed in session.execute(
            select(Delivery.last_error, Delivery.failed_at)
            .where(
                Delivery.incident_id == incident_id,
                Delivery.action != DeliveryAction.TELL_USER,
                Delivery.delivered_at.is_(None),
                Delivery.last_error.is_not(None),
                Delivery.last_error != "ratelimited",
            )
            .order_by(Delivery.id)
        )
    ]


# --- What waits: `python -m bot outbox status|discard` -----------------------------------------


@dataclass
class Backlog:
    """The updates waiting to be sent (neither delivered nor failed), by action."""

    by_action: dict[str, int]
    # The newest waiting row: a discard confirmed for this backlog leaves later ones alone.
    last_id: int | None
    oldest: datetime | None
    failed: int

    @property
    def waiting(self) -> int:
        return sum(self.by_action.values())


def backlog(session: Session) -> Backlog:
    rows = session.execute(
        select(Delivery.action, func.count(), func.max(Delivery.id), func.min(Delivery.created_at))
        .where(pending())
        .group_by(Delivery.action)
        .order_by(Delivery.action)
    ).all()
    failed = session.scalar(select(func.count()).where(Delivery.failed_at.is_not(None)))
    return Backlog(
        by_action={action.value: count for action, count, _, _ in rows},
        last_id=max((last for _, _, last, _ in rows), default=None),
        oldest=min((oldest for _, _, _, oldest in rows), default=None),
        failed=failed or 0,
    )


def discard(session: Session, up_to_id: int, reason: str, now: datetime) -> int:
    """Give up on the waiting updates up to `up_to_id`: they are marked failed with `reason`, so
    the record stays (and `/incident show` tells why an update never came) while the outbox
    treats them as done, and later rows of their incidents are no longer held behind them.

    A row a worker holds (claiming it, or leased while its call is in flight) is left alone:
    the worker records its outcome on it next."""
    free = (
        select(Delivery.id)
        .where(
            pending(),
            Delivery.id <= up_to_id,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
        )
        .with_for_update(skip_locked=True)
    )
    given_up = (
        update(Delivery)
        .where(Delivery.id.in_(free.scalar_subquery()))
        .values(failed_at=now, last_error=reason, sending_since=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return session.execute(given_up).rowcount
