"""/api/v1/stats: how fast incidents are acknowledged, mitigated and resolved, and how many; and
how the follow-ups after them go (opened and completed per week, overdue now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apiflask import Schema
from apiflask.fields import Date, Integer, List, Nested

from bot import incidents
from bot.incidents import followup_stats
from bot.web import schemas
from bot.web.api_common import bp
from bot.web.auth import api_auth, services
from db.models import Severity, Status


class FollowUpWeek(Schema):
    week = Date(metadata={"description": "the Monday (UTC) that starts the ISO week"})
    opened = Integer()
    completed = Integer(metadata={"description": "marked done that week"})
    wont_do = Integer(metadata={"description": "marked won't do that week"})


class FollowUpNumbers(Schema):
    opened = Integer(metadata={"description": "follow-ups opened in the window"})
    completed = Integer(metadata={"description": "follow-ups marked done in the window"})
    wont_do = Integer(metadata={"description": "follow-ups marked won't do in the window"})
    open_now = Integer(metadata={"description": "open now, whenever opened"})
    overdue_now = Integer(metadata={"description": "open now and due before today (in TIMEZONE)"})
    weekly = List(
        Nested(FollowUpWeek),
        metadata={"description": "per ISO week (UTC) with any; weeks without are left out"},
    )


class StatsWithFollowUps(schemas.Stats):
    followups = Nested(FollowUpNumbers)


def _seconds(span: timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None


@bp.get("/stats")
@bp.auth_required(api_auth)
@bp.input(schemas.StatsQuery, location="query", arg_name="window")
@bp.output(StatsWithFollowUps)
@bp.doc(tags=["Stats"])
def get_stats(window: dict[str, datetime]) -> dict[str, Any]:
    """Counts and mean times (MTTA, MTTM, MTTR) of the incidents declared in a window, and the
    follow-ups opened and completed in it

    `since` and `until` are ISO dates or date-times (UTC unless they say otherwise); the window
    is the last 30 days unless set, and a year at most. The mean times count from the
    incidents' milestones (declared, acknowledged, mitigated, resolved), not from the review's
    impact window.
    """
    web = services()
    today = datetime.now(UTC).astimezone(web.settings.timezone).date()
    with web.read() as session:
        result = incidents.stats(session, window["since"], window["until"])
        work = followup_stats.followup_stats(session, window["since"], window["until"], today)
    timings = {s: result.timings.get(s, incidents.Timings()) for s in Severity}
    return {
        "since": result.since,
        "until": result.until,
        "total": result.total,
        "by_status": {s.value: result.by_status.get(s, 0) for s in Status},
        "by_severity": {s.value: result.by_severity.get(s, 0) for s in Severity},
        "timings": {
            s.value: {
                "count": t.count,
                "mtta_seconds": _seconds(t.mtta),
                "mttm_seconds": _seconds(t.mttm),
                "mttr_seconds": _seconds(t.mttr),
            }
            for s, t in timings.items()
        },
        "followups": {
            "opened": work.opened,
            "completed": work.completed,
            "wont_do": work.dropped,
            "open_now": work.open_now,
            "overdue_now": work.overdue_now,
            "weekly": [
                {
                    "week": w.week,
                    "opened": w.opened,
                    "completed": w.completed,
                    "wont_do": w.dropped,
                }
                for w in work.weeks
            ],
        },
    }
