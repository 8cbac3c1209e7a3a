"""API tokens: machines' keys to the REST API, attributed by name, stored only as hashes."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from db.models import ApiToken

from .recording import audit
from .vocabulary import TOKEN_NAME, Actor, Conflict, InvalidInput, NotFound

log = logging.getLogger("bot.incidents")

# Recognisable in logs and by secret scanners; the rest is 256 random bits.
TOKEN_PREFIX = "itk_"
# Writing last_used_at on every request would make each API read a write.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """What is stored of a secret handed out once (an API token, a web session, a local link)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, *, is_admin: bool = False) -> tuple[str, ApiToken]:
    """A new token for `name`; the token itself is returned once and never stored."""
    if not TOKEN_NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a token name: use 1 to 40 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter or digit (e.g. alertmanager).",
            "name",
        )
    live = session.scalar(select(ApiToken.id).where(ApiToken.name == name, _live()))
    if live is not None:
        raise Conflict(f"A token named {name} already exists; revoke it first or pick a new name.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(token), is_admin=is_admin)
    session.add(row)
    session.flush()
    audit(session, log, "API token %s created (admin: %s)", name, is_admin)
    return token, row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name, ApiToken.id)))


def revoke_token(session: Session, name: str, *, now: datetime | None = None) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name, _live()).with_for_update())
    if row is None:
        raise NotFound(f"No live token is named {name!r} (`token list` shows them).")
    row.revoked_at = now or datetime.now(UTC)
    audit(session, log, "API token %s revoked", name)
    return row


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> Actor | None:
    """The actor a presented token stands for, or None for an unknown or revoked one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    # Looked up by hash: the comparison happens inside the index, on a value an attacker can't
    # steer byte by byte.
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token), _live()))
    if row is None:
        return None
    now = now or datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_PRECISION:
        row.last_used_at = now  # the caller commits: `session.dirty` says there is a write
    return Actor.token(row.name, is_admin=row.is_admin)


def _live() -> ColumnElement[bool]:
    return ApiToken.revoked_at.is_(None)
