"""The REST API's alert intake (/api/v1/intake) and stats (/api/v1/stats)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import incidents
from bot.incidents import Actor, IncidentDraft
from tests.slackbot import Bot
from tests.steps import FIXED, resolution
from tests.test_api import Caller, error_of, token_caller

ALERT = {
    "title": "Disk full on db-1",
    "severity": "SEV2",
    "service": "db",
    "fingerprint": "disk:db-1",
}


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


def test_an_alert_declares_once_then_is_noted_until_resolved(tool: Caller):
    first = tool.post("/intake", json={**ALERT, "description": "95% used"})
    assert first.status_code == 201
    created = first.get_json()
    incident = created["incident"]
    assert created["created"] is True and created["note"] is None
    assert first.headers["Location"] == f"/api/v1/incidents/{incident['id']}"
    assert (incident["title"], incident["severity"], incident["service"]) == (
        "Disk full on db-1",
        "SEV2",
        "db",
    )
    assert (incident["intake_fingerprint"], incident["reporter"]) == ("disk:db-1", tool.actor)
    again = tool.post("/intake", json={**ALERT, "title": "Disk still full"})
    assert again.status_code == 200
    noted = again.get_json()
    assert noted["created"] is False
    assert noted["incident"]["id"] == incident["id"]
    assert noted["note"]["text"] == "Alert fired again: Disk still full"
    assert "Location" not in again.headers
    assert tool.get(f"/incidents/{incident['id']}/notes").get_json()["items"] == [noted["note"]]
    resolved = {"status": "resolved", "resolution": FIXED}
    assert tool.post(f"/incidents/{incident['id']}/status", json=resolved).status_code == 200
    anew = tool.post("/intake", json=ALERT)
    assert anew.status_code == 201
    assert anew.get_json()["incident"]["id"] != incident["id"]


BAD_ALERTS: list[tuple[Any, str]] = [
    ({k: v for k, v in ALERT.items() if k != "fingerprint"}, "fingerprint"),
    ({k: v for k, v in ALERT.items() if k != "service"}, "service"),
    ({**ALERT, "fingerprint": ""}, "needs a fingerprint"),
    ({**ALERT, "fingerprint": "f" * 201}, "The fingerprint is too long"),
    ({**ALERT, "fingerprint": "a\x00b"}, "NUL"),
    ({**ALERT, "fingerprint": 7}, "Not a valid string"),
    ({**ALERT, "severity": "loud"}, "Unknown severity"),
    ({**ALERT, "title": "x"}, "Title must be at least 3"),
    ({**ALERT, "labels": {"team": "db"}}, "Unknown field"),
]


def test_a_bad_alert_is_422_and_declares_nothing(tool: Caller):
    for body, says in BAD_ALERTS:
        answer = tool.post("/intake", json=body)
        assert answer.status_code == 422, body
        assert says in str(answer.get_json()), body
    broken = tool.post("/intake", data="{", content_type="application/json")
    assert broken.status_code == 400 and "not valid JSON" in error_of(broken)
    assert tool.get("/incidents").get_json()["total"] == 0


# --- Stats -------------------------------------------------------------------------------------

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def declare_at(bot: Bot, when: datetime, severity: str, moves: list[tuple[str, int]]) -> None:
    """An incident declared at `when`, moved to each status `seconds` after it."""
    actor = Actor("U0USER0001")
    with bot.sessions.begin() as session:
        incident = incidents.declare(
            session, IncidentDraft("Past incident", severity), actor, now=when
        )
        for status, seconds in moves:
            incidents.change_status(
                session,
                incident.id,
                status,
                actor,
                now=when + timedelta(seconds=seconds),
                resolution=resolution(status),
            )


def test_stats_give_counts_and_mean_times_per_severity(slackbot: Bot, tool: Caller):
    declare_at(
        slackbot, T0, "SEV1", [("investigating", 60), ("mitigated", 600), ("resolved", 1200)]
    )
    declare_at(slackbot, T0 + timedelta(days=1), "SEV1", [("investigating", 180)])
    declare_at(slackbot, T0 + timedelta(days=2), "SEV3", [])
    declare_at(slackbot, T0 + timedelta(days=40), "SEV2", [])  # outside the window below
    answer = tool.get("/stats?since=2025-03-10&until=2025-04-01T00:00:00Z")
    assert answer.status_code == 200
    stats = answer.get_json()
    assert (stats["since"], stats["until"]) == (
        "2025-03-10T00:00:00+00:00",
        "2025-04-01T00:00:00+00:00",
    )
    assert stats["total"] == 3
    assert stats["by_status"] == {
        "open": 1,
        "investigating": 1,
        "mitigated": 0,
        "resolved": 1,
        "closed": 0,
    }
    assert stats["by_severity"] == {"SEV1": 2, "SEV2": 0, "SEV3": 1, "SEV4": 0}
    assert stats["timings"]["SEV1"] == {
        "count": 2,
        "mtta_seconds": 120.0,
        "mttm_seconds": 600.0,
        "mttr_seconds": 1200.0,
    }
    none = {"count": 0, "mtta_seconds": None, "mttm_seconds": None, "mttr_seconds": None}
    assert stats["timings"]["SEV2"] == none
    assert stats["timings"]["SEV3"] == {**none, "count": 1}


def test_stats_default_to_the_last_30_days_and_refuse_other_windows(slackbot: Bot, tool: Caller):
    now = datetime.now(UTC)
    declare_at(slackbot, now - timedelta(days=29), "SEV2", [])
    declare_at(slackbot, now - timedelta(days=31), "SEV2", [])
    stats = tool.get("/stats").get_json()
    assert stats["total"] == 1
    since, until = (datetime.fromisoformat(stats[k]) for k in ("since", "until"))
    assert until - since == timedelta(days=30)
    assert abs(until - now) < timedelta(minutes=1)
    offset = tool.get("/stats?until=2025-03-12T02:00:00%2B02:00").get_json()
    assert offset["until"] == "2025-03-12T00:00:00+00:00"
    assert offset["since"] == "2025-02-10T00:00:00+00:00"
    # A window that is not one.
    for query, says in (
        ("since=yesterday", "Use an ISO date"),
        ("until=2025-13-01", "Use an ISO date"),
        ("since=2025-03-10&until=2025-03-10", "The end of the window must be after its start."),
        ("since=2025-03-10&until=2025-03-01", "The end of the window must be after its start."),
        ("since=2024-01-01&until=2025-01-02", "at most 366 days"),
        ("until=0001-01-02", "`until` is too early"),
    ):
        answer = tool.get(f"/stats?{query}")
        assert answer.status_code == 422, query
        assert says in str(answer.get_json()), query
    assert tool.get("/stats?since=2024-01-01&until=2025-01-01").status_code == 200
