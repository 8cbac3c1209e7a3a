"""`/incident postmortem` and `/incident stats`: read from the domain, drawn by bot.reports,
uploaded into Slack after the ack, on the work queue."""

from __future__ import annotations

import logging

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import incidents, reports
from bot.slack import blocks
from bot.slack.services import Services

from .common import tell_user

log = logging.getLogger(__name__)


def slack_names(client: WebClient) -> reports.Names:
    """People's names from `users.info`, each asked once; None (the id is shown) when Slack
    can't tell."""
    known: dict[str, str | None] = {}

    def name(user_id: str) -> str | None:
        if user_id not in known:
            try:
                user = client.users_info(user=user_id)["user"]
            except SlackApiError as error:
                log.info("no name for %s: %s", user_id, error.response.get("error"))
                user = {}
            profile = user.get("profile") or {}
            known[user_id] = (
                profile.get("display_name") or profile.get("real_name") or user.get("name")
            )
        return known[user_id]

    return name


def post_postmortem(
    services: Services,
    client: WebClient,
    respond: Respond,
    incident_ref: str,
    user_id: str,
    channel_id: str | None,
) -> None:
    """The post-mortem as a Markdown file, in the card's thread as `/incident screenshots` posts
    there; an incident without a card gets it in the channel the command was typed in."""
    with services.sessions() as session:
        facts = reports.postmortem_facts(session, incident_ref, rules=services.settings.role_rules)
    incident = facts.incident
    ref = blocks.ref(incident)
    in_thread = bool(incident.slack_channel_id and incident.card_ts)
    respond(text=blocks.postmortem_coming(ref, in_thread=in_thread))
    links = blocks.postmortem_links(services.settings.public_url, incident.id)
    document = reports.postmortem_markdown(
        facts, name=slack_names(client), page_url=links.page, screenshot_url=links.screenshot
    )
    try:
        client.files_upload_v2(
            channel=incident.slack_channel_id if in_thread else channel_id,
            thread_ts=incident.card_ts if in_thread else None,
            content=document,
            filename=reports.filename(incident.id),
            title=f"{ref} post-mortem",
            initial_comment=blocks.postmortem_comment(ref, links.download),
        )
    except SlackApiError as error:
        refusal = blocks.not_posted("post-mortem", error.response.get("error"), here=not in_thread)
        tell_user(services, user_id, channel_id, refusal)
        return
    log.info("%s: post-mortem posted for %s", ref, user_id)


def post_stats(
    services: Services,
    client: WebClient,
    respond: Respond,
    weeks: int,
    user_id: str,
    channel_id: str | None,
) -> None:
    """The numbers as a message in the channel the command was typed in, then the two charts."""
    period = reports.period(weeks)
    respond(text=blocks.stats_coming(period))
    with services.sessions() as session:
        numbers = incidents.stats(session, period.since, period.until)
        rows = incidents.weekly(session, period.since, period.until)
    text, rendered = blocks.stats_message(numbers, period)
    charts = [
        {"content": reports.incidents_chart(rows, period), "filename": "incidents-per-week.png"},
        {"content": reports.mttr_chart(rows, period), "filename": "mttr-per-week.png"},
    ]
    try:
        client.chat_postMessage(channel=channel_id or user_id, text=text, blocks=rendered)
        client.files_upload_v2(
            channel=channel_id or user_id,
            file_uploads=[{**chart, "title": chart["filename"]} for chart in charts],
            initial_comment=blocks.charts_comment(period),
        )
    except SlackApiError as error:
        refusal = blocks.not_posted("stats", error.response.get("error"), here=True)
        tell_user(services, user_id, channel_id, refusal)
        return
    log.info("stats of %d weeks posted for %s", weeks, user_id)
