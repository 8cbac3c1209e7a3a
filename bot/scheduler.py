"""Background jobs: update reminders, nudges for late promised updates, lead reminders,
auto-close, the daily digest, channel archives (delivery retries are the delivery worker's, on
every replica: bot.delivery.worker).

APScheduler 3 cannot share a job store between processes (it would run jobs twice), so each
process has a BackgroundScheduler with an in-memory store and fixed sweep jobs, and only the
process holding a PostgreSQL advisory lock, on a connection kept for its lifetime, runs them.
Per-incident due times live in our own rows, and every sweep claims rows with
`FOR UPDATE SKIP LOCKED` and records what it did in the same transaction, so even two leaders
at once (a lock lost and retaken) never send a reminder twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Select,
    case,
    delete,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents, metrics
from bot.delivery import Deliverer
from bot.incidents import ACTIVE_STATUSES, LEAD_REMINDER_SEVERITIES, SYSTEM, followups
from bot.settings import Settings
from bot.slack import blocks
from db.models import Delivery, DeliveryAction, Digest, Incident, ProcessedEvent, Severity, Status

log = logging.getLogger(__name__)

# "itsched" as ASCII bytes; the migration lock uses another key.
LEADER_LOCK_KEY = 0x6974736368656400
EVENT_MEMORY = timedelta(days=1)
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Jobs:
    """The sweeps. Each takes `now`, so tests drive them on a controlled clock."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], deliverer: Deliverer
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.deliverer = deliverer

    def _one_by_one(
        self,
        due: Select[tuple[Incident]],
        act: Callable[[Session, Incident], object],
        now: datetime,
    ) -> int:
        """Act on each incident `due` selects, one per transaction, then send its Slack updates;
        returns how many. Each is claimed FOR UPDATE SKIP LOCKED and `act` must take it out of
        `due` (a due time moved on, a status changed), so two leaders at once never act twice."""
        done = 0
        while True:
            with self.sessions.begin() as session:
                incident = session.scalars(due.limit(1).with_for_update(skip_locked=True)).first()
                if incident is None:
                    return done
                act(session, incident)
                incident_id = incident.id
            done += 1
            self.deliverer.drain(incident_id=incident_id, now=now)

    # --- reminders ------------------------------------------------------------------------------

    def _cadences(self) -> dict[Severity, timedelta]:
        return {
            severity: cadence
            for severity in Severity
            if (cadence := self.settings.reminder_cadences.get(severity.value)) is not None
        }

    def _cadence_sql(self) -> Any:
        """When an incident's update is due, from its severity; NULL for severities with none."""
        cadences = self._cadences()
        if not cadences:
            return null().cast(DateTime(timezone=True))
        return case(
            *[
                (Incident.severity == severity, Incident.updated_at + cadence)
                for severity, cadence in cadences.items()
            ],
            else_=None,
        )

    def in_quiet_hours(self, now: datetime) -> bool:
        if self.settings.quiet_hours is None:
            return False
        start, end = self.settings.quiet_hours
        local = now.astimezone(self.settings.timezone).time()
        return start <= local < end if start <= end else local >= start or local < end

    def remind(self, now: datetime) -> int:
        """Remind the owner of each active incident whose update is overdue; returns how many.

        An incident with a promised next update (next_update_at) follows its promise instead
        (`nudge_updates`); withdrawn ("none"), the severity's cadence comes back."""
        with self.sessions.begin() as session:
            # Incidents changed since the last sweep have no due time yet: derive it from the
            # severity's cadence. Severities with no cadence stay NULL and are never reminded.
            session.execute(
                update(Incident)
                .where(
                    Incident.status.in_(ACTIVE_STATUSES),
                    Incident.next_reminder_at.is_(None),
                    Incident.next_update_at.is_(None),
                )
                .values(next_reminder_at=self._cadence_sql())
                .execution_options(synchronize_session=False)
            )
        if self.in_quiet_hours(now):
            return 0  # due reminders stay due and go out when the quiet hours end

        def remind(session: Session, incident: Incident) -> None:
            cadence = self.settings.reminder_cadences.get(incident.severity.value)
            incidents.remind(session, incident, now=now, next_at=now + cadence if cadence else None)

        return self._one_by_one(
            select(Incident)
            .where(
                Incident.status.in_(ACTIVE_STATUSES),
                # A snooze can set a due time on a severity that has no reminders.
                Incident.severity.in_(list(self._cadences())),
                Incident.next_reminder_at <= now,
                Incident.next_update_at.is_(None),
            )
            .order_by(Incident.next_reminder_at),
            remind,
            now,
        )

    def nudge_updates(self, now: datetime) -> int:
        """Nudge the lead and the comms role of each active incident whose promised update is
        late (once per promised interval); returns how many incidents were nudged."""
        if self.in_quiet_hours(now):
            return 0  # due nudges stay due and go out when the quiet hours end
        return self._one_by_one(
            select(Incident)
            .where(Incident.update_nudge_at <= now, Incident.status.in_(ACTIVE_STATUSES))
            .order_by(Incident.update_nudge_at),
            # It moves update_nudge_at past `now` (or clears it): each is nudged once.
            lambda session, incident: incidents.nudge_overdue(session, incident.id, now=now),
            now,
        )

    # --- lead reminders -------------------------------------------------------------------------

    def remind_leads(self, now: datetime) -> int:
        """Remind each active SEV1 or SEV2 that has had no lead for LEAD_REMINDER_AFTER, once per
        that interval; returns how many. Quiet hours don't hold it back: a SEV1 without a lead
        is urgent at any hour. An incident without a card is left alone: there is nowhere to
        remind it, and its timeline would fill with reminders nobody saw."""
        after = self.settings.role_rules.lead_reminder_after
        if after is None:
            return 0
        due = now - after
        return self._one_by_one(
            select(Incident)
            .where(
                Incident.status.in_(ACTIVE_STATUSES),
                Incident.severity.in_(LEAD_REMINDER_SEVERITIES),
                Incident.owner.is_(None),
                Incident.slack_channel_id.is_not(None),
                Incident.leaderless_since <= due,
                or_(Incident.lead_reminded_at.is_(None), Incident.lead_reminded_at <= due),
            )
            .order_by(Incident.leaderless_since),
            lambda session, incident: incidents.remind_lead(session, incident, now=now),
            now,
        )

    # --- auto-close -----------------------------------------------------------------------------

    def auto_close(self, now: datetime) -> int:
        after = self.settings.auto_close_after
        if after is None:
            return 0

        def close(session: Session, incident: Incident) -> None:
            incidents.change_status(
                session,
                incident.id,
                Status.CLOSED,
                SYSTEM,
                note=f"Closed automatically: resolved with no change for {after.days} days.",
                expected_status=Status.RESOLVED,
                followup_rules=rules,
                now=now,
            )

        # Those CLOSE_REQUIRES keeps open wait, and don't hold up the rest.
        rules = self.settings.followup_rules
        return self._one_by_one(
            select(Incident)
            .where(
                Incident.status == Status.RESOLVED,
                Incident.updated_at <= now - after,
                followups.closable(rules),
            )
            .order_by(Incident.updated_at),
            close,
            now,
        )

    # --- incident channels ----------------------------------------------------------------------

    def archive_channels(self, now: datetime) -> int:
        """Archive the channels of incidents closed for INCIDENT_CHANNEL_ARCHIVE_AFTER."""
        with self.sessions.begin() as session:
            queued = incidents.queue_archives(session, self.settings.channel_rules, now)
        for incident_id in queued:
            log.info("INC-%d: its channel is archived after close", incident_id)
            self.deliverer.drain(incident_id=incident_id, now=now)
        return len(queued)

    # --- digest ---------------------------------------------------------------------------------

    def digest(self, now: datetime) -> bool:
        """Queue today's digest once it is time; the `digests` row makes it once a day."""
        settings = self.settings
        if settings.digest_time is None or settings.incident_channel is None:
            return False
        local = now.astimezone(settings.timezone)
        if local.time() < settings.digest_time:
            return False
        with self.sessions.begin() as session:
            claimed = session.execute(
                insert(Digest)
                .values(day=local.date(), created_at=now)
                .on_conflict_do_nothing()
                .returning(Digest.day)
            ).scalar()
            if claimed is None:
                return False
            text_, rendered = self._render_digest(session, now, local.date().isoformat())
            session.add(
                Delivery(
                    action=DeliveryAction.POST_DIGEST,
                    payload={
                        "channel": settings.incident_channel,
                        "text": text_,
                        "blocks": [b.to_dict() for b in rendered],
                        "ref": "the daily digest",
                    },
                    next_attempt_at=now,
                )
            )
        log.info("digest for %s queued for %s", local.date(), settings.incident_channel)
        self.deliverer.drain(now=now)
        return True

    def _render_digest(self, session: Session, now: datetime, day: str) -> tuple[str, list]:
        active = session.scalars(
            select(Incident)
            .where(Incident.status.in_(ACTIVE_STATUSES))
            # Most severe first: severity names sort that way (incidents.ORDER_SQL says so too).
            .order_by(Incident.severity, Incident.created_at)
        ).all()
        resolved = session.scalars(
            select(Incident)
            .where(Incident.resolved_at >= now - timedelta(days=1))
            .order_by(Incident.resolved_at.desc())
        ).all()
        # A promised next update replaces the severity's cadence here too.
        overdue = func.coalesce(Incident.next_update_at, self._cadence_sql())
        stale = session.scalars(
            select(Incident)
            .where(Incident.status.in_(ACTIVE_STATUSES), overdue.is_not(None), overdue <= now)
            .order_by(Incident.updated_at)
        ).all()
        return blocks.digest(day, active, resolved, stale)

    def followup_digest(self, now: datetime) -> int:
        """This week's DM to each owner of overdue follow-ups, once (FOLLOWUP_DIGEST)."""
        with self.sessions.begin() as session:
            owners = followups.queue_overdue_digest(
                session, self.settings.followup_rules, self.settings.timezone, now
            )
        if owners:
            self.deliverer.drain(now=now)
        return len(owners)

    # --- housekeeping ---------------------------------------------------------------------------

    def forget_old_events(self, now: datetime) -> None:
        with self.sessions.begin() as session:
            session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.received_at < now - EVENT_MEMORY)
            )


class Scheduler:
    """Runs `Jobs` on an interval in the one process holding the leader lock."""

    def __init__(
        self, engine: Engine, jobs: Jobs, interval: timedelta, *, clock: Clock = utcnow
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None
        self.is_leader = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._lead, name="scheduler-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _lead(self) -> None:
        """Try for the lock every couple of seconds; hold it (and run the jobs) while alive."""
        retry = min(self.interval.total_seconds(), 2.0)
        while not self._stop.is_set():
            try:
                with self.engine.connect() as connection:
                    got = connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
                    ).scalar()
                    connection.commit()
                    if got:
                        self._run_while_holding(connection, retry)
            except Exception as error:  # a lost database must not kill the leader loop
                log.warning("scheduler: lost the database (%s); will try again", error)
            finally:
                self._stop_jobs()
            self._stop.wait(retry)

    def _run_while_holding(self, connection: Connection, check_every: float) -> None:
        log.info("scheduler: this process is the leader; running jobs every %s", self.interval)
        # A sweep still running when its next turn comes is skipped by design (max_instances=1);
        # APScheduler would log that as a warning each time.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        # Every sweep's "Running job" and "executed successfully" at INFO would bury the log (every
        # sweep, every interval); a failing job is still logged, at ERROR.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        self.is_leader.set()
        metrics.SCHEDULER_LEADER.set(1)
        self._scheduler = BackgroundScheduler(timezone=UTC)
        seconds = self.interval.total_seconds()
        for name, job in (
            ("reminders", self.jobs.remind),
            ("update-nudges", self.jobs.nudge_updates),
            ("lead-reminders", self.jobs.remind_leads),
            ("auto-close", self.jobs.auto_close),
            ("digest", self.jobs.digest),
            ("followup-digest", self.jobs.followup_digest),
            ("forget-events", self.jobs.forget_old_events),
            ("archive-channels", self.jobs.archive_channels),
        ):
            self._scheduler.add_job(
                self._guarded(name, job),
                "interval",
                seconds=seconds,
                id=name,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
            )
        self._scheduler.start()
        # The lock lives as long as this connection: check it is still there.
        while not self._stop.wait(check_every):
            connection.execute(text("SELECT 1"))
            connection.commit()

    def _guarded(self, name: str, job: Callable[[datetime], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                with metrics.job_run(name):
                    job(self.clock())
            except Exception:  # one failed sweep is logged; the next one runs on time
                log.exception("scheduler job %s failed", name)

        return run

    def _stop_jobs(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.is_leader.is_set():
            self.is_leader.clear()
            metrics.SCHEDULER_LEADER.set(0)
            log.info("scheduler: no longer the leader")
