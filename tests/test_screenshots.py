"""Screenshots below Slack's surfaces: image checks, storage in PostgreSQL, safe file downloads.

Every image is made here with Pillow (or crafted byte by byte), never read from a fixture file, and
every download goes over real HTTP to the fake Slack on loopback (or to a server standing in for
someone else's host).
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import (
    Actor,
    IncidentDraft,
    InvalidInput,
    NotFound,
    PermissionDenied,
    screenshots,
)
from bot.incidents.screenshots import Attachment, NotAnImage, ValidImage
from bot.slack import blocks
from bot.slack import files as slack_files
from bot.slack.files import FileRefused
from db.models import Delivery, DeliveryAction, EventKind, Incident, IncidentEvent, Screenshot
from tests.fakeslack import FakeSlack, defaults

ALICE = Actor("U0ALICE0001")
BOB = Actor("U0BOB000001")
ADMIN = Actor("U0ADMIN0001", is_admin=True)
CHANNEL = defaults.CHANNEL_ID
TOKEN = defaults.BOT_TOKEN
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


# --- images, made in the test --------------------------------------------------------------------


def noise(size: tuple[int, int], seed: int = 1, mode: str = "RGB") -> Image.Image:
    """Random pixels: every seed a different image, and files big enough to cut in half."""
    channels = len(mode)
    return Image.frombytes(mode, size, random.Random(seed).randbytes(size[0] * size[1] * channels))


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    return encode(noise(size, seed, "RGBA"), "PNG")


def jpeg(size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    return encode(noise(size, seed), "JPEG", quality=90)


def gif(size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    return encode(noise(size, seed).convert("P"), "GIF")


def webp(size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    return encode(noise(size, seed), "WEBP", quality=80)


def animated_gif(size: tuple[int, int], frames: int) -> bytes:
    images = [noise(size, seed).convert("P") for seed in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header announcing `width` x `height` greyscale pixels, with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def solid_png(size: tuple[int, int]) -> bytes:
    """A real, complete one-colour image: huge in pixels, tiny on disk."""
    return encode(Image.new("1", size, 1), "PNG", optimize=True)


# --- validate_image ------------------------------------------------------------------------------

FORMATS = {
    "png": (png, "image/png"),
    "jpeg": (jpeg, "image/jpeg"),
    "gif": (gif, "image/gif"),
    "webp": (webp, "image/webp"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_accepted_format_is_recognised_by_its_bytes_with_its_dimensions(fmt: str) -> None:
    make, mime = FORMATS[fmt]
    data = make((71, 33), 5)

    image = screenshots.validate_image(f"shot.{fmt}", data)

    assert isinstance(image, ValidImage)
    assert (image.mime_type, image.width, image.height) == (mime, 71, 33)
    assert image.data == data
    assert image.filename == f"shot.{fmt}"
    assert image.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("screenshot.png", "jpeg"), ("diagram.gif", "webp"), ("photo.jpg", "png"), ("noext", "gif")],
)
def test_the_name_does_not_decide_the_type(name: str, fmt: str) -> None:
    make, mime = FORMATS[fmt]

    image = screenshots.validate_image(name, make())

    assert (image.filename, image.mime_type) == (name, mime)


def test_an_animated_gif_is_accepted_and_keeps_its_frame_size() -> None:
    data = animated_gif((40, 30), frames=3)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 3  # the test's own premise

    image = screenshots.validate_image("spinner.gif", data)

    assert (image.mime_type, image.width, image.height) == ("image/gif", 40, 30)


def test_an_animation_whose_frames_together_pass_the_pixel_budget_is_refused() -> None:
    # Each frame is exactly at the limit; ten of them are ten times what may be decoded.
    data = animated_gif((100, 100), frames=10)

    with pytest.raises(NotAnImage):
        screenshots.validate_image("long.gif", data, max_pixels=100 * 100)
    # A single frame of the same size is fine.
    assert screenshots.validate_image("one.gif", gif((100, 100)), max_pixels=100 * 100).width == 100


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


REFUSED = {
    "text named .png": (
        "notes.png",
        b"These are my notes about the outage, not a picture.\n" * 20,
        "not a PNG, JPEG, GIF or WebP image",
    ),
    "HTML login page": (
        "graph.png",
        b'<!DOCTYPE html><html lang="en-US"><head><title>Slack</title></head>'
        b"<body><h1>Sign in to Slack</h1></body></html>",
        "web page",
    ),
    "HTML with leading whitespace": (
        "graph.png",
        b"\n\n   <html><body>Sign in</body></html>",
        "web page",
    ),
    "empty": ("empty.png", b"", "empty"),
    "BMP (a real image, not one we keep)": (
        "shot.bmp",
        encode(noise((20, 20)), "BMP"),
        "not a PNG, JPEG, GIF or WebP image",
    ),
    "truncated JPEG": ("cut.jpg", truncated(jpeg((200, 150))), "damaged or truncated"),
    "truncated PNG": ("cut.png", truncated(png((200, 150))), "damaged or truncated"),
    "truncated WebP": ("cut.webp", truncated(webp((200, 150))), "damaged or truncated"),
    "PNG signature on JPEG bytes": (
        "odd.png",
        b"\x89PNG\r\n\x1a\n" + jpeg()[3:],
        "damaged or truncated",
    ),
    "header claiming 100000x100000": ("bomb.png", png_claiming(100_000, 100_000), "bomb"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_what_is_not_a_complete_image_is_refused_with_a_reason(case: str) -> None:
    name, data, reason = REFUSED[case]

    with pytest.raises(NotAnImage) as refused:
        screenshots.validate_image(name, data)

    assert reason in str(refused.value)
    assert isinstance(refused.value, InvalidInput)  # the domain's error: shown to the person


def test_a_real_solid_colour_decompression_bomb_is_refused() -> None:
    data = solid_png((12_000, 10_000))  # 120 million pixels
    assert len(data) < 200_000  # the premise: it compresses to almost nothing

    with pytest.raises(NotAnImage) as refused:
        screenshots.validate_image("bomb.png", data)
    assert re.search(r"bomb|pixel limit", str(refused.value))
    # Pillow's own bomb limit stays an error (not a warning) even under a generous max_pixels.
    with pytest.raises(NotAnImage) as refused:
        screenshots.validate_image("bomb.png", data, max_pixels=1_000_000_000)
    assert "bomb" in str(refused.value)


def test_an_image_over_the_default_pixel_limit_but_under_pillows_is_refused() -> None:
    # 56 Mpx: Pillow alone would decode it (its limit is ~89 Mpx); ours is 50 Mpx.
    assert Image.MAX_IMAGE_PIXELS and Image.MAX_IMAGE_PIXELS > 8_000 * 7_000
    data = solid_png((8_000, 7_000))

    with pytest.raises(NotAnImage) as refused:
        screenshots.validate_image("wide.png", data)

    assert "pixel limit" in str(refused.value)
    assert screenshots.MAX_PIXELS < 8_000 * 7_000


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_max_pixels_is_applied_to_every_format(fmt: str) -> None:
    make, _ = FORMATS[fmt]
    data = make((100, 50), 3)

    with pytest.raises(NotAnImage) as refused:
        screenshots.validate_image("big", data, max_pixels=100 * 50 - 1)
    assert "pixel limit" in str(refused.value)
    assert screenshots.validate_image("big", data, max_pixels=100 * 50).width == 100


def test_a_blank_or_overlong_file_name_still_gives_a_name_that_can_be_stored() -> None:
    assert screenshots.validate_image("   ", png()).filename == "screenshot"
    long_name = "x" * 400 + ".png"
    assert len(screenshots.validate_image(long_name, png()).filename) == 255


# --- storing, in PostgreSQL ----------------------------------------------------------------------


def declare(session: Session, *, card: bool = True, title: str = "Checkout is failing") -> int:
    incident = incidents.declare(
        session,
        IncidentDraft(title=title, severity="SEV2", slack_channel_id=CHANNEL if card else None),
        ALICE,
        now=T0,
    )
    session.flush()
    return incident.id


def rows(session: Session, incident_id: int | None = None) -> list[Screenshot]:
    query = select(Screenshot).order_by(Screenshot.id)
    if incident_id is not None:
        query = query.where(Screenshot.incident_id == incident_id)
    return list(session.scalars(query))


def stored_bytes(session: Session, screenshot_id: int) -> bytes | None:
    return session.scalar(select(Screenshot.content).where(Screenshot.id == screenshot_id))


def test_store_keeps_the_bytes_and_what_was_learnt_about_them(session: Session) -> None:
    incident_id = declare(session)
    data = png((90, 60), 7)
    image = screenshots.validate_image("graph.png", data)

    new_id = screenshots.store_image(
        session,
        incident_id,
        BOB,
        image,
        caption="  After the deploy  ",
        source_permalink="https://example.slack.com/archives/C1/p1",
        slack_file_id="F0GRAPH",
        now=T0,
    )

    assert isinstance(new_id, int)
    session.expire_all()
    [row] = rows(session, incident_id)
    assert row.id == new_id
    assert (row.filename, row.mime_type, row.size_bytes, row.width, row.height) == (
        "graph.png",
        "image/png",
        len(data),
        90,
        60,
    )
    assert (row.uploaded_by, row.caption, row.slack_file_id) == (
        BOB.user_id,
        "After the deploy",
        "F0GRAPH",
    )
    assert row.source_permalink == "https://example.slack.com/archives/C1/p1"
    assert row.created_at == T0
    assert stored_bytes(session, new_id) == data


def test_the_same_bytes_are_stored_once_per_incident(session: Session) -> None:
    first = declare(session, title="Checkout is failing")
    second = declare(session, title="Search is slow")
    data = jpeg(seed=3)

    kept = screenshots.store_image(
        session, first, ALICE, screenshots.validate_image("a.jpg", data), slack_file_id="F1"
    )
    again = screenshots.store_image(
        session, first, ALICE, screenshots.validate_image("a.jpg", data), slack_file_id="F1"
    )
    # Another person, another Slack file, another name: still the same bytes.
    by_bob = screenshots.store_image(
        session, first, BOB, screenshots.validate_image("copy.jpg", data), slack_file_id="F2"
    )
    elsewhere = screenshots.store_image(
        session, second, BOB, screenshots.validate_image("a.jpg", data)
    )
    different = screenshots.store_image(
        session, first, ALICE, screenshots.validate_image("b.jpg", jpeg(seed=4))
    )

    assert isinstance(kept, int) and isinstance(elsewhere, int) and isinstance(different, int)
    assert (again, by_bob) == (None, None)
    assert [(r.id, r.filename, r.uploaded_by) for r in rows(session, first)] == [
        (kept, "a.jpg", ALICE.user_id),
        (different, "b.jpg", ALICE.user_id),
    ]
    assert [r.id for r in rows(session, second)] == [elsewhere]


def test_a_caption_over_1000_characters_is_refused_and_nothing_is_stored(session: Session) -> None:
    incident_id = declare(session)
    image = screenshots.validate_image("a.png", png())

    with pytest.raises(InvalidInput) as refused:
        screenshots.store_image(session, incident_id, ALICE, image, caption="x" * 1_001)

    assert "1,000" in str(refused.value)
    assert rows(session, incident_id) == []
    assert screenshots.store_image(session, incident_id, ALICE, image, caption="x" * 1_000)


def test_two_people_storing_the_same_image_at_once_make_one_row(
    committing_sessions: sessionmaker[Session],
) -> None:
    with committing_sessions.begin() as session:
        incident_id = declare(session)
    image = screenshots.validate_image("same.png", png(seed=11))
    people = 8
    start = threading.Barrier(people)
    results: list[int | None] = []
    errors: list[BaseException] = []

    def attach(n: int) -> None:
        try:
            with committing_sessions.begin() as session:
                start.wait(timeout=10)
                results.append(
                    screenshots.store_image(session, incident_id, Actor(f"U0PERSON{n:03d}"), image)
                )
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=attach, args=(n,)) for n in range(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == people
    assert sum(r is not None for r in results) == 1
    with committing_sessions() as session:
        assert len(rows(session, incident_id)) == 1


def test_record_attachment_writes_one_event_and_queues_the_card_and_a_thread_reply(
    session: Session,
) -> None:
    incident_id = declare(session)
    session.commit()
    kept = screenshots.store_image(
        session, incident_id, BOB, screenshots.validate_image("a.png", png())
    )
    assert kept is not None
    before = session.scalar(select(func.max(Delivery.id)))
    attachment = Attachment(
        stored=[kept],
        duplicates=["old.png"],
        refused=[("notes.png", "not a PNG, JPEG, GIF or WebP image")],
    )
    later = T0 + timedelta(minutes=5)

    screenshots.record_attachment(
        session,
        incident_id,
        BOB,
        attachment,
        caption=" Dashboards ",
        source_permalink="https://example.slack.com/archives/C1/p2",
        now=later,
    )

    recorded = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id.desc())
    ).first()
    assert recorded is not None
    assert (recorded.kind, recorded.actor, recorded.text) == (
        EventKind.SCREENSHOT_ADDED,
        BOB.user_id,
        "Dashboards",
    )
    assert recorded.details == {
        "stored": [kept],
        "duplicates": ["old.png"],
        "refused": [{"name": "notes.png", "reason": "not a PNG, JPEG, GIF or WebP image"}],
        "source_url": "https://example.slack.com/archives/C1/p2",
    }
    queued = session.scalars(
        select(Delivery).where(Delivery.id > before).order_by(Delivery.id)
    ).all()
    assert [(d.action, d.incident_id) for d in queued] == [
        (DeliveryAction.UPDATE_CARD, incident_id),
        (DeliveryAction.POST_THREAD, incident_id),
    ]
    assert queued[1].payload == {"event_ids": [recorded.id]}
    assert session.get_one(Incident, incident_id).updated_at == later
    reply = blocks.thread_text([recorded])
    assert f"<@{BOB.user_id}> attached 1 screenshot from <https://example.slack.com" in reply
    assert "Already there: old.png" in reply
    assert "Not kept: notes.png (not a PNG, JPEG, GIF or WebP image)" in reply


def test_an_attach_that_kept_nothing_leaves_updated_at_and_without_a_card_queues_nothing(
    session: Session,
) -> None:
    incident_id = declare(session, card=False)
    before = session.scalar(select(func.count()).select_from(Delivery))

    screenshots.record_attachment(
        session,
        incident_id,
        ALICE,
        Attachment(duplicates=["a.png"]),
        now=T0 + timedelta(hours=1),
    )

    assert session.scalar(select(func.count()).select_from(Delivery)) == before
    assert session.get_one(Incident, incident_id).updated_at == T0
    kinds = session.scalars(
        select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident_id)
    ).all()
    assert kinds == [EventKind.CREATED, EventKind.SCREENSHOT_ADDED]


def test_record_attachment_for_an_unknown_incident_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        screenshots.record_attachment(session, 987_654, ALICE, Attachment())


@pytest.mark.parametrize("deleter", [BOB, ADMIN], ids=["uploader", "admin"])
def test_the_uploader_or_an_admin_deletes_a_screenshot_and_the_timeline_says_so(
    session: Session, deleter: Actor
) -> None:
    incident_id = declare(session)
    kept = screenshots.store_image(
        session, incident_id, BOB, screenshots.validate_image("graph.png", png())
    )
    assert kept is not None
    before = session.scalar(select(func.max(Delivery.id)))

    deleted = screenshots.delete_screenshot(session, kept, deleter, now=T0 + timedelta(minutes=9))

    assert (deleted.incident_id, deleted.details["name"]) == (incident_id, "graph.png")
    assert rows(session, incident_id) == []
    assert stored_bytes(session, kept) is None
    last = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id.desc())
    ).first()
    assert last is not None
    assert (last.kind, last.actor, last.details) == (
        EventKind.SCREENSHOT_DELETED,
        deleter.user_id,
        {"screenshot_id": kept, "name": "graph.png"},
    )
    queued = session.scalars(select(Delivery.action).where(Delivery.id > before)).all()
    assert sorted(queued) == sorted([DeliveryAction.UPDATE_CARD, DeliveryAction.POST_THREAD])
    assert "deleted the screenshot graph.png" in blocks.thread_text([last])


def test_someone_else_may_not_delete_a_screenshot(session: Session) -> None:
    incident_id = declare(session)
    kept = screenshots.store_image(
        session, incident_id, BOB, screenshots.validate_image("graph.png", png())
    )
    assert kept is not None
    events_before = session.scalar(select(func.count()).select_from(IncidentEvent))

    with pytest.raises(PermissionDenied):
        screenshots.delete_screenshot(session, kept, ALICE)  # the reporter, but not the uploader

    assert [r.id for r in rows(session, incident_id)] == [kept]
    assert session.scalar(select(func.count()).select_from(IncidentEvent)) == events_before
    with pytest.raises(NotFound):
        screenshots.delete_screenshot(session, kept + 1_000, ADMIN)


def selects_content(statements: list[str]) -> list[str]:
    return [
        s
        for s in statements
        if s.lstrip().upper().startswith("SELECT") and re.search(r"\bscreenshots\.content\b", s)
    ]


def test_listing_screenshots_and_incidents_never_loads_the_bytes(
    session: Session, statements: list[str]
) -> None:
    incident_id = declare(session)
    for n, when in enumerate([T0 + timedelta(minutes=2), T0 + timedelta(minutes=1)]):
        image = screenshots.validate_image(f"shot-{n}.png", png(seed=20 + n))
        screenshots.store_image(session, incident_id, BOB, image, now=when)
    session.commit()
    session.expunge_all()
    statements.clear()

    listed = screenshots.list_screenshots(session, incident_id)
    incident = incidents.get_incident(session, incident_id)
    page = incidents.list_incidents(session, incidents.IncidentQuery(active=True))
    card = blocks.card(incident, listed)
    detail = blocks.incident_detail(incident, [], BOB, card_link=None, screenshots=listed)

    assert [s.filename for s in listed] == ["shot-1.png", "shot-0.png"]  # oldest first
    assert incident_id in [i.id for i in page.items]
    assert all("content" in inspect(s).unloaded for s in listed)
    assert selects_content(statements) == []
    assert any("screenshots" in s for s in statements)  # the listing did query the table
    assert "shot-0.png" in str([b.to_dict() for b in card])
    assert "shot-1.png" in str([b.to_dict() for b in detail])
    # The check itself sees a load of the bytes when there is one.
    assert stored_bytes(session, listed[0].id)
    assert selects_content(statements) != []


def test_an_incident_without_screenshots_lists_none(session: Session) -> None:
    assert screenshots.list_screenshots(session, declare(session)) == []


# --- slack_files: which hosts get the token ------------------------------------------------------


def test_file_hosts_are_the_api_host_and_its_files_host() -> None:
    assert slack_files.file_hosts("https://slack.com/api/") == {
        ("https", "slack.com"),
        ("https", "files.slack.com"),
    }
    assert slack_files.file_hosts("https://slack-gov.com/api/") == {
        ("https", "slack-gov.com"),
        ("https", "files.slack-gov.com"),
    }
    assert slack_files.file_hosts("http://127.0.0.1:8123/api/") == {("http", "127.0.0.1:8123")}


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com.evil.example/files-pri/T1-F1/download/a.png",
        "https://evil.example/files.slack.com/files-pri/T1-F1/a.png",
        "http://files.slack.com/files-pri/T1-F1/download/a.png",  # not https
        "https://files.slack.com@evil.example/files-pri/T1-F1/a.png",
        "https://slack-gov.com/files-pri/T1-F1/a.png",
        "ftp://files.slack.com/a.png",
    ],
)
def test_a_download_address_off_slacks_file_host_is_refused_before_any_request(url: str) -> None:
    with pytest.raises(FileRefused) as refused:
        slack_files.download(url, token=TOKEN, api_url="https://slack.com/api/", max_bytes=1024)

    # Refused by the host check, not by a failed connection to that host.
    assert "not on Slack's file host" in str(refused.value)


class Recorder:
    """An HTTP server on another port: someone else's host. Records what it receives."""

    def __init__(self, body: bytes = b"", content_type: str = "image/png") -> None:
        self.requests: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append({"path": self.path, **dict(self.headers.items())})
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    with Recorder(png(seed=66)) as recorder:
        yield recorder


def test_the_recorder_does_see_the_token_when_it_is_the_configured_host(
    elsewhere: Recorder,
) -> None:
    # The premise of the token tests below: a request that reached the recorder would show.
    data = slack_files.download(
        elsewhere.base_url + "/x.png",
        token=TOKEN,
        api_url=elsewhere.base_url + "/api/",
        max_bytes=1 << 20,
    )

    assert data == png(seed=66)
    assert [r.get("Authorization") for r in elsewhere.requests] == [f"Bearer {TOKEN}"]


def test_the_token_goes_only_to_the_fake_slacks_own_host(
    fake_slack: FakeSlack, elsewhere: Recorder
) -> None:
    data = png(seed=8)
    slack = fake_slack.add_file("graph.png", data, "image/png")
    port = fake_slack.port
    path = "/files-pri/T1-F1/download/graph.png"

    got = slack_files.download(
        slack["url_private_download"], token=TOKEN, api_url=fake_slack.api_url, max_bytes=1 << 20
    )
    assert got == data
    assert fake_slack.downloads == [(slack["id"], True)]

    for url in (
        elsewhere.base_url + path,
        f"http://127.0.0.1:{port}@127.0.0.1:{elsewhere.server.server_address[1]}{path}",
        f"http://localhost:{elsewhere.server.server_address[1]}{path}",
    ):
        with pytest.raises(FileRefused) as refused:
            slack_files.download(url, token=TOKEN, api_url=fake_slack.api_url, max_bytes=1 << 20)
        assert "not on Slack's file host" in str(refused.value)
    assert elsewhere.requests == []


def test_a_redirect_to_another_host_is_not_followed_with_the_token(
    fake_slack: FakeSlack, elsewhere: Recorder
) -> None:
    slack = fake_slack.add_file("graph.png", png(), "image/png")
    fake_slack.fail("download", status=302, headers={"Location": elsewhere.base_url + "/x.png"})

    with pytest.raises(FileRefused) as refused:
        slack_files.download(
            slack["url_private_download"],
            token=TOKEN,
            api_url=fake_slack.api_url,
            max_bytes=1 << 20,
        )

    assert "not on Slack's file host" in str(refused.value)
    assert elsewhere.requests == []
    assert fake_slack.downloads == [(slack["id"], True)]


def test_a_redirect_on_slacks_own_host_is_followed(fake_slack: FakeSlack) -> None:
    data = png(seed=9)
    slack = fake_slack.add_file("graph.png", data, "image/png")
    relative = slack["url_private_download"][len(fake_slack.base_url) :]
    fake_slack.fail("download", status=302, headers={"Location": relative})

    got = slack_files.download(
        fake_slack.base_url + "/files-pri/T1-FOTHER/download/graph.png",
        token=TOKEN,
        api_url=fake_slack.api_url,
        max_bytes=1 << 20,
    )

    assert got == data
    assert [authorized for _, authorized in fake_slack.downloads] == [True, True]
    assert fake_slack.downloads[-1][0] == slack["id"]


@pytest.mark.parametrize("how", ["wrong token", "no files:read scope"])
def test_slacks_login_page_is_reported_as_such(fake_slack: FakeSlack, how: str) -> None:
    slack = fake_slack.add_file("graph.png", png(), "image/png")
    token = TOKEN
    if how == "wrong token":
        token = "xoxb-not-the-right-one"
    else:
        fake_slack.scopes.discard("files:read")

    with pytest.raises(FileRefused) as refused:
        slack_files.download(
            slack["url_private_download"],
            token=token,
            api_url=fake_slack.api_url,
            max_bytes=1 << 20,
        )

    assert "login page" in str(refused.value)
    assert "files:read" in str(refused.value)
    assert fake_slack.downloads == [(slack["id"], False)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_file_one_byte_over_the_cap_is_refused_and_one_at_the_cap_is_not(
    fake_slack: FakeSlack, chunked: bool
) -> None:
    cap = 200_000
    at_cap = (png((300, 300), seed=2) * 200)[:cap]
    over = at_cap + b"!"
    fits = fake_slack.add_file("fits.png", at_cap, "image/png", chunked=chunked)
    big = fake_slack.add_file("big.png", over, "image/png", chunked=chunked)

    with pytest.raises(FileRefused) as refused:
        slack_files.download(
            big["url_private_download"], token=TOKEN, api_url=fake_slack.api_url, max_bytes=cap
        )
    got = slack_files.download(
        fits["url_private_download"], token=TOKEN, api_url=fake_slack.api_url, max_bytes=cap
    )

    assert "limit" in str(refused.value)
    assert got == at_cap


class EndlessStream:
    """Someone's file host that never stops sending (chunked, no length); counts what it sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = threading.Event()
        stream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\x89PNG" + b"\x00" * (64 * 1024 - 4)
                try:
                    for _ in range(4_096):  # 256 MiB at most, so a failing test still ends
                        self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                        stream.sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client hung up: what we want
                finally:
                    stream.done.set()
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_reading_stops_soon_after_the_cap_on_an_endless_stream() -> None:
    stream = EndlessStream()
    try:
        with pytest.raises(FileRefused) as refused:
            slack_files.download(
                stream.base_url + "/files-pri/T1-F1/download/a.png",
                token=TOKEN,
                api_url=stream.base_url + "/api/",
                max_bytes=256 * 1024,
            )
        assert stream.done.wait(timeout=20)
    finally:
        stream.close()

    assert "limit" in str(refused.value)
    # Whatever socket buffers held, far less than the 256 MiB the server would have sent.
    assert stream.sent < 64 * 1024 * 1024


class Stalling:
    """A file host that announces a huge Content-Length, then sends nothing until released."""

    def __init__(self, length: int) -> None:
        self.release = threading.Event()
        stalling = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.flush()
                stalling.release.wait(timeout=30)
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_declared_length_over_the_cap_is_refused_without_reading_the_body() -> None:
    host = Stalling(length=1 << 30)
    try:
        with pytest.raises(FileRefused) as refused:
            slack_files.download(
                host.base_url + "/files-pri/T1-F1/download/a.png",
                token=TOKEN,
                api_url=host.base_url + "/api/",
                max_bytes=1 << 20,
                timeout=5,  # reading the body instead would end in this timeout
            )
    finally:
        host.close()

    assert "limit" in str(refused.value)


@pytest.mark.parametrize("status", [500, 503, 404, 403])
def test_an_http_error_from_slack_is_reported(fake_slack: FakeSlack, status: int) -> None:
    slack = fake_slack.add_file("graph.png", png(), "image/png")
    fake_slack.fail("download", status=status)

    with pytest.raises(FileRefused) as refused:
        slack_files.download(
            slack["url_private_download"],
            token=TOKEN,
            api_url=fake_slack.api_url,
            max_bytes=1 << 20,
        )

    assert f"HTTP {status}" in str(refused.value)


def test_a_connection_failure_is_reported() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there any more

    with pytest.raises(FileRefused) as refused:
        slack_files.download(base + "/f.png", token=TOKEN, api_url=base + "/api/", max_bytes=1024)

    assert "download failed" in str(refused.value)


# --- slack_files.fetch ---------------------------------------------------------------------------


def test_fetch_by_id_asks_files_info_for_the_address_and_the_name(fake_slack: FakeSlack) -> None:
    data = webp(seed=4)
    slack = fake_slack.add_file("board.webp", data, "image/webp")

    got = slack_files.fetch(
        fake_slack.client(), {"id": slack["id"]}, api_url=fake_slack.api_url, max_bytes=1 << 20
    )

    assert (got.id, got.name, got.data) == (slack["id"], "board.webp", data)
    assert [p["file"] for p in fake_slack.calls_to("files.info")] == [slack["id"]]


def test_fetch_of_a_partial_payload_copy_asks_files_info(fake_slack: FakeSlack) -> None:
    data = gif(seed=4)
    slack = fake_slack.add_file("anim.gif", data, "image/gif")
    partial = {"id": slack["id"], "file_access": "check_file_info"}

    got = slack_files.fetch(
        fake_slack.client(), partial, api_url=fake_slack.api_url, max_bytes=1 << 20
    )

    assert got.data == data
    assert len(fake_slack.calls_to("files.info")) == 1


def test_fetch_of_a_full_file_object_downloads_it_directly(fake_slack: FakeSlack) -> None:
    data = jpeg(seed=4)
    slack = fake_slack.add_file("photo.jpg", data, "image/jpeg")

    got = slack_files.fetch(
        fake_slack.client(), slack, api_url=fake_slack.api_url, max_bytes=1 << 20
    )

    assert got.data == data
    assert fake_slack.calls_to("files.info") == []


def test_fetch_of_a_file_slack_will_not_describe_is_refused(fake_slack: FakeSlack) -> None:
    with pytest.raises(FileRefused) as refused:
        slack_files.fetch(
            fake_slack.client(), {"id": "F0GONE"}, api_url=fake_slack.api_url, max_bytes=1024
        )

    assert "file_not_found" in str(refused.value)
    assert fake_slack.downloads == []


def test_fetch_of_a_file_slack_says_is_too_big_downloads_nothing(fake_slack: FakeSlack) -> None:
    slack = fake_slack.add_file("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 5_000, "image/png")

    with pytest.raises(FileRefused) as refused:
        slack_files.fetch(fake_slack.client(), slack, api_url=fake_slack.api_url, max_bytes=5_000)

    assert "limit" in str(refused.value)
    assert fake_slack.downloads == []


def test_fetch_never_sends_the_token_to_an_address_files_info_gives_elsewhere(
    fake_slack: FakeSlack, elsewhere: Recorder
) -> None:
    fake_slack.set_handler(
        "files.info",
        lambda params: {
            "file": {
                "id": params["file"],
                "name": "graph.png",
                "size": 100,
                "url_private_download": elsewhere.base_url + "/files-pri/T1-F1/download/g.png",
            }
        },
    )

    with pytest.raises(FileRefused) as refused:
        slack_files.fetch(
            fake_slack.client(), {"id": "F0EVIL"}, api_url=fake_slack.api_url, max_bytes=1 << 20
        )

    assert "not on Slack's file host" in str(refused.value)
    assert elsewhere.requests == []
