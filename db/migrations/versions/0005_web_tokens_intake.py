"""web: API tokens (hashes only) and alerting tools' fingerprints on incidents

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:03:27.089775
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(
        "ix_api_tokens_live_name",
        "api_tokens",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.add_column(
        "incidents", sa.Column("intake_fingerprint", sa.String(length=200), nullable=True)
    )
    op.create_index(
        "ix_incidents_intake_fingerprint",
        "incidents",
        ["intake_fingerprint"],
        unique=False,
        postgresql_where=sa.text("intake_fingerprint IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_incidents_intake_fingerprint",
        table_name="incidents",
        postgresql_where=sa.text("intake_fingerprint IS NOT NULL"),
    )
    op.drop_column("incidents", "intake_fingerprint")
    op.drop_index(
        "ix_api_tokens_live_name",
        table_name="api_tokens",
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.drop_table("api_tokens")
