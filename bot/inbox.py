"""Slack's events, acted on once: Slack redelivers them (HTTP retries, Socket Mode reconnects)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import ProcessedEvent


def first_time(session: Session, event_id: str) -> bool:
    """Record `event_id`; False when it was recorded before (a redelivery to ignore)."""
    recorded = session.execute(
        insert(ProcessedEvent)
        .values(event_id=event_id)
        .on_conflict_do_nothing()
        .returning(ProcessedEvent.event_id)
    ).scalar()
    return recorded is not None
