"""Reports in Slack: the stats message, and the words around uploaded post-mortems and charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from slack_sdk.models.blocks import Block, HeaderBlock, SectionBlock

from bot import reports
from bot.incidents import Stats

from .messages import web_page
from .text import STATUS_EMOJI, _context, _mrkdwn, severity_label


def stats_message(stats: Stats, period: reports.Period) -> tuple[str, list[Block]]:
    """The period's counts and MTTA/MTTM/MTTR by severity; the text and the blocks."""
    text = f"{stats.total} incidents declared in {period.describe()}"
    lines = [
        f"*{severity_label(line.severity)}*\n{line.declared} declared · MTTA {line.mtta} · "
        f"MTTM {line.mttm} · MTTR {line.mttr}"
        for line in reports.severity_lines(stats)
    ]
    now = " · ".join(
        f"{STATUS_EMOJI[status]} {count} {status.value}"
        for status, count in reports.status_counts(stats)
    )
    blocks: list[Block] = [
        HeaderBlock(text=f"Incident stats, {period.weeks} week{'s' if period.weeks > 1 else ''}"),
        SectionBlock(text=_mrkdwn(f"*{stats.total} incidents* declared in {period.describe()}")),
        SectionBlock(fields=[_mrkdwn(line) for line in lines]),
        _context(f"Where they are now: {now}"),
        _context(
            "MTTA, MTTM, MTTR: mean time from declaration to acknowledged, mitigated, resolved, "
            "over the incidents that got there. Charts follow."
        ),
    ]
    return text, blocks


def charts_comment(period: reports.Period) -> str:
    return f"Incidents and time to resolve per week, {period.describe()}"


class PostmortemLinks(NamedTuple):
    """Where the web surface shows an incident, its post-mortem and its screenshots; all None
    without PUBLIC_URL."""

    page: str | None
    download: str | None
    screenshot: Callable[[int, int], str] | None


def postmortem_links(public_url: str | None, incident_id: int) -> PostmortemLinks:
    page = web_page(public_url, incident_id)
    if page is None:
        return PostmortemLinks(None, None, None)
    return PostmortemLinks(
        page,
        f"{page}/postmortem",
        lambda incident, screenshot: f"{web_page(public_url, incident)}/screenshots/{screenshot}",
    )


def postmortem_comment(ref: str, web_url: str | None) -> str:
    comment = f"Post-mortem of {ref}, in Markdown, ready to paste into a wiki."
    if web_url:
        comment += f" Always the latest: <{web_url}|download it from the web>."
    return comment


def postmortem_coming(ref: str, *, in_thread: bool) -> str:
    where = "the incident's thread" if in_thread else "this channel"
    return f"Writing {ref}'s post-mortem; it will be posted in {where} as a Markdown file."


def stats_coming(period: reports.Period) -> str:
    return f"Counting the incidents of {period.describe()}; the numbers and charts follow here."


def not_posted(what: str, error: str | None, *, here: bool) -> str:
    """Slack refused to take a report where it was asked for (`here`: the channel the command
    was typed in; else the incident's thread)."""
    where = "here" if here else "in the incident's thread"
    if here and error in {"not_in_channel", "channel_not_found"}:
        advice = "Invite me to this channel (`/invite @` and my name), or ask where I am."
    elif error == "is_archived":
        advice = "The channel is archived."
    else:
        advice = "Please try again in a moment."
    return f"I couldn't post the {what} {where}: Slack said {error}. {advice}"
