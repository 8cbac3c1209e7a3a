"""Realistic demo incidents with timelines, made through the domain so every rule applies."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, IncidentDraft, followups
from db.models import Severity, Status

SERVICES = (
    "checkout-api",
    "payments",
    "search",
    "auth",
    "notifications",
    "web-frontend",
    "mobile-gateway",
    "billing",
    "inventory",
    "data-pipeline",
    "cdn",
    "postgres-primary",
)
SYMPTOMS = (
    ("Elevated 5xx errors on {service}", "degradation"),
    ("{service} latency p99 above 2s", "degradation"),
    ("{service} is down", "outage"),
    ("Timeouts calling {service} from checkout", "degradation"),
    ("{service} pods crash-looping after deploy", "outage"),
    ("Suspicious login attempts against {service}", "security"),
    ("Stale data served by {service}", "data"),
    ("Duplicate events emitted by {service}", "data"),
    ("Certificate expiring on {service} 🔐", "security"),
    ("{service} queue backlog growing 📈", "degradation"),
    ("Disk almost full on {service} hosts", "other"),
)
NOTES = (
    "Rolled back the last deploy.",
    "Paging the owning team.",
    "Error rate is trending down after the restart 🎉",
    "Customer support reports tickets from EU users.",
    "Found a runaway cron job; disabled it.",
    "Scaling out to 12 replicas.",
    "Database failover completed.",
    "Added a feature flag kill switch.",
    "Waiting on the vendor's status page.",
    "Dashboards: latency back to baseline.",
)
CAUSES = (
    "A config change removed the connection pool limit.",
    "Expired TLS certificate on the load balancer.",
    "A slow query after an index was dropped.",
    "Upstream provider outage.",
    "Memory leak introduced in the last release.",
)
PEOPLE = tuple(f"U0SEED{n:04d}" for n in range(1, 13))
SEVERITY_WEIGHTS = {Severity.SEV1: 1, Severity.SEV2: 3, Severity.SEV3: 6, Severity.SEV4: 4}


def seed_incidents(
    session: Session, count: int, *, rng: random.Random, now: datetime | None = None
) -> list[int]:
    """Create `count` incidents declared over the last 90 days; returns their ids.

    They have no Slack channel, so no cards or thread replies are queued for them, and no one
    is subscribed to them, so no DMs either.
    """
    now = now or datetime.now(UTC)
    ids = []
    for _ in range(count):
        service = rng.choice(SERVICES)
        template, category = rng.choice(SYMPTOMS)
        severity = rng.choices(list(SEVERITY_WEIGHTS), weights=list(SEVERITY_WEIGHTS.values()))[0]
        reporter = Actor(rng.choice(PEOPLE))
        owner = rng.choice(PEOPLE)
        age = timedelta(minutes=rng.randint(10, 90 * 24 * 60))
        clock = now - age
        incident = incidents.declare(
            session,
            IncidentDraft(
                title=template.format(service=service),
                severity=severity,
                description=f"Alert fired for {service}. Impact is being assessed.",
                service=service,
                category=category,
                owner=owner,
                assignee=rng.choice((None, *PEOPLE)),
                tell_people=False,
            ),
            reporter,
            now=clock,
        )
        responder = Actor(owner)
        # Older incidents have had time to finish their course; recent ones are still running.
        path = [Status.INVESTIGATING, Status.MITIGATED, Status.RESOLVED, Status.CLOSED]
        if age > timedelta(days=3):
            stop = rng.choices((2, 3, 4), weights=(1, 2, 7))[0]
        else:
            stop = rng.randint(0, len(path) - 1)
        for step in path[:stop]:
            clock += timedelta(minutes=rng.randint(2, 180))
            if clock >= now:
                break
            if rng.random() < 0.6:
                incidents.add_note(session, incident.id, responder, rng.choice(NOTES), now=clock)
            resolved = step == Status.RESOLVED
            incidents.change_status(
                session,
                incident.id,
                step,
                responder,
                cause=rng.choice(CAUSES) if resolved else None,
                resolution="Fixed and verified on dashboards." if resolved else None,
                now=clock,
            )
            if resolved:  # their own draws: the incidents stay those of the same seed
                _follow_ups(session, random.Random(incident.id), incident.id, responder, clock)
        ids.append(incident.id)
    return ids


FOLLOW_UPS = (
    "Add an alert on the error budget burn rate",
    "Write a runbook for this failure",
    "Add a canary stage to the deploy",
    "Load-test the new connection pool limits",
    "Rotate the credentials that leaked into logs",
)


def _follow_ups(
    session: Session, rng: random.Random, incident_id: int, owner: Actor, at: datetime
) -> None:
    """One or two follow-ups, each with an owner and a due date (so the incident may close);
    some done a few days later."""
    rules = followups.DEFAULT_FOLLOWUP_RULES
    for title in rng.sample(FOLLOW_UPS, rng.randint(1, 2)):
        draft = followups.FollowUpDraft(
            title=title,
            owner=owner.user_id,
            due_on=(at + timedelta(days=rng.choice((7, 14, 30)))).date(),
            priority=rng.choice(rules.priorities),
        )
        made = followups.add_followup(session, incident_id, draft, owner, rules, now=at)
        if rng.random() < 0.5:
            done_at = at + timedelta(days=rng.randint(1, 5))
            if done_at < datetime.now(UTC):
                followups.set_followup_status(session, made.id, "done", owner, now=done_at)
