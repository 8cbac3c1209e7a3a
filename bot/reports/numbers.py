"""The period a report covers, and numbers as people read them: durations, sizes, the table of
MTTA/MTTM/MTTR by severity, the follow-ups per week. Shared by the web pages, Slack and the
post-mortem."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.incidents import SEVERITY_LABELS, WORKFLOW_ORDER, InvalidInput, Stats
from bot.incidents.followup_stats import FollowUpStats
from db.models import Severity, Status

WEEKS_DEFAULT = 12
# Two years of weekly bars is as much as a chart can show legibly.
WEEKS_MAX = 104


def parse_weeks(value: str | int | None) -> int:
    """How many weeks a report covers: a whole number from 1 to WEEKS_MAX; the default when
    none is given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return WEEKS_DEFAULT
    text = str(value).strip()
    if (
        isinstance(value, bool)
        or not (text.isascii() and text.isdigit() and len(text) <= 3)
        or not 1 <= int(text) <= WEEKS_MAX
    ):
        raise InvalidInput(
            f"Weeks must be a whole number from 1 to {WEEKS_MAX}, not {text[:20]!r}.", "weeks"
        )
    return int(text)


@dataclass(frozen=True)
class Period:
    """Whole ISO weeks in UTC, the current one last: [since, until), both Mondays 00:00."""

    weeks: int
    since: datetime
    until: datetime

    @property
    def mondays(self) -> list[date]:
        first = self.since.date()
        return [first + timedelta(weeks=n) for n in range(self.weeks)]

    def describe(self) -> str:
        last = "this week" if self.weeks == 1 else f"the last {self.weeks} weeks"
        return f"{last} (since Monday {self.since:%Y-%m-%d}, UTC)"


def period(weeks: int = WEEKS_DEFAULT, *, now: datetime | None = None) -> Period:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    monday = datetime.combine(moment.date() - timedelta(days=moment.weekday()), time(), UTC)
    return Period(weeks, monday - timedelta(weeks=weeks - 1), monday + timedelta(weeks=1))


def duration(span: timedelta) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`: precise enough to compare, short to read."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / 1024 / 1024:.1f} MB"


NOT_REACHED = "-"


@dataclass(frozen=True)
class SeverityLine:
    """One severity's line of the stats table, ready to show."""

    severity: Severity
    label: str
    declared: int
    mtta: str
    mttm: str
    mttr: str


def severity_lines(stats: Stats) -> list[SeverityLine]:
    """Every severity, most severe first, those without incidents too (a zero is news)."""
    lines = []
    for severity in Severity:
        timings = stats.timings.get(severity)
        spans = (timings.mtta, timings.mttm, timings.mttr) if timings else (None, None, None)
        mtta, mttm, mttr = (NOT_REACHED if s is None else duration(s) for s in spans)
        lines.append(
            SeverityLine(
                severity,
                SEVERITY_LABELS[severity],
                stats.by_severity.get(severity, 0),
                mtta,
                mttm,
                mttr,
            )
        )
    return lines


def status_counts(stats: Stats) -> list[tuple[Status, int]]:
    """How many of the period's incidents are in each status now, in workflow order."""
    return [(status, stats.by_status.get(status, 0)) for status in WORKFLOW_ORDER]


@dataclass(frozen=True)
class FollowUpLine:
    """One week's line of the follow-ups table."""

    week: date
    opened: int
    completed: int
    dropped: int


def followup_lines(stats: FollowUpStats, covered: Period) -> list[FollowUpLine]:
    """Every week of the period, oldest first, those without follow-ups too."""
    found = {w.week: w for w in stats.weeks}
    lines = []
    for monday in covered.mondays:
        week = found.get(monday)
        counts = (week.opened, week.completed, week.dropped) if week else (0, 0, 0)
        lines.append(FollowUpLine(monday, *counts))
    return lines
