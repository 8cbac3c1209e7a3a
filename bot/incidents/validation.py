"""Cleaning what people type: trimmed, within its limits, never a NUL; people are user ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from db.models import (
    USER_REF_LENGTH,
)

from .vocabulary import (
    CHANNEL_ID,
    TITLE_MAX,
    TITLE_MIN,
    USER_ID,
    Actor,
    InvalidInput,
    actor_label,
)

# --- Validation --------------------------------------------------------------------------------


def _clean(
    value: str | None, field: str, max_len: int, *, label: str, min_len: int = 0
) -> str | None:
    """Trim `value`; None when empty. Lengths are counted in characters, emoji included."""
    cleaned = "" if value is None else value.strip()
    if "\x00" in cleaned:
        raise InvalidInput(f"{label} contains a NUL character, which isn't allowed.", field)
    if len(cleaned) > max_len:
        raise InvalidInput(
            f"{label} is too long: {len(cleaned):,} characters, the limit is {max_len:,}.", field
        )
    if min_len and len(cleaned) < min_len:
        raise InvalidInput(f"{label} must be at least {min_len} characters.", field)
    return cleaned or None


def _clean_title(value: str | None) -> str:
    title = _clean(value, "title", TITLE_MAX, label="Title", min_len=TITLE_MIN)
    assert title is not None  # min_len guarantees it
    return title


def _clean_category(value: str | None, categories: Sequence[str]) -> str | None:
    category = _clean(value, "category", 64, label="Category")
    if category is None:
        return None
    category = category.lower()
    if category not in categories:
        raise InvalidInput(
            f"Unknown category {category!r}. Use one of: {', '.join(categories)}.", "category"
        )
    return category


def _clean_user(value: str | None, field: str) -> str | None:
    """A person's Slack user id (U… or W…), or None; a mention such as <!channel> is refused."""
    user = _clean(value, field, USER_REF_LENGTH, label=field.capitalize())
    if user is not None and not USER_ID.match(user):
        raise InvalidInput(
            f"{field.capitalize()} must be a person (a Slack user id such as U0123ABCD).", field
        )
    return user


def _clean_card_channel(value: str | None, *, required: bool) -> str | None:
    """Where the card goes: a public or private channel's id, never a person or a DM."""
    if (value is None and required) or (value is not None and not CHANNEL_ID.match(value)):
        raise InvalidInput("Pick a channel for the incident's card.", "channel")
    return value


# Slack was launched in 2013; a message "from" before then, or from the future, is forged.
EARLIEST_MESSAGE = datetime(2013, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def _check_occurred_at(occurred_at: datetime | None, now: datetime) -> None:
    if occurred_at is not None and not EARLIEST_MESSAGE <= occurred_at <= now + CLOCK_SKEW:
        raise InvalidInput(
            f"The message's time ({occurred_at:%Y-%m-%d %H:%M} UTC) is not a real message time.",
            "note",
        )


def _reporter(actor: Actor) -> str:
    if actor_label(actor.user_id) is not None:
        return actor.user_id
    reporter = _clean_user(actor.user_id, "reporter")
    if reporter is None:
        raise InvalidInput("An incident needs a reporter.", "reporter")
    return reporter


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)
