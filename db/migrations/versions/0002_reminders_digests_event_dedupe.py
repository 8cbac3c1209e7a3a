"""reminders, digests, event dedupe

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:15:33.726513
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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
)
NEW_EVENT_KINDS = ("reminder", "reminders_snoozed")
ACTIONS = ("post_card", "update_card", "post_thread", "delete_card")
NEW_ACTIONS = ("post_digest",)


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _allow(table: str, constraint: str, column: str, values: Sequence[str]) -> None:
    # The enums are checked VARCHARs: widening one means replacing its CHECK constraint.
    op.drop_constraint(op.f(constraint), table, type_="check")
    op.create_check_constraint(op.f(constraint), table, f"{column} IN ({_listed(values)})")


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_digests")),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(
        op.f("ix_processed_events_received_at"), "processed_events", ["received_at"], unique=False
    )
    op.add_column(
        "incidents", sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_incidents_next_reminder_at", "incidents", ["next_reminder_at"], unique=False
    )
    _allow(
        "incident_events", "ck_incident_events_event_kind", "kind", EVENT_KINDS + NEW_EVENT_KINDS
    )
    _allow("deliveries", "ck_deliveries_delivery_action", "action", ACTIONS + NEW_ACTIONS)


def downgrade() -> None:
    op.execute(f"DELETE FROM incident_events WHERE kind IN ({_listed(NEW_EVENT_KINDS)})")
    op.execute(f"DELETE FROM deliveries WHERE action IN ({_listed(NEW_ACTIONS)})")
    _allow("incident_events", "ck_incident_events_event_kind", "kind", EVENT_KINDS)
    _allow("deliveries", "ck_deliveries_delivery_action", "action", ACTIONS)
    op.drop_index("ix_incidents_next_reminder_at", table_name="incidents")
    op.drop_column("incidents", "next_reminder_at")
    op.drop_index(op.f("ix_processed_events_received_at"), table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("digests")
