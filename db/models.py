"""SQLAlchemy 2 typed models; the migrations in db/migrations must match them (`alembic check`)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

# The rest of the bot imports the vocabularies from here too.
from db.enums import (
    ACTIVE_STATUSES,
    DeliveryAction,
    EventKind,
    FollowUpStatus,
    ReviewStatus,
    Severity,
    Status,
)

USER_REF_LENGTH = 64
CATEGORY_LENGTH = 64
INTAKE_FINGERPRINT_LENGTH = 200
TOKEN_NAME_LENGTH = 40
ROLE_KEY_LENGTH = 32
PRIORITY_LENGTH = 32


_ACTIVE = sql_text(f"status IN ({', '.join(repr(s.value) for s in ACTIVE_STATUSES)})")


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # A checked VARCHAR, not a native PG enum, so adding a value is a plain migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _timestamp(nullable: bool = True) -> Any:
    return mapped_column(DateTime(timezone=True), nullable=nullable)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(120))
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"))
    status: Mapped[Status] = mapped_column(_enum(Status, "status"))
    category: Mapped[str | None] = mapped_column(String(CATEGORY_LENGTH))
    reporter: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    owner: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))
    assignee: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))
    cause: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = _timestamp()
    mitigated_at: Mapped[datetime | None] = _timestamp()
    resolved_at: Mapped[datetime | None] = _timestamp()
    closed_at: Mapped[datetime | None] = _timestamp()
    slack_team_id: Mapped[str | None] = mapped_column(String(32))
    # Its own channel: wanted at declaration; the id and name once Slack made it.
    wants_own_channel: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    own_channel_id: Mapped[str | None] = mapped_column(String(32))
    own_channel_name: Mapped[str | None] = mapped_column(String(80))
    # Its pinned summary (the card, edited on every change) and the topic last set there.
    own_channel_summary_ts: Mapped[str | None] = mapped_column(String(32))
    own_channel_topic: Mapped[str | None] = mapped_column(String(250))
    own_channel_archived_at: Mapped[datetime | None] = _timestamp()
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    # When the next "no update for a while" reminder is due; NULL after every change, so the
    # scheduler recomputes it from the severity's cadence (kept here to survive restarts).
    next_reminder_at: Mapped[datetime | None] = _timestamp()
    # The next structured update promised ("next update in 30m"); unlike next_reminder_at a
    # change doesn't clear it, only the next update does. While set, it replaces the severity's
    # reminders. `update_nudge_at`: when the lead and comms role are next nudged about it.
    next_update_at: Mapped[datetime | None] = _timestamp()
    update_nudge_at: Mapped[datetime | None] = _timestamp()
    # Since when the incident has had no lead (NULL while it has one), and the last "no lead"
    # reminder: SEV1 and SEV2 are reminded once per LEAD_REMINDER_AFTER.
    leaderless_since: Mapped[datetime | None] = _timestamp()
    lead_reminded_at: Mapped[datetime | None] = _timestamp()
    # The welcome message in its own channel, edited as roles are taken.
    own_channel_welcome_ts: Mapped[str | None] = mapped_column(String(32))
    # The review (post-mortem): the impact window (defaults: declared and resolved), what
    # customers saw, why it happened and what the team learnt, and where the review stands.
    impact_started_at: Mapped[datetime | None] = _timestamp()
    impact_ended_at: Mapped[datetime | None] = _timestamp()
    customer_impact: Mapped[str | None] = mapped_column(Text)
    contributing_factors: Mapped[str | None] = mapped_column(Text)
    went_well: Mapped[str | None] = mapped_column(Text)
    went_badly: Mapped[str | None] = mapped_column(Text)
    review_status: Mapped[ReviewStatus] = mapped_column(
        _enum(ReviewStatus, "review_status"), server_default=sql_text("'draft'")
    )
    reviewer: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))
    version: Mapped[int] = mapped_column(Integer, server_default=sql_text("1"))
    # An alerting tool's key for the problem (`/api/v1/intake`): while the incident is active, the
    # same key adds a note to it instead of declaring a second incident.
    intake_fingerprint: Mapped[str | None] = mapped_column(String(INTAKE_FINGERPRINT_LENGTH))
    # The words of title, description and service for full-text search, kept by a trigger
    # (migration 0006 says why not a generated column); never loaded into Python.
    search_vector: Mapped[str | None] = deferred(mapped_column(TSVECTOR))
    # The substring search's text before 0006, unread since: replicas of the release before it
    # still search by it during a rolling upgrade. The next migration can drop it.
    search_text: Mapped[str] = deferred(
        mapped_column(
            Text,
            Computed(
                "title || ' ' || coalesce(description, '') || ' ' || coalesce(service, '')",
                persisted=True,
            ),
        )
    )

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.id", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("char_length(btrim(title)) >= 3", name="title_not_blank"),
        Index("ix_incidents_status_created", "status", "created_at"),
        # Lists page through these in their sort's order, ties broken by id.
        Index("ix_incidents_created_id", "created_at", "id"),
        Index("ix_incidents_updated_id", "updated_at", "id"),
        Index("ix_incidents_severity_id", "severity", sql_text("id DESC")),
        Index("ix_incidents_active_created_id", "created_at", "id", postgresql_where=_ACTIVE),
        Index("ix_incidents_active_updated_id", "updated_at", "id", postgresql_where=_ACTIVE),
        Index(
            "ix_incidents_active_severity_id",
            "severity",
            sql_text("id DESC"),
            postgresql_where=_ACTIVE,
        ),
        Index("ix_incidents_service_lower", func.lower(sql_text("service"))),
        Index("ix_incidents_owner", "owner"),
        Index("ix_incidents_reporter", "reporter"),
        Index("ix_incidents_next_reminder_at", "next_reminder_at"),
        # The scheduler's sweeps read only incidents with a promise or without a lead.
        Index(
            "ix_incidents_update_nudge_at",
            "update_nudge_at",
            postgresql_where=sql_text("update_nudge_at IS NOT NULL"),
        ),
        Index(
            "ix_incidents_leaderless_since",
            "leaderless_since",
            postgresql_where=sql_text("leaderless_since IS NOT NULL"),
        ),
        Index("ix_incidents_own_channel_id", "own_channel_id", unique=True),
        Index(
            "ix_incidents_intake_fingerprint",
            "intake_fingerprint",
            postgresql_where=sql_text("intake_fingerprint IS NOT NULL"),
        ),
        Index("ix_incidents_search_vector", "search_vector", postgresql_using="gin"),
        # One per severity: a search sorted by severity reads a severity where its words are rare
        # from these (bot.incidents.queries.SEVERITY_SCAN says why).
        *(
            Index(
                f"ix_incidents_search_vector_{severity.value.lower()}",
                "search_vector",
                postgresql_using="gin",
                postgresql_where=sql_text(f"severity = '{severity.value}'"),
            )
            for severity in Severity
        ),
    )


class IncidentEvent(Base):
    """The timeline and the audit log in one table."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, "event_kind"))
    actor: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    # When it happened (a note taken from a Slack message keeps the message's time) ...
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # ... and when we wrote it down.
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    field: Mapped[str | None] = mapped_column(String(32))
    from_value: Mapped[str | None] = mapped_column(Text)
    to_value: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    deleted_at: Mapped[datetime | None] = _timestamp()
    deleted_by: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))

    incident: Mapped[Incident] = relationship(back_populates="events")

    __table_args__ = (Index("ix_incident_events_incident_occurred", "incident_id", "occurred_at"),)


class IncidentRole(Base):
    """Who holds a role (INCIDENT_ROLES) in an incident: at most one person per role. The lead
    is the incident's `owner`, not a row here."""

    __tablename__ = "incident_roles"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(ROLE_KEY_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    assigned_by: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_incident_roles_user_id", "user_id"),)


class IncidentSubscriber(Base):
    """A person told by DM of an incident's updates, status changes and resolution."""

    __tablename__ = "incident_subscribers"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(USER_REF_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # "My subscriptions" (App Home) reads by person.
    __table_args__ = (Index("ix_incident_subscribers_user_id", "user_id"),)


class FollowUp(Base):
    """An action item after an incident: an owner, a due date, a priority, a status, and
    perhaps a ticket in FOLLOWUP_TRACKER. Closing the incident doesn't freeze it."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))
    due_on: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[str] = mapped_column(String(PRIORITY_LENGTH))
    status: Mapped[FollowUpStatus] = mapped_column(
        _enum(FollowUpStatus, "followup_status"), server_default=sql_text("'open'")
    )
    created_by: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Who marked it done or won't do, and when (NULL while open).
    closed_by: Mapped[str | None] = mapped_column(String(USER_REF_LENGTH))
    closed_at: Mapped[datetime | None] = _timestamp()
    # The Slack message it was made from ("Add as follow-up").
    source_permalink: Mapped[str | None] = mapped_column(Text)
    # Its ticket: the tracker ("github", "jira"), its key ("owner/repo#12", "OPS-12") and link.
    # `export_requested_at`: an export is queued (once); `ticket_checked_at`: last polled.
    tracker: Mapped[str | None] = mapped_column(String(16))
    ticket_key: Mapped[str | None] = mapped_column(String(200))
    ticket_url: Mapped[str | None] = mapped_column(Text)
    export_requested_at: Mapped[datetime | None] = _timestamp()
    ticket_checked_at: Mapped[datetime | None] = _timestamp()
    version: Mapped[int] = mapped_column(Integer, server_default=sql_text("1"))

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("char_length(btrim(title)) >= 3", name="followup_title_not_blank"),
        Index("ix_followups_incident_id", "incident_id"),
        Index("ix_followups_owner_status", "owner", "status"),
        Index(
            "ix_followups_open_due_on",
            "due_on",
            postgresql_where=sql_text("status = 'open'"),
        ),
        Index(
            "ix_followups_ticket",
            "tracker",
            "ticket_key",
            unique=True,
            postgresql_where=sql_text("ticket_key IS NOT NULL"),
        ),
    )


class FollowUpDigest(Base):
    """One row per week the owners' overdue follow-ups were DMed, so several schedulers send it
    once (`week` is that week's Monday in TIMEZONE)."""

    __tablename__ = "followup_digests"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Screenshot(Base):
    __tablename__ = "screenshots"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: listing screenshots must never pull the image bytes.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    slack_file_id: Mapped[str | None] = mapped_column(String(32))
    uploaded_by: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    source_permalink: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("incident_id", "sha256", name="uq_screenshots_incident_sha256"),
    )


class Delivery(Base):
    """Outbox: a Slack side effect of a change, written in the same transaction as the change."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # SET NULL: deleting an incident must not drop the delivery that removes its card.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident_events.id", ondelete="SET NULL")
    )
    action: Mapped[DeliveryAction] = mapped_column(_enum(DeliveryAction, "delivery_action"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = _timestamp()
    failed_at: Mapped[datetime | None] = _timestamp()
    # Set, and committed, before a post: a post whose outcome is unknown (a timeout, a dropped
    # connection, a worker that died) leaves it set, and its message is looked for by its tag
    # before posting again. No other worker takes the row before `lease_until`.
    sending_since: Mapped[datetime | None] = _timestamp()
    lease_until: Mapped[datetime | None] = _timestamp()
    # What Slack holds for this row: a message's ts (posted, or found by its tag), or the id of
    # the channel it opened.
    slack_ts: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_deliveries_incident", "incident_id"),
        Index("ix_deliveries_event", "event_id"),
        Index(
            "ix_deliveries_pending",
            "next_attempt_at",
            postgresql_where=sql_text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
    )


class ProcessedEvent(Base):
    """Slack event ids already handled: Slack redelivers events, they must act once."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class SlackRateLimit(Base):
    """Slack's `Retry-After` for one method in one channel: only that pair waits."""

    __tablename__ = "slack_rate_limits"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Digest(Base):
    """One row per day a digest was queued, so several schedulers send it once."""

    __tablename__ = "digests"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiToken(Base):
    """A machine's key to the REST API. Only the SHA-256 of the token is kept: it is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(TOKEN_NAME_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = _timestamp()
    revoked_at: Mapped[datetime | None] = _timestamp()

    __table_args__ = (
        # A name is reused only once its token is revoked: changes are attributed by name.
        Index(
            "ix_api_tokens_live_name",
            "name",
            unique=True,
            postgresql_where=sql_text("revoked_at IS NULL"),
        ),
    )


class WebSession(Base):
    """A person signed in to the web pages in one browser. The cookie carries a random id and
    only its SHA-256 is kept; signing out ends the row, so a copy of the cookie is refused."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(USER_REF_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = _timestamp()


class LocalSignInLink(Base):
    """A sign-in link for the local admin (no Slack), made by `python -m bot link` in a process
    of its own: only its token's SHA-256 is kept, and it works once, for a few minutes."""

    __tablename__ = "local_sign_in_links"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = _timestamp()
