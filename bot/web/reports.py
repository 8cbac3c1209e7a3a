"""Reports on the web: an incident's post-mortem as a Markdown download (for people and API
tokens; `?images=inline`: a zip with its images beside it), and the stats page with its weekly
charts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from apiflask import APIBlueprint, Schema
from apiflask.fields import String
from apiflask.validators import OneOf
from flask import Response, render_template, request

from bot import incidents, reports
from bot.incidents import followup_stats, screenshots
from bot.web.auth import api_auth, page_actor, services
from bot.web.links import link
from bot.web.services import WebServices

bp = APIBlueprint("reports", __name__, enable_openapi=False)
api_bp = APIBlueprint("reports_api", __name__, url_prefix="/api/v1", tag="Reports")

CHART_CACHE = "private, max-age=60"


class PostmortemQuery(Schema):
    images = String(
        load_default="links",
        validate=OneOf(("links", "inline")),
        metadata={
            "description": "`links` (the default): the Markdown, screenshots linked to their "
            "pages; `inline`: a zip of the Markdown and an images/ folder it links to"
        },
    )


def _screenshot_url(incident_id: int, screenshot_id: int) -> str:
    return link("pages.screenshot_image", incident_id=incident_id, screenshot_id=screenshot_id)


def _postmortem(incident_ref: str, images: str | None) -> Response:
    inline = reports.wants_inline(images)
    web = services()
    with web.read() as session:
        facts = reports.postmortem_facts(session, incident_ref, rules=web.settings.role_rules)
    incident_id = facts.incident.id
    # People by name where Slack's directory knows them (read first, so the same incident gives
    # the same document whichever page was opened before).
    web.directory.people()
    # A document leaves the site: a relative link would point into the wiki it is pasted in, so
    # without PUBLIC_URL it has none, as Slack's post-mortem.
    linked = web.settings.public_url is not None
    page_url = link("pages.incident_page", incident_id=incident_id) if linked else None
    if inline:
        return _zip(web, reports.bundle(facts, name=web.directory.name, page_url=page_url))
    document = reports.postmortem_markdown(
        facts,
        name=web.directory.name,
        page_url=page_url,
        screenshot_url=_screenshot_url if linked else None,
    )
    return Response(
        document,
        mimetype="text/markdown",
        headers={
            "Content-Disposition": f"attachment; filename={reports.filename(incident_id)}",
            # Incidents change; a saved copy is the person's, not a cache's.
            "Cache-Control": "private, no-store",
        },
    )


def _zip(web: WebServices, made: reports.Bundle) -> Response:
    """Streamed: the images are read one at a time, each in its own short session (the
    request's is closed by the time the body is sent)."""

    def read_image(screenshot_id: int) -> bytes:
        with web.sessions() as session:
            return screenshots.stored_image(session, screenshot_id)[1]

    def body() -> Iterator[bytes]:
        yield from reports.zip_chunks(made, read_image)

    return Response(
        body(),
        mimetype="application/zip",
        headers={
            "Content-Disposition": f"attachment; filename={reports.zip_name(made.incident_id)}",
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/incidents/<incident_id>/postmortem")
def postmortem(incident_id: str) -> Response:
    page_actor()
    return _postmortem(incident_id, request.args.get("images"))


@api_bp.get("/incidents/<incident_id>/postmortem")
@api_bp.auth_required(api_auth)
@api_bp.input(PostmortemQuery, location="query", arg_name="query")
@api_bp.doc(
    responses={
        200: {
            "description": "The post-mortem as Markdown, ready to paste into a wiki (UTC times; "
            "screenshots linked to their pages); with `?images=inline`, a zip of the Markdown "
            "and an images/ folder it links to by relative paths, so it renders without a "
            "session on this site",
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        404: "There is no such incident",
        422: "That is not an incident id (`12`, `INC-12` or `#12`), or `images` is neither "
        "`inline` nor `links`",
    },
)
def postmortem_api(incident_id: str, query: dict[str, str]) -> Response:
    """An incident's post-mortem (Markdown, or a zip with its images)"""
    return _postmortem(incident_id, query["images"])


def _period() -> reports.Period:
    return reports.period(reports.parse_weeks(request.args.get("weeks")))


def _today(web: WebServices) -> datetime:
    # Overdue as the lists and the digest count it: by the day in TIMEZONE.
    return datetime.now(UTC).astimezone(web.settings.timezone)


@bp.get("/stats")
def stats_page() -> str:
    page_actor()
    period = _period()
    web = services()
    with web.read() as session:
        numbers = incidents.stats(session, period.since, period.until)
        work = followup_stats.followup_stats(
            session, period.since, period.until, _today(web).date()
        )
    return render_template(
        "stats.html",
        period=period,
        stats=numbers,
        severities=reports.severity_lines(numbers),
        statuses=reports.status_counts(numbers),
        followups=work,
        followup_weeks=reports.followup_lines(work, period),
        weeks_max=reports.WEEKS_MAX,
    )


def _chart(draw: Callable[[Sequence[incidents.WeekRow], reports.Period], bytes]) -> Response:
    page_actor()
    period = _period()
    with services().read() as session:
        rows = incidents.weekly(session, period.since, period.until)
    return Response(
        draw(rows, period), mimetype="image/png", headers={"Cache-Control": CHART_CACHE}
    )


@bp.get("/stats/incidents.png")
def incidents_chart() -> Response:
    return _chart(reports.incidents_chart)


@bp.get("/stats/mttr.png")
def mttr_chart() -> Response:
    return _chart(reports.mttr_chart)


@bp.get("/stats/followups.png")
def followups_chart() -> Response:
    page_actor()
    period = _period()
    web = services()
    with web.read() as session:
        work = followup_stats.followup_stats(
            session, period.since, period.until, _today(web).date()
        )
    png = reports.followups_chart(work.weeks, period, work.overdue_now)
    return Response(png, mimetype="image/png", headers={"Cache-Control": CHART_CACHE})
