"""coordination: incident roles, structured updates with a promised next one, subscribers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 11:50:00.000000

Safe on a large `incidents` table while the previous release keeps running
(`python -m bench.migration_0009` measures it at a million incidents):
- every step is a transaction of its own, so none holds a lock on two tables the bot writes in
  the opposite order (a bot's insert into `incident_events` locks it, then checks its foreign
  key on `incidents`: one transaction altering `incidents` and then `incident_events` deadlocked
  with it);
- each DDL statement waits at most LOCK_TIMEOUT for its lock and is tried again, so it never
  queues the bot's traffic behind a long transaction of the old release;
- the new columns are nullable without a default, a catalog change only; the CHECK constraints
  of the two widened enums are swapped NOT VALID in one statement each, then validated (see
  0008);
- the one backfill (`leaderless_since` of active incidents without a lead) reads their ids
  through the active incidents' index, then updates them BACKFILL_BATCH at a time, before the
  new indexes exist, so each batch is short;
- the two partial indexes are built CONCURRENTLY.
During a rolling upgrade an old replica declares incidents without `leaderless_since`; those
are not reminded of a missing lead (the new release sets it on every declaration).
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 500
LOCK_TIMEOUT = "200ms"
LOCK_TRIES = 100
LOCK_NOT_AVAILABLE = "55P03"
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
    ("next_update_at", "TIMESTAMP WITH TIME ZONE"),
    ("update_nudge_at", "TIMESTAMP WITH TIME ZONE"),
    ("leaderless_since", "TIMESTAMP WITH TIME ZONE"),
    ("lead_reminded_at", "TIMESTAMP WITH TIME ZONE"),
    ("own_channel_welcome_ts", "VARCHAR(32)"),
)
# New tables: their foreign keys lock `incidents` briefly (SHARE ROW EXCLUSIVE), each alone.
NEW_TABLES = (
    "CREATE TABLE incident_roles ("
    "incident_id INTEGER NOT NULL, role VARCHAR(32) NOT NULL, user_id VARCHAR(64) NOT NULL, "
    "assigned_by VARCHAR(64) NOT NULL, assigned_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "CONSTRAINT pk_incident_roles PRIMARY KEY (incident_id, role), "
    "CONSTRAINT fk_incident_roles_incident_id_incidents FOREIGN KEY (incident_id) "
    "REFERENCES incidents (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_incident_roles_user_id ON incident_roles (user_id)",
    "CREATE TABLE incident_subscribers ("
    "incident_id INTEGER NOT NULL, user_id VARCHAR(64) NOT NULL, "
    "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
    "CONSTRAINT pk_incident_subscribers PRIMARY KEY (incident_id, user_id), "
    "CONSTRAINT fk_incident_subscribers_incident_id_incidents FOREIGN KEY (incident_id) "
    "REFERENCES incidents (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_incident_subscribers_user_id ON incident_subscribers (user_id)",
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


def _briefly(statement: str, params: dict[str, object] | None = None) -> None:
    """Run `statement` in a transaction of its own (autocommit) that waits at most LOCK_TIMEOUT
    for its locks; a timeout is tried again, a little later each time."""
    bind = op.get_bind()
    for attempt in range(LOCK_TRIES):
        try:
            bind.execute(sa.text(statement), params or {})
            return
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "pgcode", None) != LOCK_NOT_AVAILABLE or (
                attempt == LOCK_TRIES - 1
            ):
                raise
            bind.rollback()
            time.sleep(min(0.05 * (attempt + 1), 1.0))


def _swap_check(enum: str, values: Sequence[str]) -> str:
    table, column, constraint = CHECKS[enum]
    listed = ", ".join(f"'{value}'" for value in values)
    return (
        f"ALTER TABLE {table} DROP CONSTRAINT {constraint}, ADD CONSTRAINT {constraint} "
        f"CHECK ({column} IN ({listed})) NOT VALID"
    )


def upgrade() -> None:
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        bind.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            _briefly(
                "ALTER TABLE incidents "
                + ", ".join(f"ADD COLUMN {name} {type_}" for name, type_ in NEW_COLUMNS)
            )
            for statement in NEW_TABLES:
                _briefly(statement)
            _briefly(_swap_check("event_kind", EVENT_KINDS + NEW_EVENT_KINDS))
            _briefly(_swap_check("delivery_action", ACTIONS + NEW_ACTIONS))
            for table, _, constraint in CHECKS.values():
                _briefly(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")
            # Active incidents without a lead have been so since they were declared, as far as
            # anyone can tell now: a SEV1 among them is reminded at the first sweep.
            leaderless = bind.execute(
                sa.text(
                    f"SELECT id FROM incidents WHERE {ACTIVE} AND owner IS NULL "
                    "AND leaderless_since IS NULL"
                )
            ).scalars()
            ids = sorted(leaderless)
            for start in range(0, len(ids), BACKFILL_BATCH):
                _briefly(
                    "UPDATE incidents SET leaderless_since = created_at "
                    f"WHERE id = ANY(:ids) AND {ACTIVE} AND owner IS NULL "
                    "AND leaderless_since IS NULL",
                    {"ids": ids[start : start + BACKFILL_BATCH]},
                )
            for name, definition in NEW_INDEXES.items():
                _briefly(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                _briefly(f"CREATE INDEX CONCURRENTLY {name} ON incidents {definition}")
        finally:
            bind.execute(sa.text("RESET lock_timeout"))


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
