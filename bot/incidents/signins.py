"""Signing in to the web: sessions and the local admin's links, kept in the database.

A session lives in a row, not only in the browser's signed cookie, so signing out ends it for
good: a copy of the cookie taken before is refused. The local admin's links are rows too,
because `python -m bot link` makes them in a process of its own. Only SHA-256 hashes of the
random ids are stored, and each is looked up by its hash (as API tokens are).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.models import LocalSignInLink, WebSession

from .recording import audit
from .tokens import hash_token

log = logging.getLogger("bot.incidents")

SESSION_LIFETIME = timedelta(hours=12)
LOCAL_LINK_MINUTES = 10
LOCAL_LINK_LIFETIME = timedelta(minutes=LOCAL_LINK_MINUTES)
# Longer ids than anyone issues are refused before they are hashed.
_MAX_TOKEN = 100


def start_session(session: Session, user_id: str, *, now: datetime | None = None) -> str:
    """A new web session for `user_id`; the id returned goes in the cookie and is not stored."""
    now = now or datetime.now(UTC)
    # Expired rows are of no further use; sign-ins are rare enough to sweep them here.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=hash_token(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.flush()
    return token


def session_user(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """Who a live session belongs to; None once it has ended or expired, or for a made-up id."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    return session.scalar(
        select(WebSession.user_id).where(
            WebSession.token_hash == hash_token(token),
            WebSession.ended_at.is_(None),
            WebSession.expires_at > (now or datetime.now(UTC)),
        )
    )


def end_session(session: Session, token: str, *, now: datetime | None = None) -> None:
    """Sign out: this session, in every copy of its cookie, is refused from now on."""
    if token and len(token) <= _MAX_TOKEN:
        session.execute(
            update(WebSession)
            .where(WebSession.token_hash == hash_token(token), WebSession.ended_at.is_(None))
            .values(ended_at=now or datetime.now(UTC))
        )


def create_local_link(session: Session, *, now: datetime | None = None) -> str:
    """A token for the local admin's sign-in link: it works once, within LOCAL_LINK_LIFETIME."""
    now = now or datetime.now(UTC)
    session.execute(delete(LocalSignInLink).where(LocalSignInLink.expires_at < now))
    token = secrets.token_urlsafe(32)
    expires = now + LOCAL_LINK_LIFETIME
    session.add(LocalSignInLink(token_hash=hash_token(token), created_at=now, expires_at=expires))
    session.flush()
    valid_until = expires.isoformat(timespec="seconds")
    audit(session, log, "local sign-in link created, valid until %s", valid_until)
    return token


def use_local_link(session: Session, token: str, *, now: datetime | None = None) -> bool:
    """Spend a local link: True the first time within its lifetime, False ever after."""
    if not token or len(token) > _MAX_TOKEN:
        return False
    now = now or datetime.now(UTC)
    # One statement, so two browsers opening the same link at once cannot both get in.
    used = session.scalar(
        update(LocalSignInLink)
        .where(
            LocalSignInLink.token_hash == hash_token(token),
            LocalSignInLink.used_at.is_(None),
            LocalSignInLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(LocalSignInLink.id)
    )
    return used is not None
