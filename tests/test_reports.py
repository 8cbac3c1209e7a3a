"""Weekly reports: the weekly query's numbers for incidents with known timestamps, the report's
period, the PNG charts, the /stats page and its charts, and `/incident stats` through Slack."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot import incidents, reports
from bot.incidents import Actor, IncidentDraft, InvalidInput, WeekRow
from db.models import Severity
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import Bot, sign_in_client
from tests.steps import FIXED

REPORTER = Actor(defaults.USER_ID)
RESPONDER = Actor("U0BOB00001")
CHANNEL = defaults.CHANNEL_ID
MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
NEXT_MONDAY = MONDAY + timedelta(weeks=1)
SEV1_RED = (0xB0, 0x00, 0x20)
SEV2_ORANGE = (0xE6, 0x51, 0x00)


def declare(session: Session, severity: str, at: datetime, resolve_after: timedelta | None) -> int:
    incident_id = incidents.declare(
        session, IncidentDraft(title="Checkout is failing", severity=severity), REPORTER, now=at
    ).id
    if resolve_after is not None:
        incidents.change_status(
            session, incident_id, "resolved", RESPONDER, now=at + resolve_after, resolution=FIXED
        )
    return incident_id


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# --- The weekly query ----------------------------------------------------------------------------


@pytest.fixture
def seeded(session: Session) -> Session:
    """Two weeks of incidents with known timestamps, and some just outside them."""
    # Week of 3 March: two SEV1s resolved after 1 h and 3 h; one declared Monday 00:30 in
    # UTC+01:00, which is Sunday 23:30 UTC: still this week.
    declare(session, "SEV1", MONDAY, hours(1))  # the first instant of the week is inside
    declare(session, "SEV1", datetime(2025, 3, 10, 0, 30, tzinfo=timezone(hours(1))), hours(3))
    # A SEV2 never resolved, and a SEV2 resolved after 30 min then closed.
    declare(session, "SEV2", MONDAY + timedelta(days=2), None)
    closed = declare(session, "SEV2", MONDAY + timedelta(days=3), timedelta(minutes=30))
    incidents.change_status(
        session, closed, "closed", RESPONDER, now=MONDAY + timedelta(days=4), resolution=FIXED
    )
    # Week of 10 March: a SEV3 resolved after 2 h then reopened (not resolved any more), a SEV3
    # resolved after 6 h, and a SEV4 declared at the very end of the window.
    reopened = declare(session, "SEV3", NEXT_MONDAY, hours(2))
    incidents.change_status(
        session, reopened, "investigating", RESPONDER, now=NEXT_MONDAY + hours(3)
    )
    declare(session, "SEV3", NEXT_MONDAY + hours(12), hours(6))
    declare(session, "SEV4", NEXT_MONDAY + timedelta(weeks=1, microseconds=-1), hours(1))
    # Outside: just before, and exactly at the end (the window is half-open).
    declare(session, "SEV1", MONDAY - timedelta(microseconds=1), hours(1))
    declare(session, "SEV1", NEXT_MONDAY + timedelta(weeks=1), hours(1))
    return session


def test_weekly_counts_and_mean_time_to_resolve_per_week_and_severity(seeded: Session) -> None:
    rows = incidents.weekly(seeded, MONDAY, MONDAY + timedelta(weeks=2))

    assert rows == [
        WeekRow(date(2025, 3, 3), Severity.SEV1, 2, 2, 2 * 3600.0),
        WeekRow(date(2025, 3, 3), Severity.SEV2, 2, 1, 1800.0),
        WeekRow(date(2025, 3, 10), Severity.SEV3, 2, 1, 6 * 3600.0),
        WeekRow(date(2025, 3, 10), Severity.SEV4, 1, 1, 3600.0),
    ]


def test_weekly_weeks_are_utc_whatever_the_sessions_time_zone(seeded: Session) -> None:
    seeded.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))  # UTC+14

    rows = incidents.weekly(seeded, MONDAY, MONDAY + timedelta(weeks=2))

    assert [(r.week, r.severity, r.declared) for r in rows] == [
        (date(2025, 3, 3), Severity.SEV1, 2),
        (date(2025, 3, 3), Severity.SEV2, 2),
        (date(2025, 3, 10), Severity.SEV3, 2),
        (date(2025, 3, 10), Severity.SEV4, 1),
    ]


def test_weekly_of_an_empty_window_is_empty_and_a_backwards_one_is_refused(
    seeded: Session,
) -> None:
    assert incidents.weekly(seeded, datetime(2024, 1, 1, tzinfo=UTC), MONDAY - hours(1)) == []
    with pytest.raises(InvalidInput, match="end of the window must be after its start"):
        incidents.weekly(seeded, MONDAY, MONDAY)


# --- The period ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "weeks", "since", "until"),
    [
        # A Wednesday afternoon: twelve whole weeks ending with this one.
        (datetime(2025, 3, 12, 15, 0, tzinfo=UTC), 12, date(2024, 12, 23), date(2025, 3, 17)),
        # Monday 00:00 UTC is the new week already.
        (datetime(2025, 3, 10, 0, 0, tzinfo=UTC), 1, date(2025, 3, 10), date(2025, 3, 17)),
        # Monday 00:30 in Paris is still Sunday in UTC.
        (datetime(2025, 3, 10, 0, 30, tzinfo=timezone(hours(1))), 1, date(2025, 3, 3), None),
        (datetime(2025, 3, 12, tzinfo=UTC), 104, date(2023, 3, 20), date(2025, 3, 17)),
    ],
)
def test_a_period_is_whole_utc_weeks_ending_with_this_one(
    now: datetime, weeks: int, since: date, until: date | None
) -> None:
    period = reports.period(weeks, now=now)

    assert period.since == datetime.combine(since, datetime.min.time(), UTC)
    assert period.until == period.since + timedelta(weeks=weeks)
    if until is not None:
        assert period.until.date() == until
    assert len(period.mondays) == weeks
    assert all(monday.weekday() == 0 for monday in period.mondays)


@pytest.mark.parametrize(
    ("value", "weeks"),
    [(None, 12), ("", 12), (" ", 12), ("1", 1), (" 7 ", 7), ("104", 104), (52, 52)],
)
def test_weeks_are_whole_numbers_from_1_to_104(value: Any, weeks: int) -> None:
    assert reports.parse_weeks(value) == weeks


@pytest.mark.parametrize(
    "value", ["0", "105", "-1", "1.5", "abc", "١٢", "1e2", "00000012", True, 0]
)
def test_other_weeks_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="Weeks must be a whole number from 1 to 104") as error:
        reports.parse_weeks(value)
    assert error.value.field == "weeks"


# --- The charts ----------------------------------------------------------------------------------


def pixels_of(png: bytes, colour: tuple[int, int, int]) -> int:
    picture = Image.open(io.BytesIO(png))
    assert (picture.format, picture.size) == ("PNG", (800, 400))
    counts = picture.convert("RGB").getcolors(800 * 400) or []
    return next((n for n, seen in counts if seen == colour), 0)


PERIOD = reports.period(2, now=MONDAY + timedelta(weeks=1, days=2))


def test_the_incidents_chart_draws_bars_of_each_severity() -> None:
    rows = [WeekRow(date(2025, 3, 3), Severity.SEV1, 3, 1, 60.0)]

    drawn = pixels_of(reports.incidents_chart(rows, PERIOD), SEV1_RED)
    empty = reports.incidents_chart([], PERIOD)

    # The legend's swatch is a few hundred pixels; a bar three incidents high is far more.
    assert drawn > 5_000
    assert pixels_of(empty, SEV1_RED) == 0
    # Rows outside the period are not drawn.
    outside = [WeekRow(date(2025, 2, 24), Severity.SEV1, 3, 1, 60.0)]
    assert reports.incidents_chart(outside, PERIOD) == empty


def test_the_mttr_chart_draws_only_severities_with_resolved_incidents() -> None:
    rows = [
        WeekRow(date(2025, 3, 3), Severity.SEV2, 2, 2, 5400.0),
        WeekRow(date(2025, 3, 10), Severity.SEV1, 1, 0, None),
    ]

    png = reports.mttr_chart(rows, PERIOD)

    assert pixels_of(png, SEV2_ORANGE) > 50
    assert pixels_of(png, SEV1_RED) == 0
    assert pixels_of(reports.mttr_chart([], PERIOD), SEV2_ORANGE) == 0


# --- On the web ----------------------------------------------------------------------------------


@pytest.fixture
def recent(slackbot: Bot) -> datetime:
    """Two SEV1s declared two days ago, acknowledged after 10 and 30 min and resolved after
    1 h and 3 h, and a SEV3 still open."""
    declared = datetime.now(UTC) - timedelta(days=2)
    with slackbot.sessions.begin() as session:
        for acknowledged, resolved in ((10, hours(1)), (30, hours(3))):
            incident_id = declare(session, "SEV1", declared, None)
            incidents.change_status(
                session,
                incident_id,
                "investigating",
                RESPONDER,
                now=declared + timedelta(minutes=acknowledged),
            )
            incidents.change_status(
                session,
                incident_id,
                "resolved",
                RESPONDER,
                now=declared + resolved,
                resolution=FIXED,
            )
        declare(session, "SEV3", declared, None)
    return declared


def signed_in(bot: Bot) -> Any:
    client = bot.web.test_client()
    sign_in_client(client, REPORTER.user_id)
    return client


def row(html: str, severity: str) -> list[str]:
    found = re.search(rf'<tr id="severity-{severity}">(.*?)</tr>', html, re.S)
    assert found, html
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", found[1])]


# A fresh interpreter drawing both charts on six threads at once, as a page's two <img> requests
# (and a Slack /incident stats beside them) do on a freshly started bot; then once more.
_AT_ONCE = """
import threading
from bot import reports
from bot.reports.numbers import period
weeks, start, failures = period(12), threading.Barrier(6), []
def draw(chart):
    start.wait()
    try:
        chart([], weeks)
    except Exception as error:
        failures.append(repr(error))
charts = (reports.incidents_chart, reports.mttr_chart) * 3
threads = [threading.Thread(target=draw, args=(chart,)) for chart in charts]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
reports.incidents_chart([], weeks)
print(failures)
"""


def test_charts_drawn_at_once_on_a_fresh_start_all_work_and_keep_working() -> None:
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-c", _AT_ONCE], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "[]"


def test_the_stats_page_shows_the_periods_numbers_and_its_charts(
    slackbot: Bot, recent: datetime
) -> None:
    response = signed_in(slackbot).get("/stats?weeks=4")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert '<strong id="total">3</strong>' in html
    assert row(html, "SEV1") == ["SEV1 (critical)", "2", "20 min", "2 h", "2 h"]
    assert row(html, "SEV2") == ["SEV2 (high)", "0", "-", "-", "-"]
    assert row(html, "SEV3") == ["SEV3 (medium)", "1", "-", "-", "-"]
    assert 'src="/stats/incidents.png?weeks=4"' in html
    assert 'src="/stats/mttr.png?weeks=4"' in html
    assert "<dt>Resolved</dt><dd>2</dd>" in html and "<dt>Open</dt><dd>1</dd>" in html


def test_the_stats_page_covers_twelve_weeks_by_default(slackbot: Bot) -> None:
    html = signed_in(slackbot).get("/stats").get_data(as_text=True)

    since = reports.period(12).since
    assert f"the last 12 weeks (since Monday {since:%Y-%m-%d}, UTC)" in html
    assert 'src="/stats/incidents.png?weeks=12"' in html


@pytest.mark.parametrize("path", ["/stats/incidents.png", "/stats/mttr.png"])
def test_the_charts_are_pngs_kept_privately_for_a_minute(
    slackbot: Bot, recent: datetime, path: str
) -> None:
    response = signed_in(slackbot).get(f"{path}?weeks=4")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert pixels_of(response.data, SEV1_RED) > 50


@pytest.mark.parametrize("path", ["/stats", "/stats/incidents.png", "/stats/mttr.png"])
@pytest.mark.parametrize("weeks", ["0", "105", "abc", "-3", "4.5"])
def test_bad_weeks_are_refused(slackbot: Bot, path: str, weeks: str) -> None:
    response = signed_in(slackbot).get(f"{path}?weeks={weeks}")

    assert response.status_code == 422
    assert "Weeks must be a whole number from 1 to 104" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/stats", "/stats/incidents.png", "/stats/mttr.png"])
def test_signed_out_people_are_sent_to_sign_in(slackbot: Bot, path: str) -> None:
    response = slackbot.web.test_client().get(f"{path}?weeks=4")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/sign-in?next={path}?weeks%3D4"


# --- In Slack ------------------------------------------------------------------------------------


def stats_command(bot: Bot, text: str, channel: str = CHANNEL) -> tuple[str, str]:
    payload = payloads.slash_command(
        "/incident", text, fake=bot.fake, user_id=REPORTER.user_id, channel_id=channel
    )
    status, _, body = bot.post(payload)
    assert status == 200, body
    return body, payload["response_url"]


def uploaded_files(fake: FakeSlack) -> list[tuple[str, bytes]]:
    return [
        (item["title"], fake.file_content(item["id"]))
        for call in fake.calls_to("files.completeUploadExternal")
        for item in call["files"]
    ]


def test_slack_posts_the_numbers_and_uploads_both_charts_here(
    slackbot: Bot, recent: datetime
) -> None:
    fake = slackbot.fake
    body, response_url = stats_command(slackbot, "stats 4")
    # Drawing the first chart loads matplotlib.
    fake.wait_for(lambda: fake.calls_to("files.completeUploadExternal"), timeout=30)

    assert body == ""
    period = reports.period(4)
    assert [r["text"] for r in fake.responses(response_url)] == [
        f"Counting the incidents of {period.describe()}; the numbers and charts follow here."
    ]
    [posted] = fake.calls_to("chat.postMessage")
    assert posted["channel"] == CHANNEL
    assert posted["text"] == f"3 incidents declared in {period.describe()}"
    fields = next(b["fields"] for b in posted["blocks"] if b.get("fields"))
    assert fields[0]["text"] == (
        "*🔴 SEV1 (critical)*\n2 declared · MTTA 20 min · MTTM 2 h · MTTR 2 h"
    )
    assert fields[2]["text"] == "*🟡 SEV3 (medium)*\n1 declared · MTTA - · MTTM - · MTTR -"
    [upload] = fake.calls_to("files.completeUploadExternal")
    assert upload["channel_id"] == CHANNEL and not upload.get("thread_ts")
    charts = dict(uploaded_files(fake))
    assert set(charts) == {"incidents-per-week.png", "mttr-per-week.png"}
    assert pixels_of(charts["incidents-per-week.png"], SEV1_RED) > 5_000
    assert pixels_of(charts["mttr-per-week.png"], SEV1_RED) > 50


@pytest.mark.parametrize("weeks", ["0", "105", "many", "4 weeks"])
def test_bad_weeks_are_told_in_the_ack_and_nothing_is_posted(slackbot: Bot, weeks: str) -> None:
    body, response_url = stats_command(slackbot, f"stats {weeks}")

    assert body.startswith("Weeks must be a whole number from 1 to 104, not ")
    assert body.endswith("Usage: `/incident stats [weeks]`.")
    # Refused in the ack: no work was queued that could post anything later.
    assert slackbot.fake.responses(response_url) == []
    assert slackbot.fake.calls_to("chat.postMessage") == []
    assert slackbot.fake.calls_to("files.getUploadURLExternal") == []


def test_a_channel_without_the_bot_is_told_and_gets_nothing(slackbot: Bot) -> None:
    fake = slackbot.fake
    fake.add_channel("C0ELSEWHERE", "elsewhere", is_member=False)

    stats_command(slackbot, "stats 2", channel="C0ELSEWHERE")
    told = fake.wait_for(lambda: fake.messages(REPORTER.user_id), timeout=30)

    assert told[0]["text"] == (
        "I couldn't post the stats here: Slack said not_in_channel. Invite me to this channel "
        "(`/invite @` and my name), or ask where I am."
    )
    assert fake.messages("C0ELSEWHERE") == []
    assert fake.calls_to("files.getUploadURLExternal") == []
