"""Attach Slack files to an incident, and post stored screenshots back: used by several surfaces."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import incidents
from bot.delivery import Recipient, queue_tell
from bot.incidents import IncidentError, screenshots
from bot.incidents.screenshots import Attachment, NotAnImage
from bot.slack import blocks
from bot.slack import files as slack_files
from bot.slack.files import FileRefused
from bot.slack.services import Services

from .common import deliver_and_report, tell_user

log = logging.getLogger(__name__)


def attach_files(
    services: Services,
    client: WebClient,
    incident_id: int,
    user_id: str,
    files: Sequence[dict[str, Any]],
    *,
    caption: str | None,
    source_permalink: str | None,
    feedback_channel: str | None,
) -> Attachment:
    """Fetch, validate and store each file, then record one timeline event and, in its
    transaction, what the user is told.

    One file at a time: a bad file never stops the good ones, and only one file's bytes are in
    memory at once.
    """
    actor = services.actor(user_id)
    attachment = Attachment()
    for file in files:
        name = str(file.get("name") or file.get("title") or file.get("id") or "file")
        try:
            fetched = slack_files.fetch(
                client,
                file,
                api_url=services.settings.slack_api_url,
                max_bytes=services.settings.max_screenshot_bytes,
            )
            name = fetched.name
            image = screenshots.validate_image(fetched.name, fetched.data)
            del fetched
            with services.sessions.begin() as session:
                stored = screenshots.store_image(
                    session,
                    incident_id,
                    actor,
                    image,
                    caption=caption,
                    source_permalink=source_permalink,
                    slack_file_id=file.get("id"),
                )
        except (FileRefused, NotAnImage) as error:
            name = getattr(error, "name", None) or name
            log.info("INC-%d: %s from %s not kept: %s", incident_id, name, user_id, error)
            attachment.refused.append((name, str(error)))
            continue
        if stored is None:
            attachment.duplicates.append(image.filename)
        else:
            attachment.stored.append(stored)
    with services.sessions.begin() as session:
        screenshots.record_attachment(
            session,
            incident_id,
            actor,
            attachment,
            caption=caption,
            source_permalink=source_permalink,
        )
        summary = attachment_summary(incident_id, attachment)
        queue_tell(session, Recipient(user_id, feedback_channel), summary, incident_id=incident_id)
    deliver_and_report(services, client, incident_id, user_id, feedback_channel)
    return attachment


def attachment_summary(incident_id: int, attachment: Attachment) -> str:
    ref = incidents.format_incident_id(incident_id)
    parts = []
    if attachment.stored:
        parts.append(f"Kept {len(attachment.stored)} screenshot(s) on {ref}.")
    if attachment.duplicates:
        names = ", ".join(blocks.escape(n) for n in attachment.duplicates)
        parts.append(f"{ref} already had: {names}.")
    for name, reason in attachment.refused:
        parts.append(f"Not kept: {blocks.escape(name)}: {blocks.escape(reason)}.")
    return "\n".join(parts) or f"Nothing to attach to {ref}."


def repost_screenshots(
    services: Services,
    client: WebClient,
    incident_ref: str | int,
    user_id: str,
    channel: str | None,
) -> None:
    """Upload the stored copies into the card's thread, so they outlive Slack's originals."""
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            ref, card_channel, card_ts = (
                blocks.ref(incident),
                incident.slack_channel_id,
                incident.card_ts,
            )
            ids = [s.id for s in screenshots.list_screenshots(session, incident.id)]
    except IncidentError as error:
        tell_user(services, user_id, channel, blocks.escape(str(error)))
        return
    if not ids:
        tell_user(services, user_id, channel, f"{ref} has no screenshots.")
        return
    if not card_channel or not card_ts:
        tell_user(services, user_id, channel, f"{ref} has no card in Slack to post them under.")
        return
    for number, screenshot_id in enumerate(ids, start=1):
        with services.sessions() as session:
            # One image's bytes at a time.
            filename, content = screenshots.stored_image(session, screenshot_id)
        upload = {"content": content, "filename": filename, "title": filename}
        try:
            client.files_upload_v2(
                channel=card_channel,
                thread_ts=card_ts,
                file_uploads=[upload],
                initial_comment=(
                    f"Stored copies of {ref}'s screenshots ({len(ids)})" if number == 1 else None
                ),
            )
        except SlackApiError as error:
            tell_user(
                services,
                user_id,
                channel,
                f"Slack refused the upload of screenshot {number} of {len(ids)} "
                f"({error.response.get('error')}); the copies are still stored.",
            )
            return
        del upload
    log.info("%s: %d screenshots re-posted by %s", ref, len(ids), user_id)
