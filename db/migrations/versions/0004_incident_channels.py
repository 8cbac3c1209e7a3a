"""incident channels

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ACTIONS = ("post_card", "update_card", "post_thread", "delete_card", "post_digest")
NEW_ACTIONS = (
    "open_channel",
    "post_channel",
    "post_summary",
    "update_channel",
    "archive_channel",
    "invite_channel",
    "rename_channel",
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _allow(values: Sequence[str]) -> None:
    # The enums are checked VARCHARs: widening one means replacing its CHECK constraint.
    name = op.f("ck_deliveries_delivery_action")
    op.drop_constraint(name, "deliveries", type_="check")
    listed = ", ".join(f"'{value}'" for value in values)
    op.create_check_constraint(name, "deliveries", f"action IN ({listed})")


def upgrade() -> None:
    op.add_column(
        "incidents",
        sa.Column(
            "wants_own_channel", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column("incidents", sa.Column("own_channel_id", sa.String(length=32), nullable=True))
    op.add_column("incidents", sa.Column("own_channel_name", sa.String(length=80), nullable=True))
    op.add_column(
        "incidents", sa.Column("own_channel_summary_ts", sa.String(length=32), nullable=True)
    )
    op.add_column("incidents", sa.Column("own_channel_topic", sa.String(length=250), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("own_channel_archived_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Commands typed in an incident's channel find their incident by it.
    op.create_index("ix_incidents_own_channel_id", "incidents", ["own_channel_id"], unique=True)
    _allow(ACTIONS + NEW_ACTIONS)


def downgrade() -> None:
    listed = ", ".join(f"'{action}'" for action in NEW_ACTIONS)
    op.execute(sa.text(f"DELETE FROM deliveries WHERE action IN ({listed})"))
    _allow(ACTIONS)
    op.drop_index("ix_incidents_own_channel_id", table_name="incidents")
    op.drop_column("incidents", "own_channel_archived_at")
    op.drop_column("incidents", "own_channel_topic")
    op.drop_column("incidents", "own_channel_summary_ts")
    op.drop_column("incidents", "own_channel_name")
    op.drop_column("incidents", "own_channel_id")
    op.drop_column("incidents", "wants_own_channel")
