"""The REST API (/api/v1): parse, call one domain function, render. Rules live in the domain.

Its routes are spread over api_*.py, all on one blueprint (api_common.bp): importing a module
registers its routes.
"""

from __future__ import annotations

from bot.web import (
    api_coordination,
    api_followups,
    api_incidents,
    api_screenshots,
    api_stats,
    api_timeline,
)
from bot.web.api_common import bp, incident_query

ROUTE_MODULES = (
    api_incidents,
    api_coordination,
    api_followups,
    api_screenshots,
    api_stats,
    api_timeline,
)

__all__ = ["ROUTE_MODULES", "bp", "incident_query"]
