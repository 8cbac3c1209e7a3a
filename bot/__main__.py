"""CLI: `python -m bot run|migrate|seed|check|token|link|outbox|export-screenshots|postmortem`."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from bot import logs
from bot.settings import Settings, SettingsError
from db import migrate
from db.session import DatabaseUrlError, make_engine, make_session_factory, resolve_database_url

log = logging.getLogger("bot")

ACK_SWITCH_INTERVAL = 0.0005
SOCKET_THREADS = 32
SETUP_HINT = 'See "Create the Slack app from manifest.yml" in README.md.'


def cmd_postmortem(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reports import cli

    return cli.postmortem(args, make_session_factory(_database(settings)), settings)


def cmd_export_screenshots(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reports import cli

    return cli.export_screenshots(args, make_session_factory(_database(settings)))


def _database(settings: Settings) -> Engine:
    return make_engine(resolve_database_url(settings.database_url, settings.data_dir))


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from bot import incidents
    from bot.incidents import tokens

    engine = _database(settings)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    if args.action == "list":
        with sessions() as session:
            _print_tokens(tokens.list_tokens(session))
        return 0
    try:
        with sessions.begin() as session:
            if args.action == "create":
                token, _ = tokens.create_token(session, args.name, is_admin=args.admin)
            else:
                tokens.revoke_token(session, args.name)
    except incidents.IncidentError as error:
        print(error, file=sys.stderr)
        return 1
    if args.action == "revoke":
        print(f"Revoked the API token {args.name}: requests with it are refused from now on.")
        return 0
    # The token alone on stdout, so a script can capture it; the words for people on stderr.
    print(token)
    kind = "admin " if args.admin else ""
    print(
        f"Created the {kind}API token {args.name}. It is shown only this once: store it now. "
        "Send it as `Authorization: Bearer <token>`.",
        file=sys.stderr,
    )
    return 0


def _print_tokens(rows: list[Any]) -> None:
    if not rows:
        print("No API tokens yet: `python -m bot token create --name <name>` makes one.")
        return

    def moment(value: datetime | None, none: str) -> str:
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if value else none

    print(f"{'NAME':<40}  {'ADMIN':<5}  {'CREATED':<20}  {'LAST USED':<20}  REVOKED")
    for row in rows:
        print(
            f"{row.name:<40}  {'yes' if row.is_admin else 'no':<5}  "
            f"{moment(row.created_at, '-'):<20}  {moment(row.last_used_at, 'never'):<20}  "
            f"{moment(row.revoked_at, '-')}"
        )


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from bot.delivery import problems

    engine = _database(settings)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        backlog = problems.backlog(session)
    now = datetime.now(UTC)
    for action, count in backlog.by_action.items():
        print(f"{count:>8}  {action}")
    age = f", the oldest queued {_age(now - backlog.oldest)} ago" if backlog.oldest else ""
    print(f"{backlog.waiting:>8}  waiting to be sent to Slack{age}")
    if args.action == "status":
        print(f"{backlog.failed:>8}  given up on (failed or discarded)")
        return 0
    if backlog.last_id is None:
        return 0
    if not args.yes and not _confirmed(f"Discard these {backlog.waiting} Slack updates?"):
        print("Nothing discarded.", file=sys.stderr)
        return 1
    with sessions.begin() as session:
        dropped = problems.discard(session, backlog.last_id, f"discarded by {_os_user()}", now)
    print(f"Discarded {dropped} update(s): they stay in the outbox, marked failed.")
    if dropped < backlog.waiting:
        print(f"{backlog.waiting - dropped} were being sent or already done: left alone.")
    return 0


def _age(elapsed: timedelta) -> str:
    minutes = int(elapsed.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days"


def _confirmed(question: str) -> bool:
    try:
        answer = input(
            f"{question} They will never be sent (an incident whose card is among them gets no "
            "card in Slack). [y/N] "
        )
    except EOFError:  # no one to ask (stdin closed): not a yes
        return False
    return answer.strip().lower() in {"y", "yes"}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a name
        return f"uid {os.getuid()}"


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(_database(settings))
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from bot import incidents
    from bot.seed import seed_incidents

    engine = _database(settings)
    migrate.upgrade(engine)
    # One log line per demo action would bury the summary.
    logging.getLogger("bot.incidents").setLevel(logging.WARNING)
    with make_session_factory(engine).begin() as session:
        ids = seed_incidents(session, args.count, rng=random.Random(args.random_seed))
    if ids:
        first, last = (incidents.format_incident_id(n) for n in (ids[0], ids[-1]))
        print(f"Seeded {len(ids)} demo incidents: {first} to {last}.")
    return 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    print(f"Database: {'DATABASE_URL' if settings.database_url else 'embedded PostgreSQL'}")
    print(f"Incident admins: {', '.join(sorted(settings.incident_admins)) or '(none)'}")
    print(f"Categories: {', '.join(settings.categories)}")
    try:
        engine = _database(settings)
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
            current = MigrationContext.configure(connection).get_current_revision()
    except DatabaseUrlError:
        raise  # a configuration error, reported as such by main()
    except Exception as error:  # any failure to connect is the check's answer, not a crash
        print(f"FAIL database unreachable: {error}")
        return 1
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    print(f"OK   PostgreSQL {version} answers")
    healthy = current == head
    if healthy:
        print(f"OK   schema at the latest migration ({head})")
    else:
        print(
            f"WARN schema at {current or 'nothing'}, latest is {head}: run `python -m bot migrate`"
        )
    return 0 if _check_slack(settings) and healthy else 1


def _check_slack(settings: Settings) -> bool:
    from slack_sdk.errors import SlackApiError

    from bot.slack.app import make_client

    missing = settings.missing_slack_settings()
    if missing:
        print(f"FAIL Slack: set {' and '.join(missing)}. {SETUP_HINT}")
        return False
    try:
        identity = make_client(settings).auth_test()
    except SlackApiError as error:
        print(f"FAIL Slack refused the bot token ({error.response.get('error')}). {SETUP_HINT}")
        return False
    except OSError as error:
        print(f"FAIL Slack unreachable at {settings.slack_api_url}: {error}")
        return False
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    print(f"OK   Slack: bot {identity.get('user')} in {identity.get('team')} ({mode})")
    return True


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    missing = settings.missing_slack_settings()
    if missing and settings.slack_configured:
        mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
        print(
            f"Can't start in {mode}: set {' and '.join(missing)}. "
            "Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN; HTTP mode needs "
            f"SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET. {SETUP_HINT}",
            file=sys.stderr,
        )
        return 2
    engine = _database(settings)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    _stop_cleanly_on_sigterm()
    if not settings.slack_configured:
        return _run_without_slack(settings, engine, sessions)
    from slack_bolt.error import BoltError

    from bot.delivery import Deliverer, DeliveryWorker
    from bot.slack.app import create_app, make_client
    from bot.work import WorkQueue

    work = WorkQueue(settings.work_queue_limit)
    client = make_client(settings)
    deliverer = Deliverer(
        sessions,
        client,
        offer_channels=settings.channel_rules.offered,
        public_url=settings.public_url,
        role_rules=settings.role_rules,
        github=settings.github,
        jira=settings.jira,
        tracker=settings.followup_rules.tracker,
    )
    try:
        app = create_app(settings, sessions, client, work, deliverer)
    except BoltError as error:
        print(f"Slack refused the bot token: {error}. {SETUP_HINT}", file=sys.stderr)
        return 2
    web = _web_app(settings, sessions, deliverer.wake, team_id=app.client.auth_test()["team_id"])
    # Workers rendering lists hold the GIL up to this long before an ack's thread gets it back
    # (CPython's default is 5 ms, paid at every I/O an ack waits on).
    sys.setswitchinterval(ACK_SWITCH_INTERVAL)
    from bot import metrics
    from bot.scheduler import Jobs, Scheduler

    metrics.watch(engine, work)
    scheduler = Scheduler(engine, Jobs(settings, sessions, deliverer), settings.scheduler_interval)
    scheduler.start()
    delivery = DeliveryWorker(deliverer)
    delivery.start()
    try:
        _serve(settings, app, engine, web)
    finally:
        # Finish what was acked but not yet done, and let a post in flight be recorded (one
        # that is not would be looked for by its tag on the next start, never lost).
        work.shutdown()
        delivery.stop()
        scheduler.stop()
    return 0


def _web_app(
    settings: Settings, sessions: Any, wake: Any, *, team_id: str | None, local: bool = False
) -> Any:
    from bot.web.app import create_web_app
    from bot.web.services import WebServices

    return create_web_app(
        WebServices(
            settings=settings,
            sessions=sessions,
            wake_outbox=wake,
            team_id=team_id,
            local_sign_in=local,
        )
    )


def _run_without_slack(settings: Settings, engine: Engine, sessions: Any) -> int:
    """The web surface alone: a newcomer's first `make run`. Changes wait in the outbox."""
    from bot import metrics
    from bot.incidents import signins
    from bot.server import make_server, make_wsgi_app

    metrics.watch(engine)
    web = _web_app(settings, sessions, lambda: None, team_id=None, local=True)
    log.warning(
        "Slack is off (no SLACK_BOT_TOKEN): the web surface runs alone on port %d (HOST %s), and "
        "Slack updates wait in the outbox until Slack is set up (`python -m bot outbox discard` "
        "drops them). %s",
        settings.port,
        settings.host,
        SETUP_HINT,
    )
    server = make_server(
        make_wsgi_app(None, engine, settings, web), settings, settings.host, settings.port
    )
    # Printed, never logged, so it stands out in `make run`'s output as Jupyter's does and no
    # log collector keeps it.
    minutes = signins.LOCAL_LINK_MINUTES
    print(
        f"\n    Sign in as the local admin (this link works once, within {minutes} minutes):"
        f"\n    {_local_link(settings, sessions)}\n"
        "    For another one: .venv/bin/python -m bot link\n",
        flush=True,
    )
    server.run()
    return 0


def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    from bot.incidents import signins

    if settings.slack_configured:
        print(
            "Local sign-in links are for running without Slack; with Slack set up, people sign "
            'in with Slack (see "The web" in README.md).',
            file=sys.stderr,
        )
        return 2
    engine = _database(settings)
    migrate.upgrade(engine)
    # The link alone on stdout, as `token create` prints its token; the words on stderr.
    print(_local_link(settings, make_session_factory(engine)))
    print(
        f"Sign in as the local admin: this link works once, within {signins.LOCAL_LINK_MINUTES} "
        "minutes.",
        file=sys.stderr,
    )
    return 0


def _local_link(settings: Settings, sessions: Any) -> str:
    from bot.incidents import signins

    with sessions.begin() as session:
        token = signins.create_local_link(session)
    return f"{settings.public_url or f'http://localhost:{settings.port}'}/auth/local?token={token}"


def _serve(settings: Settings, app: Any, engine: Engine, web: Any) -> None:
    from bot.server import SLACK_PATH, make_server, make_wsgi_app

    if settings.socket_mode:
        import threading

        from slack_bolt.adapter.socket_mode import SocketModeHandler

        server = make_server(
            make_wsgi_app(None, engine, settings, web), settings, settings.host, settings.port
        )
        threading.Thread(target=server.run, name="web", daemon=True).start()
        log.info(
            "Starting in Socket Mode against %s; the web surface and /healthz on port %d",
            settings.slack_api_url,
            settings.port,
        )
        # Listeners ack on these threads; a burst wider than the pool would queue its acks.
        SocketModeHandler(app, settings.slack_app_token, concurrency=SOCKET_THREADS).start()
        return
    log.info(
        "Starting in HTTP mode on port %d: Slack requests on %s, the web surface, /healthz",
        settings.port,
        SLACK_PATH,
    )
    wsgi = make_wsgi_app(app, engine, settings, web)
    make_server(wsgi, settings, settings.host, settings.port).run()


def _stop_cleanly_on_sigterm() -> None:
    # Turn SIGTERM (docker stop, systemd, kill) into the same clean exit as Ctrl-C, so atexit
    # handlers run and an embedded PostgreSQL is shut down rather than left behind.
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Incident Tracker for Slack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the bot").set_defaults(handler=cmd_run)
    commands.add_parser("migrate", help="upgrade the database schema").set_defaults(
        handler=cmd_migrate
    )
    seed = commands.add_parser("seed", help="add realistic demo incidents")
    seed.add_argument("--count", type=int, default=200, help="how many (default 200)")
    seed.add_argument("--random-seed", type=int, default=None, help="for repeatable demo data")
    seed.set_defaults(handler=cmd_seed)
    commands.add_parser("check", help="check settings, the database and Slack").set_defaults(
        handler=cmd_check
    )
    export = commands.add_parser(
        "export-screenshots", help="write an incident's stored screenshots to a folder"
    )
    export.add_argument("incident", help="INC-12, #12 or 12")
    export.add_argument("folder")
    export.set_defaults(handler=cmd_export_screenshots)
    pm = commands.add_parser("postmortem", help="an incident's post-mortem as Markdown")
    pm.add_argument("incident", help="INC-12, #12 or 12")
    pm.add_argument("--inline-images", action="store_true", help="with images/, in a folder")
    pm.add_argument("--out", help="the folder (default: stdout, or ./INC-12-postmortem)")
    pm.set_defaults(handler=cmd_postmortem)
    token = commands.add_parser("token", help="API tokens for machines (alerting, scripts)")
    token_actions = token.add_subparsers(dest="action", required=True)
    create = token_actions.add_parser("create", help="a new token, shown once")
    create.add_argument("--name", required=True, help="who uses it, e.g. alertmanager")
    create.add_argument("--admin", action="store_true", help="may do what incident admins may")
    token_actions.add_parser("list", help="names, admin, created, last used, revoked")
    revoke = token_actions.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("--name", required=True, help="the name it was created with")
    token.set_defaults(handler=cmd_token)
    commands.add_parser(
        "link", help="a sign-in link for the local admin (without Slack), valid once"
    ).set_defaults(handler=cmd_link)
    outbox = commands.add_parser("outbox", help="the Slack updates waiting to be sent")
    outbox_actions = outbox.add_subparsers(dest="action", required=True)
    outbox_actions.add_parser("status", help="how many wait, since when, how many failed")
    discard = outbox_actions.add_parser("discard", help="never send what waits now")
    discard.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    outbox.set_defaults(handler=cmd_outbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "count", 1) < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return args.handler(settings, args)
    except DatabaseUrlError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.info("Stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
