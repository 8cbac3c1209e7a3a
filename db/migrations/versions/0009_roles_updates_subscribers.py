"""coordination: incident roles, structured updates with a promised next one, subscribers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 11:50:00.000000

Safe on a large `incidents` table while the previous release keeps running:
- the new columns are nullable without a default, a catalog change only;
- the one backfill (`leaderless_since` of active incidents without a lead) touches the active
  incidents alone, through their partial index, in batches of their own transactions;
- the two partial indexes are built CONCURRENTLY, outside a transaction;
- the CHECK constraints of the two widened enums are swapped NOT VALID, then validated in a
  transaction of their own (see 0008).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 5_000
ACTIVE = "status IN ('open', 'investigating', 'mitigated')"

EVENT_KINDS = (
    "created",
    "status_changed",
    "severity_changed",
    "field_changed",
    "assigned",
    "note",
    "note_deleted",
    "screenshot_added",
    "screenshot_deleted",
    "reminder",
    "reminders_snoozed",
)
NEW_EVENT_KINDS = ("role_assigned", "status_update", "update_overdue", "lead_reminder")
ACTIONS = (
    "post_card",
    "update_card",
    "post_thread",
    "delete_card",
    "post_digest",
    "open_channel",
    "post_channel",
    "post_summary",
    "update_channel",
    "archive_channel",
    "invite_channel",
    "rename_channel",
    "tell_user",
)
NEW_ACTIONS = ("post_welcome",)
CHECKS = {
    # table, column, constraint name
    "event_kind": ("incident_events", "kind", "ck_incident_events_event_kind"),
    "delivery_action": ("deliveries", "action", "ck_deliveries_delivery_action"),
}
NEW_INDEXES = {
    "ix_incidents_update_nudge_at": "(update_nudge_at) WHERE update_nudge_at IS NOT NULL",
    "ix_incidents_leaderless_since": "(leaderless_since) WHERE leaderless_since IS NOT NULL",
}
NEW_COLUMNS = (
    ("next_update_at", sa.DateTime(timezone=True)),
    ("update_nudge_at", sa.DateTime(timezone=True)),
    ("leaderless_since", sa.DateTime(timezone=True)),
    ("lead_reminded_at", sa.DateTime(timezone=True)),
    ("own_channel_welcome_ts", sa.String(length=32)),
)


def _allow(enum: str, values: Sequence[str]) -> None:
    table, column, constraint = CHECKS[enum]
    listed = ", ".join(f"'{value}'" for value in values)
    op.drop_constraint(op.f(constraint), table, type_="check")
    op.execute(
        sa.text(
            f"ALTER TABLE {table} ADD CONSTRAINT {constraint} "
            f"CHECK ({column} IN ({listed})) NOT VALID"
        )
    )


def _validate(enum: str) -> None:
    table, _, constraint = CHECKS[enum]
    op.execute(sa.text(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"))


def upgrade() -> None:
    for name, type_ in NEW_COLUMNS:
        op.add_column("incidents", sa.Column(name, type_, nullable=True))
    op.create_table(
        "incident_roles",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_roles_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "role", name=op.f("pk_incident_roles")),
    )
    op.create_index(op.f("ix_incident_roles_user_id"), "incident_roles", ["user_id"])
    op.create_table(
        "incident_subscribers",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_subscribers_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "user_id", name=op.f("pk_incident_subscribers")),
    )
    op.create_index(op.f("ix_incident_subscribers_user_id"), "incident_subscribers", ["user_id"])
    _allow("event_kind", EVENT_KINDS + NEW_EVENT_KINDS)
    _allow("delivery_action", ACTIONS + NEW_ACTIONS)
    with op.get_context().autocommit_block():
        _validate("event_kind")
        _validate("delivery_action")
        for name, definition in NEW_INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON incidents {definition}")
        # Active incidents without a lead have been so since they were declared, as far as
        # anyone can tell now: a SEV1 among them is reminded at the first sweep.
        while True:
            done = op.get_bind().execute(
                sa.text(
                    "UPDATE incidents SET leaderless_since = created_at WHERE id IN ("
                    f"SELECT id FROM incidents WHERE {ACTIVE} AND owner IS NULL "
                    f"AND leaderless_since IS NULL LIMIT {BACKFILL_BATCH})"
                )
            )
            if done.rowcount < BACKFILL_BATCH:
                break


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in NEW_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    kinds = ", ".join(f"'{kind}'" for kind in NEW_EVENT_KINDS)
    op.execute(sa.text(f"DELETE FROM incident_events WHERE kind IN ({kinds})"))
    actions = ", ".join(f"'{action}'" for action in NEW_ACTIONS)
    op.execute(sa.text(f"DELETE FROM deliveries WHERE action IN ({actions})"))
    _allow("event_kind", EVENT_KINDS)
    _allow("delivery_action", ACTIONS)
    with op.get_context().autocommit_block():
        _validate("event_kind")
        _validate("delivery_action")
    op.drop_table("incident_subscribers")
    op.drop_table("incident_roles")
    for name, _ in reversed(NEW_COLUMNS):
        op.drop_column("incidents", name)
