"""delivery leases and tags, per-channel rate limits, whole event ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 01:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("deliveries", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deliveries", sa.Column("slack_ts", sa.String(length=32), nullable=True))
    op.create_table(
        "slack_rate_limits",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "method", name=op.f("pk_slack_rate_limits")),
    )
    op.alter_column(
        "processed_events",
        "event_id",
        type_=sa.Text(),
        existing_type=sa.String(length=64),
        existing_nullable=False,
    )


def downgrade() -> None:
    op.alter_column(
        "processed_events",
        "event_id",
        type_=sa.String(length=64),
        existing_type=sa.Text(),
        existing_nullable=False,
        postgresql_using="left(event_id, 64)",
    )
    op.drop_table("slack_rate_limits")
    op.drop_column("deliveries", "slack_ts")
    op.drop_column("deliveries", "lease_until")
    op.drop_column("deliveries", "sending_since")
