"""Alembic environment: runs on a connection handed in by db.migrate, or on DATABASE_URL."""

from alembic import context
from sqlalchemy import Connection

from db.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # Some migrations commit part way (indexes built CONCURRENTLY): each file commits alone.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # Command-line use (`alembic ...`): same settings and embedded fallback as the bot.
    from bot.settings import Settings
    from db.session import make_engine, resolve_database_url

    settings = Settings.from_env()
    engine = make_engine(resolve_database_url(settings.database_url, settings.data_dir))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
