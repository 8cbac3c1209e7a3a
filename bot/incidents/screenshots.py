"""Screenshots: validate image bytes and keep them with the incident. Knows nothing of Slack.

An image is judged by its bytes, never by its name or a declared type: PNG, JPEG, GIF or WebP,
decoded in full by Pillow under a pixel limit, so truncated files and decompression bombs are
refused before anything is stored. Each image is stored once per incident (by sha256).
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime

from PIL import Image, ImageSequence, UnidentifiedImageError
from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, undefer

from db.models import EventKind, IncidentEvent, Screenshot
from db.staging import stage_bytes

from .queries import get_incident
from .recording import _require_editable, audit, lock_incident, notify, record_event, touch
from .vocabulary import (
    Actor,
    InvalidInput,
    NotFound,
    PermissionDenied,
    format_incident_id,
    parse_incident_id,
)

log = logging.getLogger(__name__)

# A 16 MiB PNG of an 8K screen is ~33 Mpx; 50 Mpx leaves room, and bounds decoding memory
# (~4 bytes a pixel) at about 200 MB however small the file claiming those pixels is.
MAX_PIXELS = 50_000_000
MAX_FRAMES = 500
CAPTION_MAX = 1_000
FILENAME_MAX = 255

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


class NotAnImage(InvalidInput):
    """The bytes are not an image we keep; the message says why, for the person who sent it."""


def sniff(data: bytes) -> str | None:
    """The image type the bytes announce, or None."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<!--"))


@dataclass(frozen=True)
class ValidImage:
    """A validated image, ready to store."""

    filename: str
    data: bytes
    mime_type: str
    width: int
    height: int
    sha256: str


def validate_image(filename: str, data: bytes, *, max_pixels: int = MAX_PIXELS) -> ValidImage:
    """Accept PNG, JPEG, GIF or WebP bytes that decode completely within the pixel limit."""
    if "\x00" in (filename or ""):
        raise NotAnImage("its name contains a NUL character, which isn't allowed")
    if not data:
        raise NotAnImage("the file is empty")
    mime = sniff(data)
    if mime is None:
        if _looks_like_html(data):
            raise NotAnImage("Slack sent a web page instead of the file (is files:read granted?)")
        raise NotAnImage("not a PNG, JPEG, GIF or WebP image")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; every bomb must be an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]]) as image:
                width, height = image.size
                frames = getattr(image, "n_frames", 1)
                if width * height > max_pixels or width * height * frames > max_pixels * 4:
                    raise NotAnImage(
                        f"{width}x{height} pixels is more than the {max_pixels:,}-pixel limit"
                    )
                if frames > MAX_FRAMES:
                    raise NotAnImage(f"{frames} frames is more than the {MAX_FRAMES} allowed")
                for frame in ImageSequence.Iterator(image):
                    frame.load()  # decode everything: truncation shows only here
        except NotAnImage:
            raise
        except UnidentifiedImageError:
            # Pillow's words name the in-memory file object (<_io.BytesIO object at 0x...>).
            raise NotAnImage("the image is damaged or truncated") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise NotAnImage(f"refused as a decompression bomb ({error})") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise NotAnImage(f"the image is damaged or truncated ({error})") from None
    name = (filename or "screenshot").strip()[:FILENAME_MAX] or "screenshot"
    return ValidImage(
        filename=name,
        data=data,
        mime_type=mime,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def check_can_attach(
    session: Session, incident_id: int | str, actor: Actor, caption: str | None
) -> int:
    """The incident's id, if `actor` may attach to it with this caption: asked before files are
    downloaded, so a refusal comes at once; storing checks again."""
    clean_caption(caption)
    incident = get_incident(session, incident_id)
    _require_editable(incident, actor)
    return incident.id


def clean_caption(caption: str | None) -> str | None:
    caption = (caption or "").strip() or None
    if caption and "\x00" in caption:
        raise InvalidInput("Caption contains a NUL character, which isn't allowed.", "caption")
    if caption and len(caption) > CAPTION_MAX:
        raise InvalidInput(
            f"Caption is too long: {len(caption):,} characters, the limit is {CAPTION_MAX:,}.",
            "caption",
        )
    return caption


def store_image(
    session: Session,
    incident_id: int,
    actor: Actor,
    image: ValidImage,
    *,
    caption: str | None = None,
    source_permalink: str | None = None,
    slack_file_id: str | None = None,
    now: datetime | None = None,
) -> int | None:
    """Store one image; its id, or None when the incident already has these bytes.

    Images are stored one at a time, each in the caller's short transaction, so a batch of large
    files never sits in memory together and the incident is not locked while files download.
    ON CONFLICT: two people attaching the same image at once store it once.
    """
    # Read, not locked: a lock held while the bytes are copied would hold up every change of
    # the incident. record_attachment checks again under the lock.
    _require_editable(get_incident(session, incident_id), actor)
    # The bytes go by binary COPY (db.staging), not as a parameter: psycopg2 would hex-encode
    # them, building a statement over twice the image's size beside it in memory.
    staged = stage_bytes(session, image.data)
    values = {
        "incident_id": incident_id,
        "filename": image.filename,
        "mime_type": image.mime_type,
        "size_bytes": len(image.data),
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "slack_file_id": slack_file_id,
        "uploaded_by": actor.user_id,
        "source_permalink": source_permalink,
        "caption": clean_caption(caption),
        "created_at": now or datetime.now(UTC),
    }
    columns = [literal(value, Screenshot.__table__.c[name].type) for name, value in values.items()]
    return session.execute(
        insert(Screenshot)
        .from_select([*values, "content"], select(*columns, staged.c.content))
        .on_conflict_do_nothing(constraint="uq_screenshots_incident_sha256")
        .returning(Screenshot.id)
    ).scalar()


@dataclass
class Attachment:
    """What one attach did, file by file; recorded as one timeline event and one reply."""

    stored: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def record_attachment(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    attachment: Attachment,
    *,
    caption: str | None = None,
    source_permalink: str | None = None,
    now: datetime | None = None,
) -> None:
    """The timeline event (and its thread reply) for an attach: kept, already there, refused."""
    now = now or datetime.now(UTC)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    event = record_event(
        session,
        incident,
        EventKind.SCREENSHOT_ADDED,
        actor,
        now,
        text=clean_caption(caption),
        details={
            "stored": attachment.stored,
            "duplicates": attachment.duplicates,
            # A name refused for its NUL is still named: JSONB can't hold a NUL either.
            "refused": [
                {"name": name.replace("\x00", "\ufffd"), "reason": reason}
                for name, reason in attachment.refused
            ],
            "source_url": source_permalink,
        },
    )
    if attachment.stored:
        touch(incident, now)
    notify(session, incident, [event], now=now)
    audit(
        session,
        log,
        "%s screenshots by %s: %d stored, %d already there, %d refused",
        format_incident_id(incident.id),
        actor.user_id,
        len(attachment.stored),
        len(attachment.duplicates),
        len(attachment.refused),
    )


def attach_image(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    image: ValidImage,
    *,
    caption: str | None = None,
    now: datetime | None = None,
) -> int | None:
    """Attach one uploaded image (the web's uploads): stored and recorded on the timeline, with
    its thread reply; None, and nothing recorded, when the incident already has these bytes."""
    incident = lock_incident(session, incident_id)
    stored = store_image(session, incident.id, actor, image, caption=caption, now=now)
    if stored is not None:
        attachment = Attachment(stored=[stored])
        record_attachment(session, incident.id, actor, attachment, caption=caption, now=now)
    return stored


def has_slack_file(session: Session, incident_id: int, slack_file_id: str) -> bool:
    """Whether this Slack file is already stored on the incident (a redelivered event)."""
    return (
        session.scalar(
            select(Screenshot.id).where(
                Screenshot.incident_id == incident_id, Screenshot.slack_file_id == slack_file_id
            )
        )
        is not None
    )


def list_screenshots(session: Session, incident_id: int) -> list[Screenshot]:
    """Newest last; the image bytes stay in the database (the column is deferred)."""
    return list(
        session.scalars(
            select(Screenshot)
            .where(Screenshot.incident_id == incident_id)
            .order_by(Screenshot.created_at, Screenshot.id)
        )
    )


def find_screenshot(
    session: Session,
    incident_id: int | str,
    *,
    screenshot_id: int | None = None,
    sha256: str | None = None,
) -> Screenshot:
    """One of the incident's screenshots, by id or by its bytes' hash; another incident's is
    not found, so a path can't reach across incidents."""
    incident = get_incident(session, incident_id)
    query = select(Screenshot).where(Screenshot.incident_id == incident.id)
    if screenshot_id is not None:
        query = query.where(Screenshot.id == screenshot_id)
    if sha256 is not None:
        query = query.where(Screenshot.sha256 == sha256)
    shot = session.scalar(query.limit(1))
    if shot is None:
        raise NotFound(f"{format_incident_id(incident.id)} has no such screenshot.")
    return shot


def stored_image(session: Session, screenshot_id: int) -> tuple[str, bytes]:
    """A screenshot's file name and bytes: one image in memory, for a caller that takes one at a
    time."""
    shot = session.get_one(Screenshot, screenshot_id, options=[undefer(Screenshot.content)])
    return shot.filename, shot.content


def delete_screenshot(
    session: Session,
    screenshot_id: int | None,
    actor: Actor,
    *,
    incident_id: int | str | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Delete a screenshot (its uploader or an admin); the timeline records it (with its name).

    `incident_id` is the incident the person named (an API path's): another incident's
    screenshot is not found there.
    """
    if screenshot_id is None:
        raise NotFound("That is not a screenshot of any incident.")
    named = None if incident_id is None else parse_incident_id(incident_id)
    now = now or datetime.now(UTC)
    screenshot = session.get(Screenshot, screenshot_id)
    if screenshot is None or named not in (None, screenshot.incident_id):
        if named is None:
            raise NotFound(f"There is no screenshot {screenshot_id}.")
        raise NotFound(f"{format_incident_id(named)} has no screenshot {screenshot_id}.")
    if not actor.may_remove(screenshot.uploaded_by):
        raise PermissionDenied("Only the screenshot's uploader or an incident admin can delete it.")
    incident = lock_incident(session, screenshot.incident_id)
    _require_editable(incident, actor)
    name = screenshot.filename
    session.delete(screenshot)
    event = record_event(
        session,
        incident,
        EventKind.SCREENSHOT_DELETED,
        actor,
        now,
        details={"screenshot_id": screenshot_id, "name": name},
    )
    touch(incident, now)
    notify(session, incident, [event], now=now)
    audit(
        session,
        log,
        "%s screenshot %d (%s) deleted by %s",
        format_incident_id(incident.id),
        screenshot_id,
        name,
        actor.user_id,
    )
    return event
