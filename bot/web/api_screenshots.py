"""/api/v1/incidents/{id}/screenshots: the images kept with an incident, under the same rules as
images attached in Slack (bot.incidents.screenshots)."""

from __future__ import annotations

import io
import re
from typing import Any

from apiflask import abort
from flask import send_file
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from bot import incidents
from bot.incidents import screenshots
from bot.web import schemas
from bot.web.api_common import SCREENSHOT_ID, bp, size
from bot.web.auth import api_auth, current_actor, services
from bot.web.links import link
from db.models import Screenshot

_TAGS = ["Screenshots"]
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# What a stored file name may bring into a header: no quotes, slashes or control characters.
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/]')


def _body(shot: Screenshot) -> dict[str, Any]:
    return {
        "id": shot.id,
        "incident_id": shot.incident_id,
        "filename": shot.filename,
        "mime_type": shot.mime_type,
        "size_bytes": shot.size_bytes,
        "width": shot.width,
        "height": shot.height,
        "sha256": shot.sha256,
        "caption": shot.caption,
        "uploaded_by": shot.uploaded_by,
        "uploaded_by_label": incidents.actor_label(shot.uploaded_by),
        "source_permalink": shot.source_permalink,
        "created_at": shot.created_at,
        "url": link("api.download_screenshot", incident_id=shot.incident_id, screenshot_id=shot.id),
    }


@bp.get("/incidents/<incident_id>/screenshots")
@bp.auth_required(api_auth)
@bp.output(schemas.ScreenshotList)
@bp.doc(tags=_TAGS)
def list_screenshots(incident_id: str) -> dict[str, Any]:
    """An incident's screenshots (without the images), oldest first"""
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        return {"items": [_body(s) for s in screenshots.list_screenshots(session, incident.id)]}


@bp.post("/incidents/<incident_id>/screenshots")
@bp.auth_required(api_auth)
@bp.input(schemas.ScreenshotUpload, location="form_and_files", arg_name="form")
@bp.output(schemas.Screenshot, status_code=201, description="Stored; the card's thread says so")
@bp.doc(
    tags=_TAGS,
    responses={
        200: {
            "description": "The incident already had this image: the stored one, unchanged",
            "content": {"application/json": {"schema": schemas.Screenshot}},
        },
        413: "The image is over MAX_SCREENSHOT_BYTES",
    },
)
def upload_screenshot(incident_id: str, form: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Attach a screenshot (multipart: `file`, optional `caption`)

    PNG, JPEG, GIF or WebP, judged by its bytes and decoded in full, as in Slack. An incident
    keeps each image once: sending the same bytes again answers 200 with the stored one.
    """
    actor = current_actor()
    web = services()
    upload: FileStorage = form["file"]
    limit = web.settings.max_screenshot_bytes
    # The form parser spooled the file to disk; this is the one copy in memory.
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        abort(413, f"The image is larger than the {size(limit)} a screenshot may be.")
    with web.read() as session:
        incidents.get_incident(session, incident_id)  # a missing incident before judging bytes
    image = screenshots.validate_image(upload.filename or "screenshot", data)
    del data
    caption = form.get("caption")
    with web.change() as session:
        stored = screenshots.attach_image(session, incident_id, actor, image, caption=caption)
        if stored is None:
            return _body(
                screenshots.find_screenshot(session, incident_id, sha256=image.sha256)
            ), 200
        return _body(screenshots.find_screenshot(session, incident_id, screenshot_id=stored)), 201


@bp.get(f"/incidents/<incident_id>/screenshots/{SCREENSHOT_ID}")
@bp.auth_required(api_auth)
@bp.doc(
    tags=_TAGS,
    responses={
        200: {
            "description": "The image, as stored",
            "content": {
                mime: {"schema": {"type": "string", "format": "binary"}} for mime in _IMAGE_TYPES
            },
        }
    },
)
def download_screenshot(incident_id: str, screenshot_id: int) -> Response:
    """A screenshot's image"""
    with services().read() as session:
        shot = screenshots.find_screenshot(session, incident_id, screenshot_id=screenshot_id)
        filename, content = screenshots.stored_image(session, shot.id)
    response = send_file(
        io.BytesIO(content),
        mimetype=shot.mime_type,
        download_name=_UNSAFE_IN_FILENAME.sub("_", filename) or "screenshot",
        etag=False,
    )
    return response


@bp.delete(f"/incidents/<incident_id>/screenshots/{SCREENSHOT_ID}")
@bp.auth_required(api_auth)
@bp.output({}, status_code=204, description="Deleted; the timeline records it")
@bp.doc(tags=_TAGS, responses={403: "Only its uploader or an incident admin may delete it"})
def delete_screenshot(incident_id: str, screenshot_id: int) -> tuple[str, int]:
    """Delete a screenshot (its uploader or an admin)"""
    with services().change() as session:
        screenshots.delete_screenshot(
            session, screenshot_id, current_actor(), incident_id=incident_id
        )
    return "", 204
