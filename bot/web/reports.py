"""Reports on the web: an incident's post-mortem as a Markdown download (for people and API
tokens), and the stats page with its weekly charts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from apiflask import APIBlueprint
from flask import Response, render_template, request

from bot import incidents, reports
from bot.web.auth import api_auth, page_actor, services
from bot.web.links import link

bp = APIBlueprint("reports", __name__, enable_openapi=False)
api_bp = APIBlueprint("reports_api", __name__, url_prefix="/api/v1", tag="Reports")

CHART_CACHE = "private, max-age=60"


def _screenshot_url(incident_id: int, screenshot_id: int) -> str:
    return link("pages.screenshot_image", incident_id=incident_id, screenshot_id=screenshot_id)


def _postmortem(incident_ref: str) -> Response:
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
    document = reports.postmortem_markdown(
        facts,
        name=web.directory.name,
        page_url=link("pages.incident_page", incident_id=incident_id) if linked else None,
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


@bp.get("/incidents/<incident_id>/postmortem")
def postmortem(incident_id: str) -> Response:
    page_actor()
    return _postmortem(incident_id)


@api_bp.get("/incidents/<incident_id>/postmortem")
@api_bp.auth_required(api_auth)
@api_bp.doc(
    responses={
        200: {
            "description": "The post-mortem as Markdown, ready to paste into a wiki (UTC times; "
            "screenshots linked to their pages)",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        404: "There is no such incident",
        422: "That is not an incident id (`12`, `INC-12` or `#12`)",
    }
)
def postmortem_api(incident_id: str) -> Response:
    """An incident's post-mortem (Markdown)"""
    return _postmortem(incident_id)


def _period() -> reports.Period:
    return reports.period(reports.parse_weeks(request.args.get("weeks")))


@bp.get("/stats")
def stats_page() -> str:
    page_actor()
    period = _period()
    with services().read() as session:
        numbers = incidents.stats(session, period.since, period.until)
    return render_template(
        "stats.html",
        period=period,
        stats=numbers,
        severities=reports.severity_lines(numbers),
        statuses=reports.status_counts(numbers),
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
