"""Subscribers: people told by DM of an incident's updates, status changes and resolution,
without joining its channel."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

log = logging.getLogger("bot.incidents")


# --- Interface for the other surfaces (bodies: helper "roles") ---------------------------------


def subscribe(
    session: Session, incident_id: int | str, user_id: str, *, now: datetime | None = None
) -> bool:
    """Subscribe a person (a Slack user id; InvalidInput otherwise) to an incident they may see;
    False when they already were (not an error: the surfaces say "already subscribed")."""
    raise NotImplementedError


def unsubscribe(session: Session, incident_id: int | str, user_id: str) -> bool:
    """False when they were not subscribed."""
    raise NotImplementedError


def subscribers(session: Session, incident_id: int) -> list[str]:
    """The incident's subscribers, in the order they subscribed."""
    raise NotImplementedError


def is_subscribed(session: Session, incident_id: int, user_id: str) -> bool:
    raise NotImplementedError


def subscriptions(session: Session, user_id: str, *, active_only: bool = True) -> list[int]:
    """The incidents `user_id` is subscribed to, newest first (App Home)."""
    raise NotImplementedError
