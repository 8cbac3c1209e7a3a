"""/api/v1/stats: how fast incidents are acknowledged, mitigated and resolved, and how many."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot import incidents
from bot.web import schemas
from bot.web.api_common import bp
from bot.web.auth import api_auth, services
from db.models import Severity, Status


def _seconds(span: timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None


@bp.get("/stats")
@bp.auth_required(api_auth)
@bp.input(schemas.StatsQuery, location="query", arg_name="window")
@bp.output(schemas.Stats)
@bp.doc(tags=["Stats"])
def get_stats(window: dict[str, datetime]) -> dict[str, Any]:
    """Counts and mean times (MTTA, MTTM, MTTR) of the incidents declared in a window

    `since` and `until` are ISO dates or date-times (UTC unless they say otherwise); the window
    is the last 30 days unless set, and a year at most.
    """
    with services().read() as session:
        result = incidents.stats(session, window["since"], window["until"])
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
    }
