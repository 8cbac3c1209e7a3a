"""Follow-ups in the stats: opened and completed per ISO week (UTC), won't do apart, overdue
now; on the stats page (table and chart) and in /api/v1/stats. MTTR still counts from the
milestones, whatever the review says the impact was."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot import incidents, reports
from bot.incidents import Actor, IncidentDraft, InvalidInput, followups, review, tokens
from bot.incidents.followup_stats import FollowUpWeek, followup_stats
from db.models import ApiToken, FollowUpStatus, Severity
from tests.slackbot import Bot, sign_in_client
from tests.steps import FIXED

OWNER = Actor("U0OWNER001")
RULES = followups.FollowUpRules()
# Whole ISO weeks of January 2001: Mondays the 1st, 8th and 15th.
SINCE = datetime(2001, 1, 1, tzinfo=UTC)
UNTIL = datetime(2001, 1, 22, tzinfo=UTC)
TODAY = date(2001, 1, 20)


def incident(session: Session, at: datetime) -> int:
    draft = IncidentDraft(title="Checkout is failing", severity="SEV2", tell_people=False)
    return incidents.declare(session, draft, OWNER, now=at).id


def add(session: Session, incident_id: int, at: datetime, due: date | None = None) -> int:
    draft = followups.FollowUpDraft("Add an alert", owner=OWNER.user_id, due_on=due)
    return followups.add_followup(session, incident_id, draft, OWNER, RULES, now=at).id


def mark(session: Session, followup_id: int, status: FollowUpStatus, at: datetime) -> None:
    followups.set_followup_status(session, followup_id, status, OWNER, now=at)


@pytest.fixture
def january(session: Session) -> dict[str, int]:
    """Follow-ups opened, done, dropped and reopened across three weeks, and two just outside."""
    before = incident(session, SINCE - timedelta(days=3))
    made = {
        # Opened before the window, done inside it: completed counts, opened doesn't.
        "earlier": add(session, before, SINCE - timedelta(microseconds=1)),
    }
    inc = incident(session, SINCE)
    made["first"] = add(session, inc, SINCE)  # `since` itself is inside
    made["dropped"] = add(session, inc, SINCE + timedelta(days=2))
    made["late_sunday"] = add(session, inc, datetime(2001, 1, 7, 23, 59, 59, tzinfo=UTC))
    made["overdue"] = add(session, inc, datetime(2001, 1, 9, tzinfo=UTC), due=date(2001, 1, 12))
    made["due_later"] = add(session, inc, datetime(2001, 1, 9, tzinfo=UTC), due=date(2001, 1, 25))
    made["due_today"] = add(session, inc, datetime(2001, 1, 9, tzinfo=UTC), due=TODAY)
    made["reopened"] = add(session, inc, datetime(2001, 1, 10, tzinfo=UTC), due=date(2001, 1, 11))
    made["at_until"] = add(session, inc, UNTIL)  # `until` is outside

    mark(session, made["earlier"], FollowUpStatus.DONE, datetime(2001, 1, 9, tzinfo=UTC))
    mark(session, made["first"], FollowUpStatus.DONE, datetime(2001, 1, 9, 12, tzinfo=UTC))
    mark(session, made["dropped"], FollowUpStatus.WONT_DO, datetime(2001, 1, 10, tzinfo=UTC))
    mark(session, made["late_sunday"], FollowUpStatus.DONE, datetime(2001, 1, 15, tzinfo=UTC))
    # Done, then opened again: no longer completed, and overdue (it was due on the 11th).
    mark(session, made["reopened"], FollowUpStatus.DONE, datetime(2001, 1, 10, 1, tzinfo=UTC))
    mark(session, made["reopened"], FollowUpStatus.OPEN, datetime(2001, 1, 10, 2, tzinfo=UTC))
    return made


def test_opened_and_completed_per_week_and_overdue_now(
    session: Session, january: dict[str, int]
) -> None:
    result = followup_stats(session, SINCE, UNTIL, TODAY)

    assert result.weeks == [
        FollowUpWeek(date(2001, 1, 1), opened=3),
        FollowUpWeek(date(2001, 1, 8), opened=4, completed=2, dropped=1),
        FollowUpWeek(date(2001, 1, 15), completed=1),
    ]
    assert (result.opened, result.completed, result.dropped) == (7, 3, 1)
    # Open now: overdue, due_later, due_today, reopened, at_until. Overdue: due before today.
    assert (result.open_now, result.overdue_now) == (5, 2)


def test_overdue_counts_from_the_day_given(session: Session, january: dict[str, int]) -> None:
    assert followup_stats(session, SINCE, UNTIL, date(2001, 1, 11)).overdue_now == 0
    assert followup_stats(session, SINCE, UNTIL, date(2001, 1, 12)).overdue_now == 1
    assert followup_stats(session, SINCE, UNTIL, date(2001, 1, 21)).overdue_now == 3


def test_weeks_are_utc_whatever_the_sessions_time_zone(
    session: Session, january: dict[str, int]
) -> None:
    in_utc = followup_stats(session, SINCE, UNTIL, TODAY)
    session.execute(text("SET LOCAL TIME ZONE 'Pacific/Auckland'"))

    assert followup_stats(session, SINCE, UNTIL, TODAY) == in_utc


def test_an_empty_window_and_a_backwards_one(session: Session) -> None:
    empty = followup_stats(session, SINCE, UNTIL, TODAY)
    assert (empty.weeks, empty.opened, empty.overdue_now) == ([], 0, 0)
    with pytest.raises(InvalidInput, match="end of the window must be after its start"):
        followup_stats(session, UNTIL, SINCE, TODAY)


def test_mttr_counts_from_the_milestones_not_the_impact_window(session: Session) -> None:
    incident_id = incident(session, SINCE)
    incidents.change_status(
        session, incident_id, "resolved", OWNER, resolution=FIXED, now=SINCE + timedelta(hours=1)
    )
    before = incidents.stats(session, SINCE, UNTIL).timings
    review.edit_review(
        session,
        incident_id,
        OWNER,
        {
            "impact_started_at": SINCE - timedelta(hours=5),
            "impact_ended_at": SINCE + timedelta(minutes=30),
        },
        now=SINCE + timedelta(days=1),
    )

    after = incidents.stats(session, SINCE, UNTIL).timings

    assert after == before
    assert after[Severity.SEV2].mttr == timedelta(hours=1)


def test_every_week_of_the_period_has_a_line(session: Session, january: dict[str, int]) -> None:
    period = reports.period(4, now=datetime(2001, 1, 17, tzinfo=UTC))

    lines = reports.followup_lines(
        followup_stats(session, period.since, period.until, TODAY), period
    )

    assert [(line.week, line.opened, line.completed, line.dropped) for line in lines] == [
        (date(2000, 12, 25), 1, 0, 0),
        (date(2001, 1, 1), 3, 0, 0),
        (date(2001, 1, 8), 4, 2, 1),
        (date(2001, 1, 15), 0, 1, 0),
    ]


# --- The chart -------------------------------------------------------------------------------

BLUE, GREEN = (0x15, 0x65, 0xC0), (0x2E, 0x7D, 0x32)


def pixels_of(png: bytes, colour: tuple[int, int, int]) -> int:
    picture = Image.open(io.BytesIO(png))
    assert (picture.format, picture.size) == ("PNG", (800, 400))
    counts = picture.convert("RGB").getcolors(800 * 400) or []
    return next((n for n, seen in counts if seen == colour), 0)


def test_the_chart_draws_opened_and_completed_bars() -> None:
    period = reports.period(2, now=datetime(2001, 1, 10, tzinfo=UTC))
    opened_only = [FollowUpWeek(date(2001, 1, 1), opened=4)]

    both = reports.followups_chart(
        [*opened_only, FollowUpWeek(date(2001, 1, 8), completed=3)], period, 2
    )
    only = reports.followups_chart(opened_only, period, 0)
    empty = reports.followups_chart([], period, 0)

    assert pixels_of(both, BLUE) > 3_000 and pixels_of(both, GREEN) > 3_000
    # The legend's swatches alone without completed bars.
    assert pixels_of(only, GREEN) < 500
    assert pixels_of(empty, BLUE) == pixels_of(empty, GREEN) == 0


# --- On the web ------------------------------------------------------------------------------


@pytest.fixture
def lately(slackbot: Bot) -> date:
    """Two follow-ups opened ten days ago, one done three days ago, one overdue since two days
    ago; this Monday's date."""
    now = datetime.now(UTC)
    with slackbot.sessions.begin() as session:
        inc = incident(session, now - timedelta(days=10))
        done = add(session, inc, now - timedelta(days=10))
        add(session, inc, now - timedelta(days=10), due=(now - timedelta(days=2)).date())
        mark(session, done, FollowUpStatus.DONE, now - timedelta(days=3))
    return now.date() - timedelta(days=now.weekday())


def cells(html: str, row_id: str) -> list[str]:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert found, html
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", found[1])]


def test_the_stats_page_shows_the_followups_table_and_chart(slackbot: Bot, lately: date) -> None:
    client = slackbot.web.test_client()
    sign_in_client(client, OWNER.user_id)

    html = client.get("/stats?weeks=4").get_data(as_text=True)
    chart = client.get("/stats/followups.png?weeks=4")

    assert re.search(r'id="followups-overdue">1<', html)
    assert re.search(r'id="followups-open">1<', html)
    rows = re.findall(r'<tr id="followups-(\d{4}-\d\d-\d\d)">', html)
    assert len(rows) == 4 and rows[-1] == lately.isoformat()
    opened_week = (datetime.now(UTC) - timedelta(days=10)).date()
    opened_monday = opened_week - timedelta(days=opened_week.weekday())
    done_day = (datetime.now(UTC) - timedelta(days=3)).date()
    done_monday = done_day - timedelta(days=done_day.weekday())
    assert cells(html, f"followups-{opened_monday.isoformat()}")[1] == "2"
    assert cells(html, f"followups-{done_monday.isoformat()}")[2] == "1"
    assert 'src="/stats/followups.png?weeks=4"' in html
    assert chart.status_code == 200 and chart.mimetype == "image/png"
    assert chart.headers["Cache-Control"] == "private, max-age=60"
    assert pixels_of(chart.data, BLUE) > 1_000


def test_the_stats_api_has_the_followups(slackbot: Bot, lately: date) -> None:
    with slackbot.sessions.begin() as session:
        token, row = tokens.create_token(session, f"st-{uuid.uuid4().hex[:12]}")
    since = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()

    response = slackbot.web.test_client().get(
        f"/api/v1/stats?since={since}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200, response.json
    numbers: dict[str, Any] = response.json["followups"]
    assert {k: numbers[k] for k in ("opened", "completed", "wont_do", "open_now")} == {
        "opened": 2,
        "completed": 1,
        "wont_do": 0,
        "open_now": 1,
    }
    assert numbers["overdue_now"] == 1
    assert sum(week["opened"] for week in numbers["weekly"]) == 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", week["week"]) for week in numbers["weekly"])
    spec = slackbot.web.test_client().get("/api/v1/openapi.json").json
    assert "followups" in spec["components"]["schemas"]["StatsWithFollowUps"]["properties"]
    with slackbot.sessions.begin() as session:
        session.delete(session.get_one(ApiToken, row.id))


@pytest.mark.parametrize("path", ["/stats/followups.png"])
def test_signed_out_people_are_sent_to_sign_in(slackbot: Bot, path: str) -> None:
    response = slackbot.web.test_client().get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in")
