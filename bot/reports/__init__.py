"""Reports on incidents, shared by the web pages and Slack: post-mortems and weekly charts.

Presentation only: the numbers come from the domain (bot.incidents); nothing here knows Slack or
HTTP, so each surface renders the same document and the same charts.

    numbers.py     the period a report covers (whole ISO weeks, UTC), durations, the stats tables
    markdown.py    people's text as Markdown, shown as typed; links we make
    postmortem.py  an incident's post-mortem as Markdown
    review.py      the post-mortem's review parts: facts, impact, follow-ups, review status
    bundle.py      the post-mortem with its images beside it: a zip, or a folder
    cli.py         `python -m bot postmortem`
    charts.py      PNG charts: incidents per week by severity, MTTR per week by severity,
                   follow-ups opened and completed per week
"""

from .bundle import Bundle, bundle, image_name, wants_inline, write_folder, zip_chunks, zip_name
from .charts import followups_chart, incidents_chart, mttr_chart
from .numbers import (
    NOT_REACHED,
    WEEKS_DEFAULT,
    WEEKS_MAX,
    FollowUpLine,
    Period,
    SeverityLine,
    duration,
    followup_lines,
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
    "Bundle",
    "FollowUpLine",
    "Names",
    "Period",
    "PostmortemFacts",
    "SeverityLine",
    "bundle",
    "duration",
    "filename",
    "followup_lines",
    "followups_chart",
    "image_name",
    "incidents_chart",
    "mttr_chart",
    "parse_weeks",
    "period",
    "postmortem_facts",
    "postmortem_markdown",
    "severity_lines",
    "size",
    "status_counts",
    "wants_inline",
    "write_folder",
    "zip_chunks",
    "zip_name",
]
