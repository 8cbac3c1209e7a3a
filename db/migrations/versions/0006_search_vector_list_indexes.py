"""lists at a million incidents: full-text search on a tsvector, indexes in each list's order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 06:10:00.000000

Nothing here holds a lock on `incidents` for longer than a catalog change or one batch of rows,
so bots still running the previous release keep answering while a large table is upgraded:
- `search_vector` is a plain column kept by a trigger, not a generated one: adding a generated
  column rewrites the whole table under an exclusive lock. Existing rows are filled in batches,
  each its own transaction, by touching `title` so the trigger computes them exactly as it will
  compute new ones.
- Indexes are built and dropped CONCURRENTLY, outside a transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 5_000
ACTIVE = "status IN ('open', 'investigating', 'mitigated')"
NEW_INDEXES = {
    "ix_incidents_search_vector": "USING gin (search_vector)",
    **{
        f"ix_incidents_search_vector_{severity.lower()}": (
            f"USING gin (search_vector) WHERE severity = '{severity}'"
        )
        for severity in ("SEV1", "SEV2", "SEV3", "SEV4")
    },
    "ix_incidents_created_id": "(created_at, id)",
    "ix_incidents_updated_id": "(updated_at, id)",
    "ix_incidents_severity_id": "(severity, id DESC)",
    "ix_incidents_active_created_id": f"(created_at, id) WHERE {ACTIVE}",
    "ix_incidents_active_updated_id": f"(updated_at, id) WHERE {ACTIVE}",
    "ix_incidents_active_severity_id": f"(severity, id DESC) WHERE {ACTIVE}",
}
# Each is the leading part of one of the new indexes, which serve its queries as well.
SUPERSEDED = {
    "ix_incidents_created_at": "created_at",
    "ix_incidents_updated_at": "updated_at",
    "ix_incidents_severity": "severity",
}


def upgrade() -> None:
    op.add_column("incidents", sa.Column("search_vector", TSVECTOR(), nullable=True))
    op.execute(
        "CREATE TRIGGER incidents_search_vector BEFORE INSERT OR UPDATE OF title, description, "
        "service ON incidents FOR EACH ROW EXECUTE FUNCTION "
        "tsvector_update_trigger(search_vector, 'pg_catalog.simple', title, description, service)"
    )
    # The substring search's trigram index goes. Its column stays for now: replicas of the
    # release before this one still search by it (slowly) until a rolling upgrade replaces them.
    op.drop_index("ix_incidents_search_trgm", table_name="incidents")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        last = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM incidents")).scalar_one()
        for low in range(0, last, BACKFILL_BATCH):
            bind.execute(
                sa.text(
                    "UPDATE incidents SET title = title "
                    "WHERE id > :low AND id <= :high AND search_vector IS NULL"
                ),
                {"low": low, "high": low + BACKFILL_BATCH},
            )
        for name, definition in NEW_INDEXES.items():
            # A build interrupted earlier leaves an INVALID index of the same name behind.
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON incidents {definition}")
        for name in SUPERSEDED:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # The planner's word frequencies for search_vector, now rather than at autovacuum's pace.
        op.execute("ANALYZE incidents")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in NEW_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        for name, column in SUPERSEDED.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON incidents ({column})")
    op.execute("DROP TRIGGER incidents_search_vector ON incidents")
    op.drop_column("incidents", "search_vector")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_incidents_search_trgm",
        "incidents",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
