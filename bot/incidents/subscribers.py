"""Subscribers: people told by DM of an incident's updates, status changes and resolution,
without joining its channel."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Incident, IncidentSubscriber

from .queries import get_incident
from .recording import audit, subscriber_ids
from .validation import _now
from .vocabulary import USER_ID, InvalidInput, format_incident_id
from .workflow import ACTIVE_STATUSES

log = logging.getLogger("bot.incidents")

# The incident's subscribers, in the order they subscribed: recording's query, which notify()
# reads too (recording can't import this module).
subscribers = subscriber_ids


def _person(user_id: str | None) -> str:
    user = (user_id or "").strip()
    if not USER_ID.match(user):
        raise InvalidInput(
            "Only a person can subscribe (a Slack user id such as U0123ABCD).", "user"
        )
    return user


def _add(session: Session, incident_id: int, user_id: str, now: datetime) -> bool:
    """The row, unless it is there already (two clicks at once insert it once)."""
    added = session.execute(
        insert(IncidentSubscriber)
        .values(incident_id=incident_id, user_id=user_id, created_at=now)
        .on_conflict_do_nothing()
        .returning(IncidentSubscriber.user_id)
    ).scalar()
    return added is not None


def subscribe_reporter(session: Session, incident: Incident, now: datetime) -> None:
    """At declare: the reporter is subscribed when the reporter is a person (not an API token,
    an alert or the local admin)."""
    if USER_ID.match(incident.reporter):
        _add(session, incident.id, incident.reporter, now)


def subscribe(
    session: Session, incident_id: int | str, user_id: str, *, now: datetime | None = None
) -> bool:
    """Subscribe a person (a Slack user id; InvalidInput otherwise) to an incident they may see;
    False when they already were (not an error: the surfaces say "already subscribed")."""
    user = _person(user_id)
    incident = get_incident(session, incident_id)
    added = _add(session, incident.id, user, _now(now))
    if added:
        audit(session, log, "%s subscribed by %s", format_incident_id(incident.id), user)
    return added


def unsubscribe(session: Session, incident_id: int | str, user_id: str) -> bool:
    """False when they were not subscribed."""
    user = _person(user_id)
    incident = get_incident(session, incident_id)
    removed = session.execute(
        delete(IncidentSubscriber)
        .where(IncidentSubscriber.incident_id == incident.id, IncidentSubscriber.user_id == user)
        .returning(IncidentSubscriber.user_id)
    ).scalar()
    if removed is not None:
        audit(session, log, "%s unsubscribed by %s", format_incident_id(incident.id), user)
    return removed is not None


def is_subscribed(session: Session, incident_id: int, user_id: str) -> bool:
    return (
        session.scalar(
            select(IncidentSubscriber.user_id).where(
                IncidentSubscriber.incident_id == incident_id,
                IncidentSubscriber.user_id == user_id,
            )
        )
        is not None
    )


def subscriptions(session: Session, user_id: str, *, active_only: bool = True) -> list[int]:
    """The incidents `user_id` is subscribed to, newest first (App Home)."""
    query = (
        select(Incident.id)
        .join(IncidentSubscriber, IncidentSubscriber.incident_id == Incident.id)
        .where(IncidentSubscriber.user_id == user_id)
        .order_by(Incident.created_at.desc(), Incident.id.desc())
    )
    if active_only:
        query = query.where(Incident.status.in_(ACTIVE_STATUSES))
    return list(session.scalars(query))
