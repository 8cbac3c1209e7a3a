"""Reports on incidents, shared by the web pages and Slack: post-mortems and weekly charts.

Presentation only: the numbers come from the domain (bot.incidents); nothing here knows Slack or
HTTP, so each surface renders the same document and the same charts.

    numbers.py     the period a report covers (whole ISO weeks, UTC), durations, the stats table
    postmortem.py  an incident's post-mortem as Markdown
    charts.py      PNG charts: incidents per week by severity, MTTR per week by severity
"""

from .charts import incidents_chart, mttr_chart
from .numbers import (
    NOT_REACHED,
    WEEKS_DEFAULT,
    WEEKS_MAX,
    Period,
    SeverityLine,
    duration,
    parse_weeks,
    period,
    severity_lines,
    size,
    status_counts,
)
from .postmortem import (
    Names,
    PostmortemFacts,
    filename,
    postmortem_facts,
    postmortem_markdown,
)

__all__ = [
    "NOT_REACHED",
    "WEEKS_DEFAULT",
    "WEEKS_MAX",
    "Names",
    "Period",
    "PostmortemFacts",
    "SeverityLine",
    "duration",
    "filename",
    "incidents_chart",
    "mttr_chart",
    "parse_weeks",
    "period",
    "postmortem_facts",
    "postmortem_markdown",
    "severity_lines",
    "size",
    "status_counts",
]
