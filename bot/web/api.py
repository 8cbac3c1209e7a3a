"""The REST API (/api/v1): parse, call one domain function, render. Rules live in the domain."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import url_for

from bot import incidents
from bot.web import schemas
from bot.web.auth import api_auth, services

bp = APIBlueprint("api", __name__, url_prefix="/api/v1", tag="Incidents")


def _statuses(values: list[str]) -> tuple[list[incidents.Status], bool]:
    active = any(v.lower() == "active" for v in values)
    return [incidents.parse_status(v) for v in values if v.lower() != "active"], active


def incident_query(args: dict[str, Any]) -> incidents.IncidentQuery:
    """The list's query string as the domain's query; bad values are the domain's 422s."""
    statuses, active = _statuses(args.get("status", []))
    sort = args["sort"]
    return incidents.IncidentQuery(
        statuses=statuses,
        active=active,
        severities=[incidents.parse_severity(v) for v in args.get("severity", [])],
        services=args.get("service", []),
        categories=args.get("category", []),
        owners=args.get("owner", []),
        text=args.get("q"),
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        page=args["page"],
        page_size=args["limit"],
    )


def summary(row: incidents.IncidentRow) -> dict[str, Any]:
    return {
        **row._asdict(),
        "ref": incidents.format_incident_id(row.id),
        "url": url_for("pages.incident_page", incident_id=row.id, _external=True),
    }


@bp.get("/incidents")
@bp.auth_required(api_auth)
@bp.input(schemas.IncidentListQuery, location="query", arg_name="args")
@bp.output(schemas.IncidentList)
def list_incidents(args: dict[str, Any]) -> dict[str, Any]:
    """List incidents: filters, search, sort and pages"""
    query = incident_query(args)
    with services().read() as session:
        page = incidents.list_incidents(session, query)
    return {
        "items": [summary(row) for row in page.items],
        "total": page.total,
        "total_is_exact": page.total_is_exact,
        "page": page.page,
        "limit": page.page_size,
        "has_next": page.has_next,
    }
