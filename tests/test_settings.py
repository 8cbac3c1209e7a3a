"""Settings read from an explicit mapping, and the DATABASE_URL spellings we accept or refuse."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.settings import DEFAULT_CATEGORIES, Settings, SettingsError
from db.session import DatabaseUrlError, normalize_url


def test_defaults_for_an_empty_environment() -> None:
    settings = Settings.from_env({})

    assert settings == Settings(
        database_url=None,
        data_dir=Path(".data"),
        incident_admins=frozenset(),
        categories=DEFAULT_CATEGORIES,
        log_level="INFO",
    )
    assert settings.categories == ("outage", "degradation", "security", "data", "other")


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "", "BOT_DATA_DIR": "", "INCIDENT_ADMINS": "", "INCIDENT_CATEGORIES": ""}
    )

    assert settings.database_url is None
    assert settings.data_dir == Path(".data")
    assert settings.incident_admins == frozenset()
    assert settings.categories == DEFAULT_CATEGORIES


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://bot@db/incidents",
            "BOT_DATA_DIR": "/var/lib/incident-bot",
            "LOG_LEVEL": "debug",
        }
    )

    assert settings.database_url == "postgres://bot@db/incidents"
    assert settings.data_dir == Path("/var/lib/incident-bot")
    assert settings.log_level == "DEBUG"


def test_admins_are_a_comma_list_with_spaces_and_empty_items_dropped() -> None:
    settings = Settings.from_env({"INCIDENT_ADMINS": " U01ADMIN ,U02BOSS,, ,U03LEAD  ,"})

    assert settings.incident_admins == frozenset({"U01ADMIN", "U02BOSS", "U03LEAD"})


def test_categories_are_a_comma_list_lowercased_in_order() -> None:
    settings = Settings.from_env({"INCIDENT_CATEGORIES": " Outage , Security,,  Vendor Issue ,"})

    assert settings.categories == ("outage", "security", "vendor issue")


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "warning"])
def test_known_log_levels_are_accepted(level: str) -> None:
    assert Settings.from_env({"LOG_LEVEL": level}).log_level == level.upper()


def test_blank_log_level_means_the_default() -> None:
    # Like a blank DATABASE_URL or BOT_DATA_DIR, a blank value counts as unset.
    assert Settings.from_env({"LOG_LEVEL": ""}).log_level == "INFO"


@pytest.mark.parametrize("level", ["verbose", "TRACE", "CRITICAL", "info "])
def test_bad_log_level_is_refused_with_the_choices(level: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"LOG_LEVEL": level})

    message = str(raised.value)
    assert message.startswith("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    assert repr(level.upper()) in message


def test_category_of_64_characters_is_accepted() -> None:
    longest = "x" * 64

    assert Settings.from_env({"INCIDENT_CATEGORIES": f"outage,{longest}"}).categories == (
        "outage",
        longest,
    )


def test_over_long_category_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^INCIDENT_CATEGORIES: .*at most 64 characters"):
        Settings.from_env({"INCIDENT_CATEGORIES": "outage, " + "y" * 65})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://bot:pw@db.example:5432/incidents",
            "postgresql+psycopg2://bot:pw@db.example:5432/incidents",
        ),
        (
            "postgresql://bot:pw@db.example:5432/incidents",
            "postgresql+psycopg2://bot:pw@db.example:5432/incidents",
        ),
        (
            "postgresql+psycopg2://bot:pw@db.example:5432/incidents",
            "postgresql+psycopg2://bot:pw@db.example:5432/incidents",
        ),
        ("POSTGRES://bot@db/incidents", "postgresql+psycopg2://bot@db/incidents"),
        (
            "postgresql://postgres@/postgres?host=/tmp/socket-dir",
            "postgresql+psycopg2://postgres@/postgres?host=/tmp/socket-dir",
        ),
    ],
)
def test_normalize_url_uses_psycopg2_for_every_postgres_spelling(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://user@db/incidents", "(it starts with mysql://)"),
        ("sqlite:///x", "(it starts with sqlite://)"),
        ("postgresql+asyncpg://bot@db/incidents", "(it starts with postgresql+asyncpg://)"),
        ("db.example:5432/incidents", "(it has no scheme)"),
    ],
)
def test_normalize_url_refuses_other_databases_naming_database_url(url: str, shown: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_url(url)

    message = str(raised.value)
    assert message.startswith(
        "DATABASE_URL must start with postgres://, postgresql:// or postgresql+psycopg2://"
    )
    assert shown in message


def test_normalize_url_refusal_does_not_echo_a_password() -> None:
    # A URL pasted without its scheme still carries the credentials; the error is printed by
    # `python -m bot check` and logged, so it must not repeat them.
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_url("bot:s3cret-pw@db.example:5432/incidents")

    assert "DATABASE_URL" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def test_slack_body_limit_defaults_to_one_mebibyte_and_can_be_set() -> None:
    assert Settings.from_env({}).slack_max_body_bytes == 1024 * 1024
    assert Settings.from_env({"SLACK_MAX_BODY_BYTES": "65536"}).slack_max_body_bytes == 65536


def test_work_queue_limit_defaults_to_200_and_can_be_set() -> None:
    assert Settings.from_env({}).work_queue_limit == 200
    assert Settings.from_env({"WORK_QUEUE_LIMIT": "5"}).work_queue_limit == 5


def test_scheduler_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.reminder_cadences == {
        "SEV1": timedelta(minutes=15),
        "SEV2": timedelta(minutes=30),
        "SEV3": timedelta(hours=4),
        "SEV4": None,
    }
    assert settings.quiet_hours is None
    assert settings.digest_time == time(9, 0)
    assert settings.auto_close_after == timedelta(days=7)
    assert settings.scheduler_interval == timedelta(seconds=10)


def test_scheduler_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "REMINDER_CADENCES": "sev3=10m, SEV4=2d, SEV1=off",
            "QUIET_HOURS": "22:00-07:30",
            "TIMEZONE": "Europe/Paris",
            "DIGEST_TIME": "off",
            "AUTO_CLOSE_AFTER_DAYS": "0",
            "SCHEDULER_INTERVAL": "90s",
        }
    )
    assert settings.reminder_cadences["SEV1"] is None
    assert settings.reminder_cadences["SEV2"] == timedelta(minutes=30)  # untouched default
    assert settings.reminder_cadences["SEV3"] == timedelta(minutes=10)
    assert settings.reminder_cadences["SEV4"] == timedelta(days=2)
    assert settings.quiet_hours == (time(22, 0), time(7, 30))
    assert str(settings.timezone) == "Europe/Paris"
    assert settings.digest_time is None
    assert settings.auto_close_after is None
    assert settings.scheduler_interval == timedelta(seconds=90)


def test_sign_in_with_slack_with_its_public_url() -> None:
    settings = Settings.from_env(
        {"SLACK_CLIENT_ID": "1.2", "PUBLIC_URL": "https://incidents.example.com/"}
    )
    assert (settings.slack_client_id, settings.public_url) == (
        "1.2",
        "https://incidents.example.com",
    )


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ({}, "127.0.0.1"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "0.0.0.0"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, "0.0.0.0"),
        ({"HOST": "0.0.0.0"}, "0.0.0.0"),
        ({"HOST": "::1"}, "::1"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "HOST": "10.0.0.5"}, "10.0.0.5"),
        ({"HOST": " localhost "}, "localhost"),
    ],
)
def test_host_is_loopback_without_slack_and_every_interface_with_it(
    env: dict[str, str], host: str
) -> None:
    assert Settings.from_env(env).host == host


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REMINDER_CADENCES": "SEV5=10m"}, "should look like SEV1=15m"),
        ({"REMINDER_CADENCES": "SEV1=10"}, "'10' is not a duration"),
        ({"REMINDER_CADENCES": "SEV1=-5m"}, "is not a duration"),
        ({"QUIET_HOURS": "22:00"}, "should look like 22:00-07:00"),
        ({"QUIET_HOURS": "25:00-07:00"}, "is not a time"),
        ({"TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ({"DIGEST_TIME": "9am"}, "DIGEST_TIME: '9am' is not a time"),
        ({"AUTO_CLOSE_AFTER_DAYS": "a week"}, "AUTO_CLOSE_AFTER_DAYS must be a number"),
        ({"SCHEDULER_INTERVAL": "off"}, "can't be off"),
        ({"MAX_SCREENSHOT_BYTES": "16MB"}, "MAX_SCREENSHOT_BYTES must be a number"),
        ({"SLACK_MAX_BODY_BYTES": "1MiB"}, "SLACK_MAX_BODY_BYTES must be a number of bytes"),
        ({"SLACK_MAX_BODY_BYTES": "65535"}, "at least 65536"),
        ({"WORK_QUEUE_LIMIT": "0"}, "WORK_QUEUE_LIMIT must be a number of jobs, at least 1"),
        ({"WORK_QUEUE_LIMIT": "lots"}, "WORK_QUEUE_LIMIT must be a number of jobs"),
        ({"ATTACH_THREAD_FILES": "maybe"}, "ATTACH_THREAD_FILES must be true or false"),
        ({"INCIDENT_CHANNEL": "#incidents"}, "INCIDENT_CHANNEL must be a channel id"),
        ({"SLACK_APP_TOKEN": "xoxb-1"}, "must be an app-level token"),
        ({"SLACK_API_URL": "slack.com/api"}, "must be an http(s) URL"),
        ({"PORT": "http"}, "PORT must be a TCP port"),
        ({"HOST": "0.0.0.0:3000"}, "HOST must be an address to listen on"),
        ({"HOST": "http://localhost"}, "HOST must be an address to listen on"),
        ({"SLACK_CLIENT_ID": "1.2"}, "SLACK_CLIENT_ID (Sign in with Slack) needs PUBLIC_URL"),
        ({"INCIDENT_ROLES": "comms"}, "INCIDENT_ROLES: 'comms' should look like comms="),
        ({"INCIDENT_ROLES": "Comms Lead=X: y"}, "should look like comms="),
        ({"INCIDENT_ROLES": "lead=Boss: runs it"}, "INCIDENT_ROLES: 'lead' is reserved"),
        ({"INCIDENT_ROLES": "ops=Ops: a;ops=Ops: b"}, "the role 'ops' is listed twice"),
        ({"INCIDENT_ROLES": "ops=: a"}, "should look like comms="),
        ({"LEAD_REMINDER_AFTER": "soon"}, "LEAD_REMINDER_AFTER: 'soon' is not a duration"),
        ({"UPDATE_INTERVALS": "15m,later"}, "UPDATE_INTERVALS: 'later' is not a duration"),
        ({"UPDATE_INTERVALS": "15m,none"}, "'none' is always offered"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)


def test_roles_and_update_intervals_default_to_comms_scribe_and_four_choices() -> None:
    settings = Settings.from_env({})
    roles = settings.role_rules
    assert [(r.key, r.name, r.duties) for r in roles.roles] == [
        ("comms", "Communications lead", "posts the updates"),
        ("scribe", "Scribe", "keeps the timeline"),
    ]
    assert [r.key for r in roles.all] == ["lead", "comms", "scribe"]
    assert roles.lead_reminder_after == timedelta(minutes=5)
    assert settings.update_intervals == (
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=4),
    )


def test_roles_and_update_intervals_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "INCIDENT_ROLES": " Ops=Operations lead: runs the fixes ; liaison=Customer liaison ;",
            "LEAD_REMINDER_AFTER": "off",
            "UPDATE_INTERVALS": "1h, 5s,1h",
        }
    )
    assert [(r.key, r.name, r.duties) for r in settings.role_rules.roles] == [
        ("ops", "Operations lead", "runs the fixes"),
        ("liaison", "Customer liaison", ""),
    ]
    assert settings.role_rules.lead_reminder_after is None
    # Shortest first, each once: the form lists them in this order.
    assert settings.update_intervals == (timedelta(seconds=5), timedelta(hours=1))


def test_an_empty_role_list_leaves_the_lead_alone() -> None:
    rules = Settings.from_env({"INCIDENT_ROLES": ""}).role_rules
    assert [r.key for r in rules.all] == ["lead"]


def test_follow_up_settings_default_to_no_tracker_and_triaged_follow_ups_to_close() -> None:
    settings = Settings.from_env({})
    rules = settings.followup_rules
    assert rules.priorities == ("high", "medium", "low") and rules.default_priority == "medium"
    assert rules.close_requires == "followups-triaged" and rules.digest == (0, time(9, 0))
    assert (rules.tracker, rules.auto_export, settings.github, settings.jira) == (
        None,
        False,
        None,
        None,
    )


def test_follow_up_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "FOLLOWUP_PRIORITIES": "P1, p2,P3",
            "FOLLOWUP_DIGEST": "Fri 16:30",
            "CLOSE_REQUIRES": "review-done",
            "FOLLOWUP_TRACKER": "github",
            "FOLLOWUP_EXPORT": "auto",
            "GITHUB_TOKEN": "ghp_x",
            "GITHUB_REPO": "acme/ops",
            "GITHUB_API_URL": "https://github.example.com/api/v3/",
            "GITHUB_WEBHOOK_SECRET": "s3cret",
        }
    )
    rules = settings.followup_rules
    assert rules.priorities == ("p1", "p2", "p3") and rules.digest == (4, time(16, 30))
    assert (rules.close_requires, rules.tracker, rules.auto_export) == (
        "review-done",
        "github",
        True,
    )
    assert settings.github is not None and settings.github.repo == "acme/ops"
    assert settings.github.api_url == "https://github.example.com/api/v3"
    jira = Settings.from_env(
        {
            "FOLLOWUP_TRACKER": "jira",
            "JIRA_URL": "https://acme.atlassian.net/",
            "JIRA_EMAIL": "bot@acme.test",
            "JIRA_API_TOKEN": "t",
            "JIRA_PROJECT": "OPS",
        }
    ).jira
    assert jira is not None and (jira.url, jira.issue_type) == (
        "https://acme.atlassian.net",
        "Task",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FOLLOWUP_PRIORITIES": "high,high"}, "FOLLOWUP_PRIORITIES"),
        ({"FOLLOWUP_PRIORITIES": "high,<b>"}, "FOLLOWUP_PRIORITIES"),
        ({"FOLLOWUP_DIGEST": "monday"}, "FOLLOWUP_DIGEST"),
        ({"FOLLOWUP_DIGEST": "mon 25:00"}, "FOLLOWUP_DIGEST"),
        ({"CLOSE_REQUIRES": "everything"}, "CLOSE_REQUIRES must be one of"),
        ({"FOLLOWUP_TRACKER": "linear"}, "FOLLOWUP_TRACKER must be github or jira"),
        ({"FOLLOWUP_EXPORT": "auto"}, "FOLLOWUP_EXPORT=auto needs FOLLOWUP_TRACKER"),
        ({"FOLLOWUP_TRACKER": "github"}, "needs GITHUB_TOKEN and GITHUB_REPO"),
        (
            {"FOLLOWUP_TRACKER": "github", "GITHUB_TOKEN": "t", "GITHUB_REPO": "ops"},
            "GITHUB_REPO must look like owner/name",
        ),
        ({"FOLLOWUP_TRACKER": "jira", "JIRA_URL": "x"}, "needs JIRA_EMAIL, JIRA_API_TOKEN"),
        (
            {
                "FOLLOWUP_TRACKER": "jira",
                "JIRA_URL": "https://a.atlassian.net",
                "JIRA_EMAIL": "e",
                "JIRA_API_TOKEN": "t",
                "JIRA_PROJECT": "ops project",
            },
            "JIRA_PROJECT must be a project key",
        ),
    ],
)
def test_bad_follow_up_settings_refuse_to_start_naming_the_variable(
    env: dict, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
