"""One typed settings object, read from the environment (and a `.env` file) once."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.incidents.channels import CHANNEL_MODES, USER_GROUP_ID, ChannelRules, check_name_template
from bot.incidents.followups import FollowUpRules
from bot.incidents.progress import DEFAULT_INTERVALS
from bot.incidents.roles import RoleRules, parse_roles
from bot.incidents.vocabulary import CHANNEL_ID, DEFAULT_CATEGORIES, USER_ID, DeclareLimit
from bot.logs import LOG_FORMATS
from bot.settings_followups import (
    GitHubSettings,
    JiraSettings,
    TrackerSettingsError,
    parse_followup_rules,
    parse_github,
    parse_jira,
)

# How long an active incident may go without an update before its owner is reminded.
DEFAULT_CADENCES = "SEV1=15m,SEV2=30m,SEV3=4h,SEV4=off"
DEFAULT_ROLES = "comms=Communications lead: posts the updates;scribe=Scribe: keeps the timeline"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SettingsError(ValueError):
    """A configuration value is present but unusable."""


def parse_duration(raw: str, name: str) -> timedelta | None:
    """`90s`, `15m`, `4h`, `2d`, or `off`."""
    raw = raw.strip().lower()
    if raw in {"off", "none", "0"}:
        return None
    if len(raw) < 2 or raw[-1] not in _UNITS or not raw[:-1].isdigit() or int(raw[:-1]) == 0:
        raise SettingsError(f"{name}: {raw!r} is not a duration such as 90s, 15m, 4h, 2d or off")
    return timedelta(seconds=int(raw[:-1]) * _UNITS[raw[-1]])


def parse_cadences(raw: str) -> dict[str, timedelta | None]:
    cadences: dict[str, timedelta | None] = {}
    for item in _split_list(raw):
        severity, sep, duration = item.partition("=")
        severity = severity.strip().upper()
        if not sep or severity not in {"SEV1", "SEV2", "SEV3", "SEV4"}:
            raise SettingsError(
                f"REMINDER_CADENCES: {item!r} should look like SEV1=15m (severities SEV1..SEV4)"
            )
        cadences[severity] = parse_duration(duration, f"REMINDER_CADENCES {severity}")
    return cadences


def parse_declare_limit(raw: str) -> DeclareLimit | None:
    """`10/10m`: at most 10 declarations per person in 10 minutes; `off`."""
    if raw.strip().lower() == "off":
        return None
    count, sep, window = raw.partition("/")
    duration = parse_duration(window, "DECLARE_LIMIT") if sep else None
    if not count.strip().isdigit() or int(count) < 1 or duration is None:
        raise SettingsError(f"DECLARE_LIMIT: {raw!r} should look like 10/10m (or off)")
    return DeclareLimit(int(count), duration)


def parse_channel_rules(environ: Mapping[str, str]) -> ChannelRules:
    mode = (environ.get("INCIDENT_CHANNELS") or "sev1-sev2").strip().lower()
    if mode not in CHANNEL_MODES:
        raise SettingsError(f"INCIDENT_CHANNELS must be one of {', '.join(CHANNEL_MODES)}")
    template = environ.get("INCIDENT_CHANNEL_NAME") or "inc-{id}-{slug}"
    try:
        check_name_template(template)
    except ValueError as error:
        raise SettingsError(f"INCIDENT_CHANNEL_NAME {template!r}: {error}") from None
    private = (environ.get("INCIDENT_CHANNEL_PRIVATE") or "false").strip().lower()
    if private not in {"true", "false", "1", "0", "yes", "no"}:
        raise SettingsError(f"INCIDENT_CHANNEL_PRIVATE must be true or false, not {private!r}")
    responders: dict[str, tuple[str, ...]] = {}
    for item in (environ.get("INCIDENT_RESPONDERS") or "").split(";"):
        if not item.strip():
            continue
        severity, sep, people = item.partition("=")
        severity = severity.strip().upper()
        ids = tuple(_split_list(people))
        if (
            not sep
            or severity not in {"SEV1", "SEV2", "SEV3", "SEV4"}
            or not all(USER_ID.match(i) or USER_GROUP_ID.match(i) for i in ids)
        ):
            raise SettingsError(
                f"INCIDENT_RESPONDERS: {item!r} should look like SEV1=S0ONCALL,U0LEAD (user ids "
                "and user group ids per severity, separated by ;)"
            )
        responders[severity] = ids
    archive = (environ.get("INCIDENT_CHANNEL_ARCHIVE_AFTER") or "1d").strip().lower()
    return ChannelRules(
        mode=mode,
        name_template=template,
        private=private in {"true", "1", "yes"},
        responders=responders,
        archive_after=timedelta(0)
        if archive == "now"
        else parse_duration(archive, "INCIDENT_CHANNEL_ARCHIVE_AFTER"),
    )


def parse_role_rules(environ: Mapping[str, str]) -> RoleRules:
    raw = environ.get("INCIDENT_ROLES")
    try:
        roles = parse_roles(DEFAULT_ROLES if raw is None else raw)
    except ValueError as error:
        raise SettingsError(f"INCIDENT_ROLES: {error}") from None
    after = parse_duration(environ.get("LEAD_REMINDER_AFTER") or "5m", "LEAD_REMINDER_AFTER")
    return RoleRules(roles=roles, lead_reminder_after=after)


def parse_intervals(raw: str | None) -> tuple[timedelta, ...]:
    """`15m,30m,1h,4h`: the "next update in" choices, shortest first ("none" is always one)."""
    if not raw:
        return DEFAULT_INTERVALS
    intervals = set()
    for item in _split_list(raw):
        duration = parse_duration(item, "UPDATE_INTERVALS")
        if duration is None:
            raise SettingsError("UPDATE_INTERVALS: list durations; 'none' is always offered")
        intervals.add(duration)
    if len(intervals) > 10:
        raise SettingsError("UPDATE_INTERVALS: at most 10 choices")
    return tuple(sorted(intervals))


def _clock_time(raw: str, name: str) -> time:
    try:
        hours, minutes = raw.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a time such as 09:00") from None


def _split_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.split(",") if item.strip())


SLACK_API_URL = "https://slack.com/api/"
# Any of them means Slack is meant to be on (see Settings.slack_configured).
_SLACK_CREDENTIALS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    incident_admins: frozenset[str]
    categories: tuple[str, ...]
    log_level: str
    # `text` (readable) or `json` (one object per line, for a log collector); see bot.logs.
    log_format: str = "text"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    # GovSlack (https://slack-gov.com/api/) and the tests' fake Slack set this.
    slack_api_url: str = SLACK_API_URL
    # Where cards go; unset means the channel the incident was declared in.
    incident_channel: str | None = None
    port: int = 3000
    # The address the server listens on; see from_env for the default of each mode.
    host: str = "127.0.0.1"
    # Slack's own payloads stay far below this; a larger body on /slack/events is refused unread.
    slack_max_body_bytes: int = 1024 * 1024
    # Jobs that follow acks (lists, modals, Slack updates) waiting for a worker; past this the
    # ack says the bot is busy.
    work_queue_limit: int = 200
    max_screenshot_bytes: int = 16 * 1024 * 1024
    # Files posted as replies under a card are attached; needs channels:history (see README).
    attach_thread_files: bool = False
    # Scheduler (one replica at a time runs it; see README "Deploying").
    reminder_cadences: dict[str, timedelta | None] = field(
        default_factory=lambda: parse_cadences(DEFAULT_CADENCES)
    )
    quiet_hours: tuple[time, time] | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    digest_time: time | None = time(9, 0)
    auto_close_after: timedelta | None = timedelta(days=7)
    scheduler_interval: timedelta = timedelta(seconds=10)
    # How long a Slack API call may take; an outbox post in flight is leased this long plus 5 s.
    slack_timeout: int = 10
    declare_limit: DeclareLimit | None = field(
        default_factory=lambda: DeclareLimit(10, timedelta(minutes=10))
    )
    channel_rules: ChannelRules = field(default_factory=ChannelRules)
    role_rules: RoleRules = field(default_factory=RoleRules)
    update_intervals: tuple[timedelta, ...] = DEFAULT_INTERVALS
    # The web surface: Sign in with Slack, signed session cookies, links from Slack to its pages.
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    session_secret: str | None = None
    public_url: str | None = None
    # After the incident: follow-ups, the close rule, and the tracker they are exported to.
    followup_rules: FollowUpRules = field(default_factory=FollowUpRules)
    github: GitHubSettings | None = None
    jira: JiraSettings | None = None

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def slack_configured(self) -> bool:
        """Any Slack credential set: `run` then needs all of its mode's (a half setup is an error;
        none at all runs the web surface alone)."""
        return any((self.slack_bot_token, self.slack_app_token, self.slack_signing_secret))

    def missing_slack_settings(self) -> list[str]:
        """The variables `run` still needs, in the mode the settings select."""
        needed = {"SLACK_BOT_TOKEN": self.slack_bot_token}
        if self.socket_mode:
            needed["SLACK_APP_TOKEN"] = self.slack_app_token
        else:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        return [name for name, value in needed.items() if not value]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment plus `.env`)."""
        if environ is None:
            from dotenv import find_dotenv, load_dotenv

            # Values already in the environment win over the file, as twelve-factor expects.
            # The working directory's file, as the README says: without usecwd, python-dotenv
            # looks beside this module instead, wherever the bot was started from.
            load_dotenv(find_dotenv(usecwd=True), override=False)
            environ = os.environ
        categories = tuple(c.lower() for c in _split_list(environ.get("INCIDENT_CATEGORIES")))
        if any(len(c) > 64 for c in categories):
            raise SettingsError("INCIDENT_CATEGORIES: each category must be at most 64 characters")
        log_level = (environ.get("LOG_LEVEL") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}"
            )
        log_format = (environ.get("LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(
                f"LOG_FORMAT must be text (readable, the default) or json (one object per line), "
                f"not {log_format!r}"
            )
        api_url = environ.get("SLACK_API_URL") or SLACK_API_URL
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise SettingsError(f"SLACK_API_URL must be an http(s) URL, not {api_url!r}")
        channel = environ.get("INCIDENT_CHANNEL") or None
        if channel is not None and not CHANNEL_ID.match(channel):
            raise SettingsError(
                "INCIDENT_CHANNEL must be a channel id such as C0123456789 (in Slack: channel "
                f"details, at the bottom), not {channel!r}"
            )
        app_token = environ.get("SLACK_APP_TOKEN") or None
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        port = environ.get("PORT") or "3000"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"PORT must be a TCP port number, not {port!r}")
        host = (environ.get("HOST") or "").strip()
        if host and not (_is_ip(host) or _HOSTNAME.match(host)):
            raise SettingsError(
                f"HOST must be an address to listen on, such as 127.0.0.1 or 0.0.0.0, not {host!r}"
            )
        if not host:
            # Slack's HTTP requests (and a load balancer's health checks) come from elsewhere;
            # the web surface alone, a newcomer's first run, stays on this machine.
            slack = any(environ.get(name) for name in _SLACK_CREDENTIALS)
            host = "0.0.0.0" if slack else "127.0.0.1"
        max_body = environ.get("SLACK_MAX_BODY_BYTES") or str(1024 * 1024)
        if not max_body.isdigit() or int(max_body) < 64 * 1024:
            raise SettingsError(
                "SLACK_MAX_BODY_BYTES must be a number of bytes, at least 65536 (Slack's modal "
                f"submissions can be tens of KiB), not {max_body!r}"
            )
        queue_limit = environ.get("WORK_QUEUE_LIMIT") or "200"
        if not queue_limit.isdigit() or int(queue_limit) < 1:
            raise SettingsError(
                f"WORK_QUEUE_LIMIT must be a number of jobs, at least 1, not {queue_limit!r}"
            )
        max_bytes = environ.get("MAX_SCREENSHOT_BYTES") or str(16 * 1024 * 1024)
        if not max_bytes.isdigit() or int(max_bytes) < 1024:
            raise SettingsError(
                f"MAX_SCREENSHOT_BYTES must be a number of bytes, at least 1024, not {max_bytes!r}"
            )
        thread_files = (environ.get("ATTACH_THREAD_FILES") or "false").strip().lower()
        if thread_files not in {"true", "false", "1", "0", "yes", "no"}:
            raise SettingsError(f"ATTACH_THREAD_FILES must be true or false, not {thread_files!r}")
        cadences = parse_cadences(DEFAULT_CADENCES)
        cadences.update(parse_cadences(environ.get("REMINDER_CADENCES") or ""))
        quiet = environ.get("QUIET_HOURS") or None
        quiet_hours = None
        if quiet:
            start, sep, end = quiet.partition("-")
            if not sep:
                raise SettingsError(f"QUIET_HOURS: {quiet!r} should look like 22:00-07:00")
            quiet_hours = (_clock_time(start, "QUIET_HOURS"), _clock_time(end, "QUIET_HOURS"))
        try:
            zone = ZoneInfo(environ.get("TIMEZONE") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"TIMEZONE: unknown time zone {environ.get('TIMEZONE')!r} (e.g. Europe/Paris)"
            ) from None
        digest = (environ.get("DIGEST_TIME") or "09:00").strip().lower()
        auto_close = (environ.get("AUTO_CLOSE_AFTER_DAYS") or "7").strip()
        if not auto_close.isdigit():
            raise SettingsError(
                f"AUTO_CLOSE_AFTER_DAYS must be a number of days, not {auto_close!r}"
            )
        interval = parse_duration(environ.get("SCHEDULER_INTERVAL") or "10s", "SCHEDULER_INTERVAL")
        if interval is None:
            raise SettingsError("SCHEDULER_INTERVAL can't be off: undelivered updates need it")
        slack_timeout = (environ.get("SLACK_TIMEOUT") or "10").strip()
        if not slack_timeout.isdigit() or not 1 <= int(slack_timeout) <= 60:
            raise SettingsError(
                f"SLACK_TIMEOUT must be a number of seconds from 1 to 60, not {slack_timeout!r}"
            )
        public_url = (environ.get("PUBLIC_URL") or "").strip().rstrip("/") or None
        if public_url is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", public_url):
            raise SettingsError(
                f"PUBLIC_URL must be the http(s) address of the bot, not {public_url!r}"
            )
        client_id = environ.get("SLACK_CLIENT_ID") or None
        if client_id is not None and public_url is None:
            raise SettingsError(
                "SLACK_CLIENT_ID (Sign in with Slack) needs PUBLIC_URL, the address people reach "
                "the bot at: Slack sends them back to <PUBLIC_URL>/auth/slack/callback, which "
                "must be in the app's redirect URLs"
            )
        session_secret = environ.get("SESSION_SECRET") or None
        if session_secret is not None and len(session_secret) < 32:
            raise SettingsError(
                "SESSION_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)"
            )
        try:
            followup_rules = parse_followup_rules(environ)
            github = parse_github(environ, followup_rules.tracker == "github")
            jira = parse_jira(environ, followup_rules.tracker == "jira")
        except TrackerSettingsError as error:
            raise SettingsError(str(error)) from None
        return cls(
            database_url=environ.get("DATABASE_URL") or None,
            data_dir=Path(environ.get("BOT_DATA_DIR") or ".data"),
            incident_admins=frozenset(_split_list(environ.get("INCIDENT_ADMINS"))),
            categories=categories or DEFAULT_CATEGORIES,
            log_level=log_level,
            log_format=log_format,
            slack_bot_token=environ.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=environ.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=app_token,
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            incident_channel=channel,
            port=int(port),
            host=host,
            slack_max_body_bytes=int(max_body),
            work_queue_limit=int(queue_limit),
            max_screenshot_bytes=int(max_bytes),
            attach_thread_files=thread_files in {"true", "1", "yes"},
            reminder_cadences=cadences,
            quiet_hours=quiet_hours,
            timezone=zone,
            digest_time=None if digest == "off" else _clock_time(digest, "DIGEST_TIME"),
            auto_close_after=timedelta(days=int(auto_close)) if int(auto_close) else None,
            scheduler_interval=interval,
            slack_timeout=int(slack_timeout),
            declare_limit=parse_declare_limit(environ.get("DECLARE_LIMIT") or "10/10m"),
            channel_rules=parse_channel_rules(environ),
            role_rules=parse_role_rules(environ),
            update_intervals=parse_intervals(environ.get("UPDATE_INTERVALS")),
            slack_client_id=client_id,
            slack_client_secret=environ.get("SLACK_CLIENT_SECRET") or None,
            session_secret=session_secret,
            public_url=public_url,
            followup_rules=followup_rules,
            github=github,
            jira=jira,
        )
