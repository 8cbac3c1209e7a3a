"""The weekly DM to each owner of overdue follow-ups (FOLLOWUP_DIGEST)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import (
    Delivery,
    DeliveryAction,
    FollowUp,
    FollowUpDigest,
    FollowUpStatus,
)

from .rules import (
    DM_FOLLOWUP_DIGEST,
    FollowUpRules,
)

log = logging.getLogger(__name__)


def digest_due(rules: FollowUpRules, zone: ZoneInfo, now: datetime) -> date | None:
    """This week's Monday, once this week's digest time has passed; None before it or if off."""
    if rules.digest is None:
        return None
    weekday, at = rules.digest
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    if (local.weekday(), local.time()) < (weekday, at):
        return None
    return monday


def queue_overdue_digest(
    session: Session, rules: FollowUpRules, zone: ZoneInfo, now: datetime
) -> list[str]:
    """If this week's follow-up digest is due (rules.digest in `zone`) and not yet sent (a
    FollowUpDigest row, claimed in the caller's transaction), queue one DM per owner with
    overdue follow-ups; returns the owners."""
    week = digest_due(rules, zone, now)
    if week is None:
        return []
    claimed = session.execute(
        insert(FollowUpDigest)
        .values(week=week, created_at=now)
        .on_conflict_do_nothing()
        .returning(FollowUpDigest.week)
    ).scalar()
    if claimed is None:
        return []
    today = now.astimezone(zone).date()
    overdue = session.execute(
        select(FollowUp.owner, FollowUp.id)
        .where(
            FollowUp.status == FollowUpStatus.OPEN,
            FollowUp.due_on < today,
            FollowUp.owner.is_not(None),
        )
        .order_by(FollowUp.owner, FollowUp.due_on, FollowUp.id)
    ).all()
    by_owner: dict[str, list[int]] = {}
    for owner, followup_id in overdue:
        by_owner.setdefault(owner, []).append(followup_id)
    for owner, ids in by_owner.items():
        session.add(
            Delivery(
                action=DeliveryAction.TELL_USER,
                payload={
                    "user": owner,
                    "via": "dm",
                    "about": DM_FOLLOWUP_DIGEST,
                    "followup_ids": ids,
                    "ref": f"{owner}'s overdue follow-ups",
                },
                next_attempt_at=now,
            )
        )
    log.info("follow-up digest for the week of %s: %d owner(s)", week, len(by_owner))
    return list(by_owner)
