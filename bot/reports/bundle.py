"""A post-mortem with its images beside it, so it renders in a wiki without a session on the
site: a zip (the web's `?images=inline`) or a folder (the CLI's `--inline-images`), holding the
Markdown and an `images/` folder it links to by relative paths.

Image names are ours, never the stored filename as given: a Slack user chose that name, and
`../../etc/passwd` or `C:\\x` must not pick where a file lands. Each is `<screenshot id>-<the
filename's safe letters>.<the extension of its checked type>`: unique, stable for the same
incident, and readable. One image is in memory at a time: the caller hands in a function that
reads one screenshot's bytes (in its own session), and the zip is yielded entry by entry.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot import incidents
from db.models import Screenshot

from .postmortem import Names, PostmortemFacts, filename, postmortem_markdown

IMAGES = "images"
# What the stored image is, by its checked type (screenshots.validate_image sniffs the bytes).
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
STEM_MAX = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# Reads one screenshot's bytes by its id.
ImageReader = Callable[[int], bytes]
# Zip entries' time when there is none better (zip can't say before 1980).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def image_name(shot: Screenshot) -> str:
    """`12-error-rate-graph.png`: the id keeps it unique, the extension follows the type."""
    base = shot.filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    safe = _UNSAFE.sub("-", stem).strip("-_")[:STEM_MAX].strip("-_")
    extension = EXTENSIONS.get(shot.mime_type, "bin")
    return f"{shot.id}-{safe}.{extension}" if safe else f"{shot.id}.{extension}"


@dataclass(frozen=True)
class Image:
    screenshot_id: int
    path: str  # beside the Markdown: images/12-graph.png
    added_at: datetime


@dataclass(frozen=True)
class Bundle:
    """The Markdown and the images it links to. Plain values: written after the session that
    read them has closed."""

    incident_id: int
    name: str  # the Markdown's file name, INC-12-postmortem.md
    document: str
    images: list[Image]
    written_at: datetime


def bundle(
    facts: PostmortemFacts, *, name: Names | None = None, page_url: str | None = None
) -> Bundle:
    paths = {shot.id: f"{IMAGES}/{image_name(shot)}" for shot in facts.screenshots}
    document = postmortem_markdown(
        facts, name=name, page_url=page_url, screenshot_url=lambda _incident, shot: paths[shot]
    )
    moments = [facts.incident.updated_at, *(s.created_at for s in facts.screenshots)]
    return Bundle(
        facts.incident.id,
        filename(facts.incident.id),
        document,
        [Image(shot.id, paths[shot.id], shot.created_at) for shot in facts.screenshots],
        max(m for m in moments if m is not None),
    )


def wants_inline(value: str | None) -> bool:
    """`?images=`: `inline` (a zip with the images) or `links` (the Markdown alone, the
    default); InvalidInput for anything else."""
    wanted = (value or "").strip().lower()
    if wanted in ("", "links"):
        return False
    if wanted == "inline":
        return True
    raise incidents.InvalidInput(
        f"images must be inline (a zip with the images) or links, not {wanted[:20]!r}.", "images"
    )


def zip_name(incident_id: int) -> str:
    return f"{incidents.format_incident_id(incident_id)}-postmortem.zip"


class _Chunks(io.RawIOBase):
    """A write-only, unseekable file: zipfile then writes each entry's sizes after its data,
    and what it wrote so far can be handed on and forgotten."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _entry(path: str, moment: datetime, compress: int) -> zipfile.ZipInfo:
    stamp = moment.astimezone(UTC).timetuple()[:6]
    info = zipfile.ZipInfo(path, date_time=max(stamp, _ZIP_EPOCH))
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def zip_chunks(made: Bundle, read_image: ImageReader) -> Iterator[bytes]:
    """The zip, a piece at a time: the Markdown first, then each image as it is read (stored,
    not compressed again: PNG, JPEG, GIF and WebP already are)."""
    out = _Chunks()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            _entry(made.name, made.written_at, zipfile.ZIP_DEFLATED), made.document.encode()
        )
        yield out.take()
        for image in made.images:
            entry = _entry(image.path, image.added_at, zipfile.ZIP_STORED)
            archive.writestr(entry, read_image(image.screenshot_id))
            yield out.take()
    yield out.take()


def write_folder(made: Bundle, folder: Path, read_image: ImageReader) -> list[Path]:
    """The Markdown and its images/ in `folder` (made if needed; our files in it replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / IMAGES).mkdir(exist_ok=True)
    written = []
    for image in made.images:
        target = folder / image.path
        target.write_bytes(read_image(image.screenshot_id))
        written.append(target)
    document = folder / made.name
    document.write_text(made.document, encoding="utf-8")
    return [document, *written]
