"""deliveries: what a person is told after the ack is an outbox row too (`tell_user`)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:05:00.000000

Only the CHECK constraint on `deliveries.action` changes. Added back plainly it would hold an
ACCESS EXCLUSIVE lock while every row is checked; added NOT VALID it holds that lock only for
the swap, and is enforced on new rows at once. VALIDATE CONSTRAINT then checks the old rows in
a transaction of its own, under a lock that lets the outbox keep reading and writing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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
)
NEW_ACTIONS = ("tell_user",)
CONSTRAINT = "ck_deliveries_delivery_action"

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _allow(values: Sequence[str]) -> None:
    # The enums are checked VARCHARs: widening one means replacing its CHECK constraint.
    listed = ", ".join(f"'{value}'" for value in values)
    op.drop_constraint(op.f(CONSTRAINT), "deliveries", type_="check")
    op.execute(
        sa.text(
            f"ALTER TABLE deliveries ADD CONSTRAINT {CONSTRAINT} "
            f"CHECK (action IN ({listed})) NOT VALID"
        )
    )
    # Committing the swap first: validating inside its transaction would keep its lock.
    with op.get_context().autocommit_block():
        op.execute(sa.text(f"ALTER TABLE deliveries VALIDATE CONSTRAINT {CONSTRAINT}"))


def upgrade() -> None:
    _allow(ACTIONS + NEW_ACTIONS)


def downgrade() -> None:
    listed = ", ".join(f"'{action}'" for action in NEW_ACTIONS)
    op.execute(sa.text(f"DELETE FROM deliveries WHERE action IN ({listed})"))
    _allow(ACTIONS)
