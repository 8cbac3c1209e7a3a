"""The follow-up and tracker settings (FOLLOWUP_*, CLOSE_REQUIRES, GITHUB_*, JIRA_*), read into
bot.settings.Settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time

from bot.incidents.followups import CLOSE_RULES, DEFAULT_PRIORITIES, TRACKERS, FollowUpRules

GITHUB_API_URL = "https://api.github.com"
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_JIRA_PROJECT = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")


class TrackerSettingsError(ValueError):
    """A follow-up or tracker setting is present but unusable (bot.settings re-raises it)."""


@dataclass(frozen=True)
class GitHubSettings:
    token: str
    repo: str  # owner/name
    api_url: str = GITHUB_API_URL
    webhook_secret: str | None = None


@dataclass(frozen=True)
class JiraSettings:
    url: str  # https://example.atlassian.net
    email: str
    api_token: str
    project: str
    issue_type: str = "Task"
    webhook_secret: str | None = None


def parse_followup_rules(environ: Mapping[str, str]) -> FollowUpRules:
    raw = environ.get("FOLLOWUP_PRIORITIES")
    priorities = (
        tuple(p.strip().lower() for p in raw.split(",") if p.strip()) if raw else DEFAULT_PRIORITIES
    )
    if not priorities or len(set(priorities)) != len(priorities) or len(priorities) > 10:
        raise TrackerSettingsError(
            "FOLLOWUP_PRIORITIES: list 1 to 10 different priorities, highest first, such as "
            "high,medium,low"
        )
    if any(len(p) > 32 or not re.match(r"^[a-z0-9][a-z0-9 _-]*$", p) for p in priorities):
        raise TrackerSettingsError(
            "FOLLOWUP_PRIORITIES: each priority is a word of letters, digits, - or _ "
            "(at most 32 characters)"
        )
    close = (environ.get("CLOSE_REQUIRES") or CLOSE_RULES[0]).strip().lower()
    if close not in CLOSE_RULES:
        raise TrackerSettingsError(
            f"CLOSE_REQUIRES must be one of {', '.join(CLOSE_RULES)}, not {close!r}"
        )
    tracker = (environ.get("FOLLOWUP_TRACKER") or "").strip().lower() or None
    if tracker is not None and tracker not in TRACKERS:
        raise TrackerSettingsError(
            f"FOLLOWUP_TRACKER must be github or jira (or unset), not {tracker!r}"
        )
    export = (environ.get("FOLLOWUP_EXPORT") or "manual").strip().lower()
    if export not in {"manual", "auto"}:
        raise TrackerSettingsError(f"FOLLOWUP_EXPORT must be manual or auto, not {export!r}")
    if export == "auto" and tracker is None:
        raise TrackerSettingsError("FOLLOWUP_EXPORT=auto needs FOLLOWUP_TRACKER (github or jira)")
    return FollowUpRules(
        priorities=priorities,
        close_requires=close,
        tracker=tracker,
        auto_export=export == "auto",
        digest=_parse_digest(environ.get("FOLLOWUP_DIGEST")),
    )


def _parse_digest(raw: str | None) -> tuple[int, time] | None:
    """`mon 09:00` (the default), `fri 16:30`, or `off`."""
    value = (raw or "mon 09:00").strip().lower()
    if value == "off":
        return None
    day, _, clock = value.partition(" ")
    hours, sep, minutes = clock.strip().partition(":")
    if (
        day[:3] not in _WEEKDAYS
        or not sep
        or not (hours.isdigit() and minutes.isdigit())
        or not (int(hours) < 24 and int(minutes) < 60)
    ):
        raise TrackerSettingsError(
            f"FOLLOWUP_DIGEST: {raw!r} should look like mon 09:00 (a weekday and a time, in "
            "TIMEZONE) or off"
        )
    return _WEEKDAYS.index(day[:3]), time(int(hours), int(minutes))


def parse_github(environ: Mapping[str, str], wanted: bool) -> GitHubSettings | None:
    if not wanted:
        return None
    token, repo = environ.get("GITHUB_TOKEN") or "", (environ.get("GITHUB_REPO") or "").strip()
    if not token or not repo:
        raise TrackerSettingsError("FOLLOWUP_TRACKER=github needs GITHUB_TOKEN and GITHUB_REPO")
    if not _REPO.match(repo):
        raise TrackerSettingsError(f"GITHUB_REPO must look like owner/name, not {repo!r}")
    api_url = (environ.get("GITHUB_API_URL") or GITHUB_API_URL).strip().rstrip("/")
    if not _URL.match(api_url):
        raise TrackerSettingsError(f"GITHUB_API_URL must be an http(s) URL, not {api_url!r}")
    return GitHubSettings(
        token=token,
        repo=repo,
        api_url=api_url,
        webhook_secret=environ.get("GITHUB_WEBHOOK_SECRET") or None,
    )


def parse_jira(environ: Mapping[str, str], wanted: bool) -> JiraSettings | None:
    if not wanted:
        return None
    names = ("JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECT")
    missing = [name for name in names if not (environ.get(name) or "").strip()]
    if missing:
        raise TrackerSettingsError(f"FOLLOWUP_TRACKER=jira needs {', '.join(missing)}")
    url = environ["JIRA_URL"].strip().rstrip("/")
    if not _URL.match(url):
        raise TrackerSettingsError(f"JIRA_URL must be an http(s) URL, not {url!r}")
    project = environ["JIRA_PROJECT"].strip()
    if not _JIRA_PROJECT.match(project):
        raise TrackerSettingsError(
            f"JIRA_PROJECT must be a project key such as OPS, not {project!r}"
        )
    return JiraSettings(
        url=url,
        email=environ["JIRA_EMAIL"].strip(),
        api_token=environ["JIRA_API_TOKEN"],
        project=project,
        issue_type=(environ.get("JIRA_ISSUE_TYPE") or "Task").strip(),
        webhook_secret=environ.get("JIRA_WEBHOOK_SECRET") or None,
    )
